//! The router driven in-process (no socket) with scripted experts: status codes, envelopes,
//! the SSE transcript, and the early-error rule.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
mod support;
use moe_sovereign_experts::ExpertError;
use moe_sovereign_gateway::{GatewayState, Settings, router};
use serde_json::{Value, json};
use support::KEY;
use support::fake::{self, ScriptedExpert};
use tower::ServiceExt;

const PORT: u16 = 8742;

fn state(expert: ScriptedExpert) -> GatewayState {
    support::state(
        expert,
        Settings {
            port: PORT,
            ping_interval: Duration::from_millis(30),
            first_event_timeout: Duration::from_millis(200),
            ..Settings::default()
        },
        None,
    )
}

fn pong() -> ScriptedExpert {
    ScriptedExpert::new("scripted", fake::answer(5, &["po", "ng"], 2))
}

fn request(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("127.0.0.1:{PORT}"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

async fn call(state: GatewayState, request: Request<Body>) -> (StatusCode, String) {
    let response = router(state).oneshot(request).await.unwrap();
    assert!(response.headers().contains_key("request-id"));
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn ask(stream: bool) -> Value {
    json!({"model": "claude-opus-4-8", "max_tokens": 10, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn json_answer_is_the_folded_stream() {
    let (status, body) = call(
        state(pong()),
        request("POST", "/v1/messages", Some(ask(false))),
    )
    .await;
    assert_eq!(status, 200);
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "pong"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 5);
    assert_eq!(message["usage"]["output_tokens"], 2);
    assert_eq!(message["model"], "claude-opus-4-8");
}

#[tokio::test]
async fn sse_transcript_has_the_full_grammar_and_usage_at_start() {
    let (status, body) = call(
        state(pong()),
        request("POST", "/v1/messages?beta=true", Some(ask(true))),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        body.contains(r#""usage":{"input_tokens":5,"output_tokens":0"#),
        "{body}"
    );
}

#[tokio::test]
async fn an_error_before_the_first_event_is_an_http_error() {
    let mut expert = pong();
    expert.script = vec![Err(ExpertError::overloaded("model loading"))];
    let (status, body) = call(
        state(expert),
        request("POST", "/v1/messages", Some(ask(true))),
    )
    .await;
    assert_eq!(status, 529);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "overloaded_error"
    );

    let mut expert = pong();
    expert.refuse = Some(ExpertError::UpstreamAuth("upstream answered 401".into()));
    let (status, _) = call(
        state(expert),
        request("POST", "/v1/messages", Some(ask(true))),
    )
    .await;
    assert_eq!(
        status, 500,
        "an upstream 401 must never reach the client as a 401"
    );
}

#[tokio::test]
async fn a_quiet_expert_commits_to_200_and_pings() {
    let mut expert = pong();
    expert.delay = Duration::from_millis(250);
    let (status, body) = call(
        state(expert),
        request("POST", "/v1/messages", Some(ask(true))),
    )
    .await;
    assert_eq!(status, 200);
    let pings = body.matches("event: ping").count();
    assert!(pings >= 3, "{pings} pings: {body}");
    assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test]
async fn a_stream_that_ends_without_stop_ends_with_an_error_event() {
    let mut expert = pong();
    expert.script.truncate(2);
    let (status, body) = call(
        state(expert),
        request("POST", "/v1/messages", Some(ask(true))),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.trim_end()
            .ends_with(r#""message":"the expert's stream ended early"}}"#),
        "{body}"
    );
}

#[tokio::test]
async fn every_route_needs_a_key_but_the_probe_and_health() {
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("PUT", "/health"),
    ] {
        let mut request = request(method, path, None);
        request.headers_mut().remove("x-api-key");
        let (status, body) = call(state(pong()), request).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
    }
    for (method, path) in [("GET", "/health"), ("HEAD", "/"), ("GET", "/")] {
        let mut request = request(method, path, None);
        request.headers_mut().remove("x-api-key");
        let (status, _) = call(state(pong()), request).await;
        assert_eq!(status, 200, "{method} {path}");
    }
}
