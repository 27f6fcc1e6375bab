//! Remote experts in detail: what is forwarded, how upstream failures surface, streaming
//! behaviour (pings, mid-stream errors), cancellation and shutdown.

use std::time::{Duration, Instant};

use futures::StreamExt;
use moe_sovereign_e2e::{FakeUpstream, Flavor, Gateway};
use serde_json::{Value, json};

use crate::{UPSTREAM_KEY, config, stack};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(gateway: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ask(text: &str, stream: bool) -> Value {
    json!({"model": "claude-opus-4-8", "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_expert_forwards_headers_and_unknown_fields_but_not_our_key() {
    let (upstream, gateway) = stack(Flavor::Anthropic, "");
    let mut body = ask("hello", false);
    body["system"] = json!([
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.495; cch=1;"},
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]);
    body["output_config"] = json!({"effort": "high"});
    let response = post(&gateway, body).await;
    assert_eq!(response.status(), 200);
    let seen = &upstream.requests()[0];
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14")
    );
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
    assert!(
        !format!("{:?}", seen.headers).contains(&gateway.key),
        "our key was forwarded"
    );
    assert_eq!(seen.body["output_config"], json!({"effort": "high"}));
    assert_eq!(
        seen.body["system"],
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_auth_failure_is_a_500_and_unreachable_is_a_529() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let upstream = FakeUpstream::start(Some(UPSTREAM_KEY));
        let (home, key) = Gateway::home(&config(flavor, &upstream.url, ""), "moe_native");
        let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", "wrong-key")]);
        for stream in [false, true] {
            let response = post(&gateway, ask("hi", stream)).await;
            assert_eq!(response.status(), 500, "{flavor:?} stream={stream}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "api_error");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("upstream answered 401"),
                "{body}"
            );
        }

        let closed = moe_sovereign_e2e::tools::free_port();
        let (home, key) = Gateway::home(
            &config(flavor, &format!("http://127.0.0.1:{closed}"), ""),
            "moe_native",
        );
        let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
        let response = post(&gateway, ask("hi", true)).await;
        assert_eq!(response.status(), 529, "{flavor:?}");
        assert!(response.headers().get("retry-after").is_some());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "overloaded_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unreachable"),
            "{body}"
        );
    }
}

/// A one-request upstream that reads the request and then dies the way a crashed server does:
/// `headers_first` sends a streaming 200's headers before closing, otherwise nothing at all.
fn dying_upstream(headers_first: bool) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(mut connection) = connection else {
                return;
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read up to the end of the headers and a little body; enough to look alive.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match connection.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            if headers_first {
                let _ = connection.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
            }
            // Dropping the socket closes it: no body, no chunk terminator.
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_dies_after_accepting_is_a_529_like_an_unreachable_one() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        for headers_first in [false, true] {
            let url = dying_upstream(headers_first);
            // The openai expert asks /v1/models when no model is configured: name one.
            let config = config(flavor, &url, "").replace("api_key =", "model = \"m\"\napi_key =");
            let (home, key) = Gateway::home(&config, "moe_native");
            let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
            for stream in [false, true] {
                let what = format!("{flavor:?} headers_first={headers_first} stream={stream}");
                let response = post(&gateway, ask("hi", stream)).await;
                let status = response.status();
                let retry_after = response.headers().get("retry-after").cloned();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, 529, "{what}: {body}");
                assert!(retry_after.is_some(), "{what}");
                assert_eq!(body["error"]["type"], "overloaded_error", "{what}: {body}");
            }
        }
    }
}

async fn sse_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(
                data["type"],
                name.as_str(),
                "data.type must equal the event name"
            );
            (name, data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_experts_get_pings_and_mid_stream_errors_become_error_events() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let (_upstream, gateway) = stack(flavor, "[gateway]\nping_interval_ms = 50\n");
        let events = sse_events(post(&gateway, ask("slow please", true)).await).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "message_start");
        assert!(
            names.iter().filter(|n| **n == "ping").count() >= 3,
            "{flavor:?}: {names:?}"
        );
        assert_eq!(names.last(), Some(&"message_stop"));
        let text: String = events
            .iter()
            .filter_map(|(_, d)| d.pointer("/delta/text").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "tick ".repeat(25));

        let events = sse_events(post(&gateway, ask("fail mid-stream", true)).await).await;
        let (last, data) = events.last().unwrap();
        assert_eq!(last, "error", "{flavor:?}: {events:?}");
        assert!(
            data["error"]["message"]
                .as_str()
                .unwrap()
                .contains("upstream"),
            "{data}"
        );
        assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_disconnect_cancels_the_upstream_call() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let (upstream, gateway) = stack(flavor, "");
        let response = post(&gateway, ask("slow please", true)).await;
        let mut body = response.bytes_stream();
        let mut seen = String::new();
        while !seen.contains("tick") {
            seen.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
        drop(body);
        let deadline = Instant::now() + Duration::from_secs(5);
        while upstream.cancelled() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            upstream.cancelled(),
            1,
            "{flavor:?}: upstream stream not cancelled"
        );
        assert_eq!(upstream.completed(), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_open_streams_with_an_error_event_and_exits() {
    let (_upstream, mut gateway) = stack(Flavor::OpenAi, "");
    let response = post(&gateway, ask("slow please", true)).await;
    let reader = tokio::spawn(sse_events(response));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.terminate(Duration::from_secs(8));
        (status, gateway)
    })
    .await
    .unwrap();
    let (status, gateway) = status;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        gateway.log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    let events = reader.await.unwrap();
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_take_effect_on_a_running_server() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "");
    let models = |key: String| {
        let url = gateway.url.clone();
        async move {
            client()
                .get(format!("{url}/v1/models"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let second = Gateway::cli(
        gateway.home.path(),
        &["keys", "create", "--profile", "moe_reasoning"],
    );
    let second = String::from_utf8(second.stdout).unwrap().trim().to_owned();
    assert_eq!(models(second.clone()).await, 200);

    // The key's profile decides where unknown model ids go.
    Gateway::cli(
        gateway.home.path(),
        &["profiles", "use", "moe_orchestrated"],
    );
    let listed = Gateway::cli(gateway.home.path(), &["profiles", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[2]["active"], true, "{listed}");

    let list = Gateway::cli(gateway.home.path(), &["keys", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        !list.to_string().contains("moe-sk-"),
        "keys list leaks a key: {list}"
    );
    let second_id = list[1]["id"].as_str().unwrap().to_owned();
    let shown = Gateway::cli(gateway.home.path(), &["keys", "show", &second_id]);
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim(), second);

    Gateway::cli(gateway.home.path(), &["keys", "revoke", &second_id]);
    assert_eq!(models(second).await, 401, "a revoked key still works");
    assert_eq!(models(gateway.key.clone()).await, 200);

    let credential = Gateway::cli(gateway.home.path(), &["credential"]);
    assert_eq!(
        String::from_utf8(credential.stdout).unwrap(),
        format!("{}\n", gateway.key)
    );
    assert!(
        !gateway.log().contains(&gateway.key),
        "the server logged a key"
    );
}
