//! The dashboard's edge, in-process with a scripted backend: who gets in (a one-time link, a
//! session cookie; never an API key, another Origin or a rebinding Host), CSRF rules, security
//! headers, and request traces.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use moe_sovereign_gateway::admin::{Action, Admin, AdminBackend, AdminError};
use moe_sovereign_gateway::{GatewayState, Settings, router};
use moe_sovereign_telemetry::TraceFilter;
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;
use support::KEY;
use support::fake::{self, ScriptedExpert};

const PORT: u16 = 8742;
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
const ORIGIN: &str = "http://127.0.0.1:8742";

/// Records what it was asked to do.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl AdminBackend for Recording {
    fn call(&self, action: Action) -> Result<Value, AdminError> {
        self.0.lock().unwrap().push(format!("{action:?}"));
        match action {
            Action::Keys => Ok(json!({"data": [{"id": "key_1", "name": "laptop"}]})),
            Action::RevokeKey { id } if id != "key_1" => {
                Err(AdminError::NotFound(format!("no key {id}")))
            }
            _ => Ok(json!({"ok": true})),
        }
    }
}

fn state(backend: Arc<Recording>) -> GatewayState {
    support::state(
        ScriptedExpert::new("scripted", fake::answer(11, &["hello"], 3)),
        Settings {
            port: PORT,
            ..Settings::default()
        },
        Some(Admin::new(backend, SECRET.into())),
    )
}

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<Value>,
}

impl<'a> Call<'a> {
    fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            headers: vec![("host", format!("127.0.0.1:{PORT}"))],
            body: None,
        }
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// A change as the dashboard sends it: our Origin, a JSON body.
    fn json(self, body: Value) -> Self {
        let mut call = self
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        call.body = Some(body);
        call
    }

    async fn send(self, state: &GatewayState) -> (StatusCode, Response<Body>) {
        let mut request = Request::builder().method(self.method).uri(self.path);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let body = self
            .body
            .map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = router(state.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        (response.status(), response)
    }
}

async fn json_of(response: Response<Body>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// A login link through the secret, traded for a session cookie.
async fn login(state: &GatewayState) -> String {
    let (status, response) = Call::new("POST", "/api/login-link")
        .header("x-moe-admin-secret", SECRET)
        .json(json!({}))
        .send(state)
        .await;
    assert_eq!(status, 200);
    let url = json_of(response).await["url"].as_str().unwrap().to_owned();
    let token = url
        .strip_prefix("http://127.0.0.1:8742/ui/login#")
        .unwrap()
        .to_owned();
    let (status, response) = Call::new("POST", "/api/session")
        .json(json!({ "token": token }))
        .send(state)
        .await;
    assert_eq!(status, 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    // A link works once.
    let (status, response) = Call::new("POST", "/api/session")
        .json(json!({ "token": token }))
        .send(state)
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        json_of(response).await["error"]["type"],
        "authentication_error"
    );
    cookie.split(';').next().unwrap().to_owned()
}

fn assert_envelope(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
}

#[tokio::test]
async fn a_login_link_opens_a_session_and_the_api_answers_with_security_headers() {
    let backend = Arc::new(Recording::default());
    let state = state(backend.clone());
    let cookie = login(&state).await;
    let (status, response) = Call::new("GET", "/api/keys")
        .header("cookie", cookie.clone())
        .send(&state)
        .await;
    assert_eq!(status, 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(json_of(response).await["data"][0]["id"], "key_1");

    let (status, response) = Call::new("GET", "/ui/")
        .header("cookie", cookie.clone())
        .send(&state)
        .await;
    assert_eq!(status, 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let (status, _) = Call::new("PUT", "/api/keys/default/profile")
        .header("cookie", cookie.clone())
        .json(json!({"profile": "moe_reasoning"}))
        .send(&state)
        .await;
    assert_eq!(status, 200);
    let (status, response) = Call::new("DELETE", "/api/keys/key_9")
        .header("cookie", cookie)
        .json(json!({}))
        .send(&state)
        .await;
    assert_eq!(status, 404);
    assert_envelope(&json_of(response).await, "not_found_error");
    let calls = backend.0.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "Keys",
            r#"SetProfile { id: None, profile: "moe_reasoning" }"#,
            r#"RevokeKey { id: "key_9" }"#
        ]
    );
}

#[tokio::test]
async fn nobody_else_gets_in() {
    let backend = Arc::new(Recording::default());
    let state = state(backend.clone());
    let cookie = login(&state).await;
    let cases: Vec<(&str, Call, StatusCode, &str)> = vec![
        (
            "no session",
            Call::new("GET", "/api/keys"),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            "no session, page",
            Call::new("GET", "/ui/"),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            "unknown api path",
            Call::new("GET", "/api/nothing"),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            "an API key",
            Call::new("GET", "/api/keys").header("x-api-key", KEY),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a bearer API key",
            Call::new("GET", "/ui/").header("authorization", format!("Bearer {KEY}")),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a session and an API key",
            Call::new("GET", "/api/keys")
                .header("cookie", cookie.clone())
                .header("x-api-key", KEY),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a foreign Origin",
            Call::new("GET", "/api/keys")
                .header("cookie", cookie.clone())
                .header("origin", "https://evil.example"),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a rebinding Host",
            Call::new("GET", "/api/keys")
                .header("cookie", cookie.clone())
                .header("host", "evil.example:8742"),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a change without Origin",
            Call::new("POST", "/api/keys")
                .header("cookie", cookie.clone())
                .header("content-type", "application/json"),
            StatusCode::FORBIDDEN,
            "permission_error",
        ),
        (
            "a form post",
            Call::new("POST", "/api/keys")
                .header("cookie", cookie.clone())
                .header("origin", ORIGIN)
                .header("content-type", "application/x-www-form-urlencoded"),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            "a wrong secret",
            Call::new("POST", "/api/login-link")
                .header("x-moe-admin-secret", "guess")
                .json(json!({})),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            "an unknown token",
            Call::new("POST", "/api/session").json(json!({"token": "abc"})),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
        (
            "a forged cookie",
            Call::new("GET", "/api/keys").header("cookie", "moe_admin_8742=00"),
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        ),
    ];
    for (what, call, expected, kind) in cases {
        let (status, response) = call.send(&state).await;
        assert_eq!(status, expected, "{what}");
        assert!(response.headers().contains_key("request-id"), "{what}");
        assert_envelope(&json_of(response).await, kind);
    }
    assert!(
        backend.0.lock().unwrap().is_empty(),
        "the backend was reached"
    );
    // The login page and its files carry no data and need no session.
    for path in ["/ui/login", "/ui/assets/login.js", "/ui/assets/style.css"] {
        let (status, _) = Call::new("GET", path).send(&state).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = Call::new("GET", "/ui/assets/app.js").send(&state).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn each_request_leaves_a_trace_with_the_usage_the_client_saw() {
    let state = state(Arc::new(Recording::default()));
    for stream in [false, true] {
        let (status, response) = Call::new("POST", "/v1/messages")
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .json(
                json!({"model": "claude-opus-4-8", "max_tokens": 10, "stream": stream,
                         "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send(&state)
            .await;
        assert_eq!(status, 200);
        // Reading the body to the end finishes the stream.
        let _ = response.into_body().collect().await.unwrap();
    }
    let (status, _) = Call::new("POST", "/v1/messages")
        .header("x-api-key", KEY)
        .json(json!({"model": "m", "messages": "not a list"}))
        .send(&state)
        .await;
    assert_eq!(status, 400);
    let traces = state.hub.traces().list(&TraceFilter::default(), 10);
    assert_eq!(traces.len(), 3, "{traces:?}");
    assert_eq!(traces[0].status, 400);
    assert_eq!(
        traces[0].error_type.as_deref(),
        Some("invalid_request_error")
    );
    let traces = &traces[1..];
    for trace in traces {
        assert_eq!(trace.key_id, "key_1");
        assert_eq!(trace.key_name, "laptop");
        assert_eq!(trace.profile, "moe_native");
        assert_eq!(trace.expert, "scripted");
        assert_eq!(trace.input_tokens, 11);
        assert_eq!(trace.output_tokens, 3);
        assert_eq!(trace.status, 200);
        assert_eq!(trace.stop_reason.as_deref(), Some("end_turn"));
        assert!(trace.ttft_ms.is_some(), "{trace:?}");
    }
    assert!(traces[0].stream && !traces[1].stream);
    assert_eq!(state.in_flight.count(), 0);
}

#[tokio::test]
async fn only_the_home_folders_secret_stops_the_gateway() {
    let backend = Arc::new(Recording::default());
    let state = state(backend);
    // No secret, a wrong one, a session cookie, an API key: refused, and it keeps serving.
    let cookie = login(&state).await;
    for (what, call) in [
        (
            "no secret",
            Call::new("POST", "/api/shutdown").json(json!({})),
        ),
        (
            "a wrong secret",
            Call::new("POST", "/api/shutdown")
                .header("x-moe-admin-secret", "guess")
                .json(json!({})),
        ),
        (
            "a session",
            Call::new("POST", "/api/shutdown")
                .header("cookie", cookie.clone())
                .json(json!({})),
        ),
    ] {
        let (status, response) = call.send(&state).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_envelope(&json_of(response).await, "authentication_error");
        assert!(!state.shutdown.is_cancelled(), "{what} stopped it");
    }
    let (status, _) = Call::new("POST", "/api/shutdown")
        .header("x-api-key", support::KEY)
        .header("x-moe-admin-secret", SECRET)
        .json(json!({}))
        .send(&state)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an API key never opens /api");
    assert!(!state.shutdown.is_cancelled());
    // A cross-site form post cannot carry it either: no JSON, no Origin.
    let (status, _) = Call::new("POST", "/api/shutdown")
        .header("x-moe-admin-secret", SECRET)
        .send(&state)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, response) = Call::new("POST", "/api/shutdown")
        .header("x-moe-admin-secret", SECRET)
        .json(json!({}))
        .send(&state)
        .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(response).await["stopping"], true);
    assert!(state.shutdown.is_cancelled());
}

#[tokio::test]
async fn the_file_picker_is_the_backends_action() {
    let backend = Arc::new(Recording::default());
    let state = state(backend.clone());
    let cookie = login(&state).await;
    let (status, _) = Call::new("POST", "/api/models/pick")
        .header("cookie", cookie)
        .json(json!({}))
        .send(&state)
        .await;
    assert_eq!(status, 200);
    assert!(backend.0.lock().unwrap().contains(&"PickModel".to_owned()));
}
