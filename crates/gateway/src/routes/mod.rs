//! Thin handlers, one file per endpoint family.

pub mod count_tokens;
pub mod health;
pub mod messages;
pub mod models;
pub mod table;

use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use futures::StreamExt;
use moe_sovereign_anthropic::MessagesRequest;
use moe_sovereign_experts::ExpertRequest;

use crate::GatewayError;

/// Past the limit, up to this much more of a body is read and thrown away before the 413 goes
/// out, within [`DRAIN_TIME`]: a client that writes its whole body before it reads (Python's
/// `http.client`) then sees the 413 instead of a broken pipe. A bigger body is cut off.
const DRAIN_BYTES: usize = 256 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// Reads and throws away what is left of a body (up to [`DRAIN_BYTES`], within
/// [`DRAIN_TIME`]) before a refusal goes out.
async fn drain(mut stream: impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin) {
    let drain = async {
        let mut drained = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            drained += chunk.len();
            if drained > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}

/// `error` as the answer to `request`, which is refused before its body was read: the body is
/// read and thrown away first (bounded), so a client still sending it sees the refusal instead
/// of a broken pipe.
pub async fn refuse(
    request: axum::extract::Request,
    error: GatewayError,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    drain(request.into_body().into_data_stream()).await;
    error.into_response()
}

/// Innermost layer: every body is read (within the limit; a 413 envelope past it) before the
/// handler runs, so a handler that refuses a request, or ignores its body, never leaves a client
/// that is still sending with a broken pipe.
pub async fn buffered(
    axum::extract::State(state): axum::extract::State<crate::GatewayState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    match read_body(body, state.settings.max_body_bytes).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(error) => error.into_response(),
    }
}

/// Reads a body up to `limit` bytes; more is a 413.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    let mut stream = body.into_data_stream();
    let mut read = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            GatewayError::InvalidRequest(format!("reading the request body failed: {e}"))
        })?;
        if read.len() + chunk.len() > limit {
            drain(stream).await;
            return Err(GatewayError::TooLarge(format!(
                "request body exceeds the {} MiB limit",
                limit / (1024 * 1024)
            )));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.freeze())
}

/// The expert request for `body` from the caller with key `key_id`, carrying the headers worth
/// forwarding; `request_id` is the answer's message id.
pub fn expert_request(
    body: MessagesRequest,
    headers: &HeaderMap,
    key_id: &str,
    request_id: Option<String>,
) -> ExpertRequest {
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
        key_id: Some(key_id.to_owned()),
        request_id,
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
