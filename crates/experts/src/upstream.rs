//! What the remote experts share: HTTP error mapping and SSE body streaming.

use futures::{Stream, StreamExt};
use reqwest::{Response, StatusCode};

use crate::ExpertError;
use crate::sse::{SseEvent, SseParser};

/// A reqwest client for upstreams: rustls, short connect timeout, no overall timeout (streams
/// may run for minutes), no proxy from the environment (loopback upstreams must stay direct).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A failure to reach the upstream at all: retryable overload.
pub fn send_error(expert: &str, error: &reqwest::Error) -> ExpertError {
    let what = if error.is_connect() {
        "is unreachable"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "failed"
    };
    ExpertError::Overloaded {
        message: format!("expert {expert:?}: upstream {what}: {}", root(error)),
        retry_after: Some(UNREACHABLE_RETRY_AFTER_SECS),
    }
}

fn root(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Turns a non-success upstream answer into the error the client should see.
pub async fn status_error(expert: &str, response: Response) -> ExpertError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = response.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let detail = upstream_message(&body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("upstream error")
            .to_owned()
    });
    let message = format!(
        "expert {expert:?}: upstream answered {}: {detail}",
        status.as_u16()
    );
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ExpertError::UpstreamAuth(format!(
            "{message} (check the api_key reference of expert {expert:?} in config.toml)"
        )),
        StatusCode::PAYLOAD_TOO_LARGE => ExpertError::TooLarge(message),
        StatusCode::TOO_MANY_REQUESTS => ExpertError::RateLimited {
            message,
            retry_after,
        },
        StatusCode::SERVICE_UNAVAILABLE => ExpertError::Overloaded {
            message,
            retry_after,
        },
        s if s.as_u16() == 529 => ExpertError::Overloaded {
            message,
            retry_after,
        },
        s if s.is_client_error() => match crate::context::claude_wording(&json, &detail) {
            // Claude Code parses this wording (and compacts or retries); keep it first.
            Some(wording) => ExpertError::BadRequest(format!("{wording} ({message})")),
            None => ExpertError::BadRequest(message),
        },
        _ => ExpertError::Upstream(message),
    }
}

/// The message inside an Anthropic (`error.message`), OpenAI (`error.message`) or FastAPI
/// (`detail`) error body.
fn upstream_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value
        .pointer("/error/message")
        .or_else(|| value.get("detail"))
        .or_else(|| value.get("error"))?;
    Some(match message {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// The upstream body as SSE events. A broken connection is an [`ExpertError::Upstream`].
pub fn sse_events(
    expert: String,
    response: Response,
) -> impl Stream<Item = Result<SseEvent, ExpertError>> + Send + 'static {
    let mut parser = SseParser::default();
    let mut body = response.bytes_stream();
    async_stream(move |yield_| async move {
        let mut events_seen = false;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    for event in parser.push(&bytes) {
                        events_seen = true;
                        if !yield_.send(Ok(event)).await {
                            return;
                        }
                    }
                }
                Err(error) => {
                    let _ = yield_
                        .send(Err(broken_stream(&expert, &error, events_seen)))
                        .await;
                    return;
                }
            }
        }
        if let Some(event) = parser.finish() {
            let _ = yield_.send(Ok(event)).await;
        }
    })
}

/// An upstream body that broke. Before its first event the upstream is as good as unreachable
/// (a server that accepted the request and then died, e.g. killed by a signal): a retryable 529,
/// like a refused connection. Later, the answer is cut off: an upstream error.
fn broken_stream(expert: &str, error: &reqwest::Error, events_seen: bool) -> ExpertError {
    if events_seen {
        ExpertError::Upstream(format!(
            "expert {expert:?}: upstream stream broke: {}",
            root(error)
        ))
    } else {
        ExpertError::Overloaded {
            message: format!(
                "expert {expert:?}: upstream closed the connection before answering: {}",
                root(error)
            ),
            retry_after: Some(UNREACHABLE_RETRY_AFTER_SECS),
        }
    }
}

/// The `retry-after` an unreachable (or dead) upstream gets.
const UNREACHABLE_RETRY_AFTER_SECS: u64 = 2;

/// Reads what is left of an upstream body after its last event (usually just the end of the
/// chunked encoding), so the connection goes back to the pool instead of being closed. Bounded:
/// an upstream that keeps the stream open after its last event is cut off.
pub async fn drain<S>(events: &mut S)
where
    S: Stream + Unpin,
{
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        while events.next().await.is_some() {}
    })
    .await;
}

/// A tiny generator: `body` pushes items through a bounded channel; the stream ends when it
/// returns. Dropping the stream drops the receiver, so the next `send` returns false and the
/// body stops (and with it the upstream connection).
pub fn async_stream<T, F, Fut>(body: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(Yielder<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let producer = body(Yielder(tx));
    let mut producer = Some(Box::pin(producer));
    let mut rx = rx;
    futures::stream::poll_fn(move |cx| {
        // Drive the producer inline (no spawned task: the stream owns all its work).
        if let Some(fut) = producer.as_mut()
            && fut.as_mut().poll(cx).is_ready()
        {
            producer = None;
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(None) if producer.is_some() => std::task::Poll::Pending,
            other => other,
        }
    })
}

/// The sending half handed to an [`async_stream`] body.
pub struct Yielder<T>(tokio::sync::mpsc::Sender<T>);

impl<T> Yielder<T> {
    /// Sends one item; false when the consumer is gone.
    pub async fn send(&self, item: T) -> bool {
        self.0.send(item).await.is_ok()
    }
}
