//! `HEAD /`, `GET /health`, and the envelopes for unknown routes and methods.

use axum::Json;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use crate::GatewayError;

/// `HEAD /` and `GET /`: Claude Code's preconnect probe. No auth, nothing revealed.
pub async fn root() -> &'static str {
    ""
}

/// `GET /health`.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Unknown route.
pub async fn not_found(method: Method, uri: Uri) -> GatewayError {
    GatewayError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// Known route, wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> GatewayError {
    GatewayError::MethodNotAllowed(format!("method {method} is not allowed for {}", uri.path()))
}
