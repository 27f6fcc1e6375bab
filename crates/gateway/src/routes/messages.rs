//! `POST /v1/messages`: JSON or SSE.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use moe_sovereign_experts::{ExpertEvent, ExpertStream, random_id};
use tokio::time::{Instant, timeout_at};

use crate::collect::Collector;
use crate::routes::{expert_request, no_expert, read_body};
use crate::sse::{self, Encoder};
use crate::{Caller, GatewayError, GatewayState, normalize};

/// Creates a message.
pub async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let bytes = read_body(body, state.settings.max_body_bytes).await?;
    let request = normalize::for_messages(normalize::parse(&bytes)?)?;
    let route = state
        .routes
        .resolve(caller.profile, &request.model)
        .ok_or_else(no_expert)?;
    let streaming = request.stream.unwrap_or(false);
    let show_thinking = request.thinking.as_ref().is_some_and(|t| t.is_on());
    let encoder = Encoder::new(random_id("msg_"), request.model.clone(), show_thinking);
    tracing::debug!(
        key = %caller.key_id,
        profile = %route.profile,
        expert = route.expert.name(),
        streaming,
        "messages"
    );
    let stream = route
        .expert
        .stream(expert_request(request, &headers))
        .await?;
    if streaming {
        stream_response(&state, encoder, stream).await
    } else {
        json_response(encoder, stream).await
    }
}

/// Waits for the expert's first real event (up to `first_event_timeout`) so that an early
/// failure is still a proper HTTP error, then commits to a 200 event stream.
async fn stream_response(
    state: &GatewayState,
    mut encoder: Encoder,
    mut stream: ExpertStream,
) -> Result<Response, GatewayError> {
    let deadline = Instant::now() + state.settings.first_event_timeout;
    let mut first = Vec::new();
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_quiet) => break,
            Ok(None) => {
                return Err(GatewayError::Internal(
                    "the expert ended without answering".into(),
                ));
            }
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(Some(Ok(ExpertEvent::Usage(usage)))) => encoder.usage(usage),
            Ok(Some(Ok(event))) => {
                first.push(event);
                break;
            }
        }
    }
    let body = sse::body(
        encoder,
        first,
        stream,
        state.settings.ping_interval,
        state.shutdown.clone(),
    );
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Drains the stream through the same encoder and folds it into one message.
async fn json_response(
    mut encoder: Encoder,
    mut stream: ExpertStream,
) -> Result<Response, GatewayError> {
    let mut collector = Collector::default();
    collector.apply(encoder.start())?;
    let mut events = Vec::new();
    while !encoder.is_stopped() {
        match stream.next().await {
            Some(Ok(event)) => encoder.event(event, &mut events),
            Some(Err(error)) => return Err(error.into()),
            None => {
                return Err(GatewayError::Internal(
                    "the expert's stream ended early".into(),
                ));
            }
        }
        for event in events.drain(..) {
            collector.apply(event)?;
        }
    }
    Ok(Json(collector.finish()?).into_response())
}
