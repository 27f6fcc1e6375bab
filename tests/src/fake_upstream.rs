//! Fake upstreams with deterministic, input-dependent answers, so an end-to-end test can only
//! pass if the gateway carried the request and the answer faithfully.
//!
//! The answer depends on the last user turn:
//! - a tool result → text `The file says: <result>`;
//! - `read the file PATH` → a `Read` tool call with `{"file_path": PATH}`;
//! - `weather` (with tools) → a `get_weather` call, input `{"city":"Paris"}` in three pieces;
//! - `think` → reasoning (`reasoning_content` / a thinking block) then `42`;
//! - `slow` → `tick ` every 200 ms, 25 times (pings, cancellation, shutdown);
//! - `fail mid-stream` → one text chunk, then an error;
//! - anything else → `pong: <text>`, word by word.
//!
//! Requests are recorded; a stream dropped before its end is counted as cancelled.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

/// Which protocol the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`.
    OpenAi,
    /// `/v1/messages`.
    Anthropic,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    key: Option<String>,
    requests: Mutex<Vec<Recorded>>,
    cancelled: AtomicUsize,
    completed: AtomicUsize,
}

/// A running fake upstream (in its own thread and runtime).
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeUpstream {
    /// Starts a fake requiring `key` (when set) as Bearer or x-api-key.
    pub fn start(key: Option<&str>) -> Self {
        let shared = Arc::new(Shared {
            key: key.map(str::to_owned),
            ..Shared::default()
        });
        let (addr, stop) = serve_in_thread(router(shared.clone()));
        Self {
            url: format!("http://{addr}"),
            shared,
            _stop: stop,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Streams dropped before their end (the client went away).
    pub fn cancelled(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Streams sent to their end.
    pub fn completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }
}

/// Serves `app` on a loopback port from a thread of its own until the sender is dropped.
pub(crate) fn serve_in_thread(app: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop_tx)
}

/// The axum app of a fake upstream (also used in-process by the benchmark).
pub fn app(key: Option<&str>) -> Router {
    router(Arc::new(Shared {
        key: key.map(str::to_owned),
        ..Shared::default()
    }))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/models", get(models))
        .route("/v1/messages", post(anthropic))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .with_state(shared)
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(key) = &shared.key else { return true };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let x_api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer == Some(key) || x_api_key == Some(key)
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Value) {
    shared.requests.lock().unwrap().push(Recorded {
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.clone(),
    });
}

/// What the fake will answer.
enum Plan {
    Text(Vec<String>, Duration),
    Tool { name: String, pieces: Vec<String> },
    Think,
    FailMidStream,
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn plan(last_text: &str, tool_result: Option<String>, has_tools: bool) -> Plan {
    if let Some(result) = tool_result {
        return Plan::Text(words(&format!("The file says: {result}")), Duration::ZERO);
    }
    let lower = last_text.to_lowercase();
    if let Some(at) = lower.find("read the file ") {
        let path = last_text[at + "read the file ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(['.', ','])
            .to_owned();
        let input = json!({"file_path": path}).to_string();
        return Plan::Tool {
            name: "Read".into(),
            pieces: split3(&input),
        };
    }
    if lower.contains("weather") && has_tools {
        return Plan::Tool {
            name: "get_weather".into(),
            pieces: split3(r#"{"city": "Paris"}"#),
        };
    }
    if lower.contains("think") {
        return Plan::Think;
    }
    if lower.contains("fail mid-stream") {
        return Plan::FailMidStream;
    }
    if lower.contains("slow") {
        return Plan::Text(vec!["tick ".into(); 25], Duration::from_millis(200));
    }
    Plan::Text(words(&format!("pong: {last_text}")), Duration::ZERO)
}

/// The pipeline's sub-calls of `moe_orchestrated` (Anthropic API), answered by rule: a forced
/// `plan` (one task per line of the task; a task naming "the sum of A and B" gets the MCP tool
/// `everything__get-sum` when it is on offer), `verdict` (8/10), `facts` (every "X uses Y" and
/// "X listens on Y" in the question); an expert offered `everything__echo` and asked to echo
/// calls it.
fn pipeline_plan(body: &Value, last_text: &str, tool_result: bool) -> Option<Plan> {
    let tool = |name: &str, input: Value| Plan::Tool {
        name: name.into(),
        pieces: split3(&input.to_string()),
    };
    let forced = (body["tool_choice"]["type"] == "tool")
        .then(|| body["tool_choice"]["name"].as_str())
        .flatten();
    match forced {
        Some("plan") => {
            let task = last_text
                .split("Task:\n")
                .nth(1)
                .and_then(|t| t.split("\n\n").next())
                .unwrap_or(last_text);
            let tasks: Vec<Value> = task
                .split(['.', '?'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    let lower = t.to_lowercase();
                    let sum = lower.find("the sum of ").map(|at| {
                        let numbers: Vec<i64> = lower[at..]
                            .split(|c: char| !c.is_ascii_digit())
                            .filter_map(|n| n.parse().ok())
                            .collect();
                        numbers
                    });
                    match sum {
                        Some(n) if n.len() >= 2 && last_text.contains("everything__get-sum") => {
                            json!({"task": t, "category": "general", "mcp_tool": "everything__get-sum",
                                   "mcp_args": {"a": n[0], "b": n[1]}})
                        }
                        _ => json!({"task": t, "category": "general"}),
                    }
                })
                .collect();
            Some(tool("plan", json!({"tasks": tasks})))
        }
        Some("verdict") => Some(tool(
            "verdict",
            json!({"score": 8, "missing": "", "replan": false}),
        )),
        Some("facts") => {
            let question = last_text
                .split("Question:\n")
                .nth(1)
                .and_then(|q| q.split("\n\nAnswer:").next())
                .unwrap_or("");
            let facts: Vec<Value> = question
                .split(['.', '?', ';'])
                .filter_map(|sentence| {
                    ["uses", "listens on"].iter().find_map(|verb| {
                        let (s, o) = sentence.split_once(&format!(" {verb} "))?;
                        Some(json!({"subject": s.trim(), "relation": verb, "object": o.trim()}))
                    })
                })
                .collect();
            Some(tool("facts", json!({"facts": facts})))
        }
        _ => {
            let offered = body["tools"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == "everything__echo"));
            (offered && !tool_result && last_text.to_lowercase().contains("echo ping"))
                .then(|| tool("everything__echo", json!({"message": "ping"})))
        }
    }
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn split3(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let third = chars.len().div_ceil(3).max(1);
    chars.chunks(third).map(|c| c.iter().collect()).collect()
}

/// A stream body that counts whether it was drained or dropped early.
fn counted_stream(shared: Arc<Shared>, frames: Vec<(Duration, Bytes)>) -> Body {
    struct Guard(Arc<Shared>, std::cell::Cell<bool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let counter = if self.1.get() {
                &self.0.completed
            } else {
                &self.0.cancelled
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
    let stream = futures::stream::unfold(
        (
            frames.into_iter(),
            Guard(shared, std::cell::Cell::new(false)),
        ),
        |(mut frames, guard)| async move {
            match frames.next() {
                Some((delay, bytes)) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok::<_, std::convert::Infallible>(bytes), (frames, guard)))
                }
                None => {
                    guard.1.set(true);
                    None
                }
            }
        },
    );
    Body::from_stream(stream)
}

fn sse_response(body: Body) -> Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&shared, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":{\"message\":\"bad key\"}}",
        )
            .into_response();
    }
    axum::Json(json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}))
        .into_response()
}

async fn openai(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    record(&shared, "/v1/chat/completions", &headers, &body);
    if !authorized(&shared, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "invalid upstream key", "type": "auth"}})),
        )
            .into_response();
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let tool_result = (last["role"] == "tool").then(|| text_of(&last["content"]));
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    if last_user.contains("upstream auth") {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":{\"message\":\"nope\"}}",
        )
            .into_response();
    }
    let plan = plan(&last_user, tool_result, body["tools"].is_array());
    let prompt_tokens = 10 + messages.len() as u64;
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-model",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut frames = vec![(
        Duration::ZERO,
        data(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )),
    )];
    let mut completion = 0u64;
    let finish = match plan {
        Plan::Text(pieces, delay) => {
            for piece in pieces {
                completion += 1;
                frames.push((delay, data(&chunk(json!({"content": piece}), Value::Null))));
            }
            "stop"
        }
        Plan::Think => {
            for piece in ["Let me ", "think."] {
                completion += 1;
                frames.push((
                    Duration::ZERO,
                    data(&chunk(json!({"reasoning_content": piece}), Value::Null)),
                ));
            }
            completion += 1;
            frames.push((
                Duration::ZERO,
                data(&chunk(json!({"content": "42"}), Value::Null)),
            ));
            "stop"
        }
        Plan::Tool { name, pieces } => {
            frames.push((
                Duration::ZERO,
                data(&chunk(
                    json!({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                )),
            ));
            for piece in pieces {
                completion += 1;
                frames.push((
                    Duration::ZERO,
                    data(&chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                        Value::Null,
                    )),
                ));
            }
            "tool_calls"
        }
        Plan::FailMidStream => {
            frames.push((
                Duration::ZERO,
                data(&chunk(json!({"content": "partial "}), Value::Null)),
            ));
            frames.push((
                Duration::from_millis(50),
                data(&json!({"error": {"message": "boom"}})),
            ));
            return sse_response(counted_stream(shared, frames));
        }
    };
    if body["stream"] != true {
        // Non-streaming (used by the benchmark's direct baseline).
        let text: String = frames
            .iter()
            .filter_map(|(_, b)| {
                let line = std::str::from_utf8(b)
                    .ok()?
                    .strip_prefix("data: ")?
                    .trim()
                    .to_owned();
                let v: Value = serde_json::from_str(&line).ok()?;
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        return axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion}
        }))
        .into_response();
    }
    frames.push((Duration::ZERO, data(&chunk(json!({}), json!(finish)))));
    frames.push((
        Duration::ZERO,
        data(&json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion}})),
    ));
    frames.push((Duration::ZERO, Bytes::from_static(b"data: [DONE]\n\n")));
    sse_response(counted_stream(shared, frames))
}

async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    record(&shared, "/v1/messages/count_tokens", &headers, &body);
    if !authorized(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "{}").into_response();
    }
    let messages = body["messages"].as_array().map_or(0, Vec::len) as u64;
    axum::Json(json!({"input_tokens": 1000 + messages})).into_response()
}

async fn anthropic(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    record(&shared, "/v1/messages", &headers, &body);
    if !authorized(&shared, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})),
        )
            .into_response();
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let tool_result = last["content"].as_array().and_then(|blocks| {
        blocks
            .iter()
            .find(|b| b["type"] == "tool_result")
            .map(|b| text_of(&b["content"]))
    });
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    if last_user.contains("upstream auth") {
        return (StatusCode::UNAUTHORIZED, "{}").into_response();
    }
    let plan = pipeline_plan(&body, &last_user, tool_result.is_some())
        .unwrap_or_else(|| plan(&last_user, tool_result, body["tools"].is_array()));
    let input_tokens = 1000 + messages.len() as u64;
    let start = json!({"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-claude",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}});
    let mut frames = vec![
        (Duration::ZERO, event("message_start", &start)),
        (Duration::ZERO, event("ping", &json!({"type": "ping"}))),
    ];
    let block_start = |i: usize, block: Value| {
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": block}),
        )
    };
    let delta = |i: usize, d: Value| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": i, "delta": d}),
        )
    };
    let stop = |i: usize| {
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": i}),
        )
    };
    let mut output = 0u64;
    let reason = match plan {
        Plan::Text(pieces, delay) => {
            frames.push((
                Duration::ZERO,
                block_start(0, json!({"type": "text", "text": ""})),
            ));
            for piece in pieces {
                output += 1;
                frames.push((
                    delay,
                    delta(0, json!({"type": "text_delta", "text": piece})),
                ));
            }
            frames.push((Duration::ZERO, stop(0)));
            "end_turn"
        }
        Plan::Think => {
            frames.push((
                Duration::ZERO,
                block_start(
                    0,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ),
            ));
            frames.push((
                Duration::ZERO,
                delta(
                    0,
                    json!({"type": "thinking_delta", "thinking": "Let me think."}),
                ),
            ));
            frames.push((
                Duration::ZERO,
                delta(
                    0,
                    json!({"type": "signature_delta", "signature": "upstream-sig"}),
                ),
            ));
            frames.push((Duration::ZERO, stop(0)));
            frames.push((
                Duration::ZERO,
                block_start(1, json!({"type": "text", "text": ""})),
            ));
            frames.push((
                Duration::ZERO,
                delta(1, json!({"type": "text_delta", "text": "42"})),
            ));
            frames.push((Duration::ZERO, stop(1)));
            output = 3;
            "end_turn"
        }
        Plan::Tool { name, pieces } => {
            frames.push((
                Duration::ZERO,
                block_start(
                    0,
                    json!({"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {}}),
                ),
            ));
            for piece in pieces {
                output += 1;
                frames.push((
                    Duration::ZERO,
                    delta(
                        0,
                        json!({"type": "input_json_delta", "partial_json": piece}),
                    ),
                ));
            }
            frames.push((Duration::ZERO, stop(0)));
            "tool_use"
        }
        Plan::FailMidStream => {
            frames.push((
                Duration::ZERO,
                block_start(0, json!({"type": "text", "text": ""})),
            ));
            frames.push((
                Duration::ZERO,
                delta(0, json!({"type": "text_delta", "text": "partial "})),
            ));
            frames.push((
                Duration::from_millis(50),
                event("error", &json!({"type": "error", "error": {"type": "overloaded_error", "message": "upstream overloaded"}})),
            ));
            return sse_response(counted_stream(shared, frames));
        }
    };
    frames.push((
        Duration::ZERO,
        event("message_delta", &json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output}})),
    ));
    frames.push((
        Duration::ZERO,
        event("message_stop", &json!({"type": "message_stop"})),
    ));
    sse_response(counted_stream(shared, frames))
}
