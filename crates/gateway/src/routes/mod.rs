//! Thin handlers, one file per endpoint family.

pub mod count_tokens;
pub mod health;
pub mod messages;
pub mod models;

use axum::body::Body;
use axum::http::HeaderMap;
use moe_sovereign_anthropic::MessagesRequest;
use moe_sovereign_experts::ExpertRequest;

use crate::GatewayError;

/// Reads a body up to `limit` bytes; more is a 413.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        GatewayError::TooLarge(format!(
            "request body exceeds the {} MiB limit",
            limit / (1024 * 1024)
        ))
    })
}

/// The expert request for `body`, carrying the headers worth forwarding.
pub fn expert_request(body: MessagesRequest, headers: &HeaderMap) -> ExpertRequest {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    ExpertRequest {
        body,
        anthropic_version: header("anthropic-version"),
        anthropic_beta: header("anthropic-beta"),
        session: header("x-claude-code-session-id"),
    }
}

/// The error for a gateway with no expert at all.
pub fn no_expert() -> GatewayError {
    GatewayError::InvalidRequest(
        "no model is set up yet: register a GGUF chat model with `moe-sovereign models add \
         FILE.gguf` (or point an [[experts]] entry in config.toml at a model server)"
            .into(),
    )
}
