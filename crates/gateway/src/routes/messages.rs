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
use crate::trace::Recorder;
use crate::{Caller, GatewayError, GatewayState, normalize};

/// Creates a message.
pub async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let mut recorder = Recorder::start(
        state.hub.clone(),
        state.in_flight.clone(),
        &caller,
        "/v1/messages",
    );
    let request = match read_request(&state, body).await {
        Ok(request) => request,
        Err(error) => {
            recorder.finish(None, Some(&error));
            return Err(error);
        }
    };
    recorder.request(&request.model, request.stream.unwrap_or(false));
    match answer(&state, &caller, &headers, request, &mut recorder).await {
        Ok(Answer::Stream(encoder, stream)) => {
            stream_response(&state, encoder, stream, recorder).await
        }
        Ok(Answer::Json(encoder, stream)) => json_response(encoder, stream, recorder).await,
        Err(error) => {
            recorder.finish(None, Some(&error));
            Err(error)
        }
    }
}

async fn read_request(
    state: &GatewayState,
    body: Body,
) -> Result<moe_sovereign_anthropic::MessagesRequest, GatewayError> {
    let bytes = read_body(body, state.settings.max_body_bytes).await?;
    normalize::for_messages(normalize::parse(&bytes)?)
}

enum Answer {
    Stream(Encoder, ExpertStream),
    Json(Encoder, ExpertStream),
}

async fn answer(
    state: &GatewayState,
    caller: &Caller,
    headers: &HeaderMap,
    request: moe_sovereign_anthropic::MessagesRequest,
    recorder: &mut Recorder,
) -> Result<Answer, GatewayError> {
    let route = state
        .routes
        .current()
        .resolve(caller.profile, &request.model)
        .ok_or_else(no_expert)?;
    recorder.routed(route.profile.name(), route.expert.name());
    let streaming = request.stream.unwrap_or(false);
    let show_thinking = request.thinking.as_ref().is_some_and(|t| t.is_on());
    let id = random_id("msg_");
    let encoder = Encoder::new(
        id.clone(),
        request.model.clone(),
        show_thinking,
        state.settings.signer.clone(),
    );
    recorder.follow_steps(encoder.step_log());
    tracing::debug!(
        key = %caller.key_id,
        profile = %route.profile,
        expert = route.expert.name(),
        streaming,
        "messages"
    );
    let stream = route
        .expert
        .stream(expert_request(request, headers, &caller.key_id, Some(id)))
        .await?;
    Ok(if streaming {
        Answer::Stream(encoder, stream)
    } else {
        Answer::Json(encoder, stream)
    })
}

/// Waits for the expert's first real event (up to `first_event_timeout`) so that an early
/// failure is still a proper HTTP error, then commits to a 200 event stream.
async fn stream_response(
    state: &GatewayState,
    mut encoder: Encoder,
    mut stream: ExpertStream,
    recorder: Recorder,
) -> Result<Response, GatewayError> {
    let deadline = Instant::now() + state.settings.first_event_timeout;
    let mut first = Vec::new();
    loop {
        let failed = match timeout_at(deadline, stream.next()).await {
            Err(_quiet) => break,
            Ok(None) => GatewayError::Internal("the expert ended without answering".into()),
            Ok(Some(Err(error))) => error.into(),
            Ok(Some(Ok(ExpertEvent::Usage(usage)))) => {
                encoder.usage(usage);
                continue;
            }
            Ok(Some(Ok(step @ ExpertEvent::Step(_)))) => {
                encoder.event(step, &mut Vec::new());
                continue;
            }
            Ok(Some(Ok(event))) => {
                first.push(event);
                break;
            }
        };
        recorder.finish(None, Some(&failed));
        return Err(failed);
    }
    let body = sse::body(
        encoder,
        first,
        stream,
        state.settings.ping_interval,
        state.shutdown.clone(),
        recorder,
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
    encoder: Encoder,
    stream: ExpertStream,
    mut recorder: Recorder,
) -> Result<Response, GatewayError> {
    match collect(encoder, stream, &mut recorder).await {
        Ok((encoder, message)) => {
            recorder.finish(Some(encoder.message()), None);
            Ok(Json(message).into_response())
        }
        Err(error) => {
            recorder.finish(None, Some(&error));
            Err(error)
        }
    }
}

async fn collect(
    mut encoder: Encoder,
    mut stream: ExpertStream,
    recorder: &mut Recorder,
) -> Result<(Encoder, moe_sovereign_anthropic::Message), GatewayError> {
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
        if events.iter().any(sse::is_answer) {
            recorder.first_token();
        }
        for event in events.drain(..) {
            collector.apply(event)?;
        }
    }
    let message = collector.finish()?;
    Ok((encoder, message))
}
