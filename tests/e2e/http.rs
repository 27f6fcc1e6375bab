//! Raw HTTP against the binary: guards on every route, error envelopes, limits.

use moe_sovereign_e2e::Flavor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stack;

const ROUTES: &[(&str, &str)] = &[
    ("HEAD", "/"),
    ("GET", "/health"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/claude-moe-native"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages?beta=true"),
    ("POST", "/v1/messages/count_tokens?beta=true"),
    ("GET", "/no/such/route"),
    ("DELETE", "/v1/messages"),
];

fn body() -> String {
    json!({"model": "claude-opus-4-8", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

async fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{url}{path}"),
        )
        .header("content-type", "application/json");
    if method == "POST" {
        request = request.body(body());
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn assert_envelope(what: &str, status: StatusCode, body: &Value, code: u16, kind: &str) {
    assert_eq!(status.as_u16(), code, "{what}: {body}");
    assert_eq!(body["type"], "error", "{what}: {body}");
    assert_eq!(body["error"]["type"], kind, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_rebinding_hosts_foreign_origins_and_missing_keys() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "");
    let key = ("x-api-key", gateway.key.clone());
    for (method, path) in ROUTES {
        let what = format!("{method} {path}");
        let host = ("host", format!("attacker.example:{}", gateway.port));
        let (status, headers, body) = send(&gateway.url, method, path, &[host, key.clone()]).await;
        assert!(headers.get("request-id").is_some(), "{what}: no request-id");
        if *method != "HEAD" {
            assert_envelope(
                &format!("{what} rebinding"),
                status,
                &body,
                403,
                "permission_error",
            );
        } else {
            assert_eq!(status, 403, "{what} rebinding");
        }

        let origin = ("origin", "https://attacker.example".to_owned());
        let (status, _, body) = send(&gateway.url, method, path, &[origin, key.clone()]).await;
        if *method != "HEAD" {
            assert_envelope(
                &format!("{what} origin"),
                status,
                &body,
                403,
                "permission_error",
            );
        } else {
            assert_eq!(status, 403, "{what} origin");
        }

        let (status, headers, body) = send(&gateway.url, method, path, &[]).await;
        assert!(headers.get("request-id").is_some(), "{what}: no request-id");
        match *path {
            "/" => assert_eq!(status, 200, "{what} is the open probe"),
            "/health" => assert_eq!(status, 200, "{what} is open"),
            _ => assert_envelope(
                &format!("{what} no key"),
                status,
                &body,
                401,
                "authentication_error",
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_anthropic_envelopes_with_the_right_status() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "[gateway]\nmax_body_mib = 1\n");
    let url = &gateway.url;
    // No pooling: the 413 case ends its connection early, and a pooled client could reuse it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let key = gateway.key.as_str();

    let post = |path: &str, body: Vec<u8>| {
        client
            .post(format!("{url}{path}"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "bad json",
            post("/v1/messages", b"{\"model\": ".to_vec()),
            400,
            "invalid_request_error",
        ),
        (
            "not utf8",
            post("/v1/messages", vec![0xff, 0xfe, 0x00]),
            400,
            "invalid_request_error",
        ),
        (
            "no max_tokens",
            post(
                "/v1/messages",
                br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            ),
            400,
            "invalid_request_error",
        ),
        (
            "wrong type",
            post(
                "/v1/messages",
                br#"{"model":"m","max_tokens":"ten","messages":[]}"#.to_vec(),
            ),
            400,
            "invalid_request_error",
        ),
        (
            "array body",
            post("/v1/messages/count_tokens", b"[]".to_vec()),
            400,
            "invalid_request_error",
        ),
        (
            "too large",
            post("/v1/messages", vec![b' '; 2 * 1024 * 1024]),
            413,
            "request_too_large",
        ),
        (
            "unknown route",
            client
                .get(format!("{url}/v2/whatever"))
                .header("x-api-key", key),
            404,
            "not_found_error",
        ),
        (
            "wrong method",
            client
                .get(format!("{url}/v1/messages"))
                .header("x-api-key", key),
            405,
            "invalid_request_error",
        ),
        (
            "unknown model id",
            client
                .get(format!("{url}/v1/models/claude-nope"))
                .header("x-api-key", key),
            404,
            "not_found_error",
        ),
        (
            "bad limit",
            client
                .get(format!("{url}/v1/models?limit=0"))
                .bearer_auth(key),
            400,
            "invalid_request_error",
        ),
        (
            "bad bearer",
            client
                .get(format!("{url}/v1/models"))
                .bearer_auth("moe-sk-nope"),
            401,
            "authentication_error",
        ),
    ];
    for (what, request, code, kind) in cases {
        let response = request.send().await.unwrap();
        assert!(response.headers().get("request-id").is_some(), "{what}");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_envelope(what, status, &body, code, kind);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn any_model_id_routes_and_is_echoed() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "");
    let client = reqwest::Client::new();
    for model in [
        "claude-opus-4-8",
        "claude-haiku-4-5-20251001",
        "qwen2.5-coder:7b",
        "claude-moe-reasoning",
    ] {
        let response = client
            .post(format!("{}/v1/messages?beta=true", gateway.url))
            .header("x-api-key", &gateway.key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}],
                          "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
                          "context_management": {"edits": []}, "metadata": {"user_id": "{}"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model"], model);
        let content = body["content"].as_array().unwrap();
        let text = content.last().unwrap()["text"].as_str().unwrap();
        if model == "claude-moe-reasoning" {
            // Thinking on: the reasoning profile thinks first, then answers with it.
            assert_eq!(content[0]["type"], "thinking", "{body}");
            assert!(text.starts_with("pong: hi"), "{body}");
        } else {
            assert_eq!(text, "pong: hi", "{body}");
        }
    }
}

/// A client that writes its whole body before it reads (Python's `http.client` does): a body
/// over the limit still gets its 413 envelope, not a broken pipe, and the connection serves the
/// next request.
#[test]
fn a_body_over_the_limit_gets_its_413_even_when_the_client_reads_last() {
    use std::io::{BufRead, BufReader, Read, Write};

    let (_upstream, gateway) = stack(Flavor::OpenAi, "[gateway]\nmax_body_mib = 1\n");
    let addr = gateway.url.trim_start_matches("http://").to_owned();
    let body = vec![b' '; 40 * 1024 * 1024];
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        gateway.key,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .write_all(&body)
        .expect("the gateway closed the connection while the body was being sent");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let response = |reader: &mut BufReader<std::net::TcpStream>| {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (status, envelope) = response(&mut reader);
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(envelope["error"]["type"], "request_too_large", "{envelope}");
    // The same connection answers the next request.
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let (status, _) = response(&mut reader);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}
