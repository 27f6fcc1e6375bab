//! Admission in front of any expert: a bounded number of running requests, a bounded queue
//! (beyond it: 529 with `retry-after`), and supersession — a retry from the same client session
//! (Claude Code's `X-Claude-Code-Session-Id` with the same body, which it sends again when it
//! gives up on a slow stream) cancels the older copy instead of queueing behind it. Different
//! requests of one session (a title, a sub-agent, the main turn) run side by side.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, watch};

use crate::{Expert, ExpertError, ExpertRequest, ExpertStream, generator};

/// An expert behind admission control.
pub struct Limited {
    inner: Arc<dyn Expert>,
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Running requests by (session, body fingerprint): the newest copy's cancel switch.
    sessions: Arc<Mutex<HashMap<String, watch::Sender<bool>>>>,
}

impl Limited {
    /// `inner` with at most `max_running` requests at once and `max_waiting` queued.
    pub fn new(inner: Arc<dyn Expert>, max_running: usize, max_waiting: usize) -> Self {
        Self {
            inner,
            running: Arc::new(Semaphore::new(max_running.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Registers the newest copy of a request, cancelling an older copy still running.
    fn supersede(&self, key: &str) -> Superseded {
        let (tx, rx) = watch::channel(false);
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(older) = sessions.insert(key.to_owned(), tx.clone())
        {
            let _ = older.send(true);
        }
        Superseded {
            rx,
            key: key.to_owned(),
            tx,
            sessions: Arc::clone(&self.sessions),
        }
    }

    async fn start(&self, request: ExpertRequest) -> Result<ExpertStream, ExpertError> {
        let mut superseded = retry_key(&request).map(|key| self.supersede(&key));
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        if queued >= self.max_waiting && self.running.available_permits() == 0 {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ExpertError::Overloaded {
                message: format!(
                    "expert {:?} is busy ({queued} requests waiting); retry shortly",
                    self.inner.name()
                ),
                retry_after: Some(2),
            });
        }
        let permit = Arc::clone(&self.running).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(|_| ExpertError::overloaded("the expert is shutting down"))?;
        if superseded.as_ref().is_some_and(|s| *s.rx.borrow()) {
            return Err(superseded_error());
        }
        let mut inner = self.inner.stream(request).await?;
        Ok(generator(move |out| async move {
            let _permit = permit;
            loop {
                let next = match superseded.as_mut() {
                    Some(s) => tokio::select! {
                        next = inner.next() => next,
                        _ = s.rx.changed() => Some(Err(superseded_error())),
                    },
                    None => inner.next().await,
                };
                let Some(item) = next else { return };
                let failed = item.is_err();
                if !out.send(item).await || failed {
                    return;
                }
            }
        })
        .boxed())
    }
}

/// The cancel switch of one running request; forgets its entry when the request ends, unless a
/// newer copy took it over.
struct Superseded {
    rx: watch::Receiver<bool>,
    key: String,
    tx: watch::Sender<bool>,
    sessions: Arc<Mutex<HashMap<String, watch::Sender<bool>>>>,
}

impl Drop for Superseded {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.sessions.lock()
            && sessions
                .get(&self.key)
                .is_some_and(|current| current.same_channel(&self.tx))
        {
            sessions.remove(&self.key);
        }
    }
}

/// Session id + a fingerprint of the body (without `stream`: Claude Code's non-streaming
/// fallback resends the same body without it). `None` without a session.
fn retry_key(request: &ExpertRequest) -> Option<String> {
    let session = request.session.as_deref()?;
    let mut body = request.body.clone();
    body.stream = None;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(&body).ok()?.hash(&mut hasher);
    Some(format!("{session}/{:016x}", hasher.finish()))
}

const SUPERSEDED: &str = "superseded by a newer request from the same session";

fn superseded_error() -> ExpertError {
    ExpertError::Overloaded {
        message: SUPERSEDED.into(),
        retry_after: None,
    }
}

/// Whether `error` ended a request because a newer one of the same session replaced it.
pub fn is_superseded(error: &ExpertError) -> bool {
    matches!(error, ExpertError::Overloaded { message, .. } if message == SUPERSEDED)
}

impl Expert for Limited {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model_label(&self) -> String {
        self.inner.model_label()
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        self.start(request).boxed()
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        self.inner.count_tokens(request)
    }

    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        self.inner.warm()
    }

    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use moe_sovereign_anthropic::{MessagesRequest, StopReason};

    use super::*;
    use crate::ExpertEvent;

    /// Streams `ticks` text events, one every 50 ms, then stops.
    struct Slow;

    impl Expert for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn model_label(&self) -> String {
            "slow".into()
        }
        fn stream(&self, _: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
            async {
                Ok(generator(|out| async move {
                    for _ in 0..10 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if !out.send(Ok(ExpertEvent::Text("tick".into()))).await {
                            return;
                        }
                    }
                    out.send(Ok(ExpertEvent::Stop {
                        reason: StopReason::EndTurn,
                        stop_sequence: None,
                    }))
                    .await;
                })
                .boxed())
            }
            .boxed()
        }
        fn count_tokens(&self, _: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
            async { Ok(1) }.boxed()
        }
    }

    fn request(session: Option<&str>) -> ExpertRequest {
        request_saying(session, "x")
    }

    fn request_saying(session: Option<&str>, text: &str) -> ExpertRequest {
        let body: MessagesRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": text}]
        }))
        .unwrap();
        ExpertRequest {
            body,
            anthropic_version: None,
            anthropic_beta: None,
            session: session.map(str::to_owned),
            key_id: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_with_retry_after() {
        let limited = Arc::new(Limited::new(Arc::new(Slow), 1, 1));
        let running = limited.stream(request(None)).await.unwrap();
        let queued = {
            let limited = Arc::clone(&limited);
            tokio::spawn(async move { limited.stream(request(None)).await.map(|_| ()) })
        };
        // Wait until the second request is queued (a condition, not a time).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while limited.waiting() != 1 {
            assert!(tokio::time::Instant::now() < deadline, "never queued");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let refused = limited.stream(request(None)).await;
        assert!(
            matches!(
                refused,
                Err(ExpertError::Overloaded {
                    retry_after: Some(_),
                    ..
                })
            ),
            "{:?}",
            refused.map(|_| ())
        );
        drop(running);
        assert!(
            queued.await.unwrap().is_ok(),
            "the queued request never ran"
        );
    }

    #[tokio::test]
    async fn a_newer_request_of_the_same_session_supersedes_the_older() {
        let limited = Limited::new(Arc::new(Slow), 4, 4);
        let mut older = limited.stream(request(Some("s1"))).await.unwrap();
        assert!(matches!(older.next().await, Some(Ok(ExpertEvent::Text(_)))));
        let mut other = limited.stream(request(Some("s2"))).await.unwrap();
        let mut sibling = limited
            .stream(request_saying(Some("s1"), "a title for this chat"))
            .await
            .unwrap();
        let mut newer = limited.stream(request(Some("s1"))).await.unwrap();
        let ended = older.next().await;
        assert!(
            matches!(&ended, Some(Err(ExpertError::Overloaded { message, .. })) if message.contains("superseded")),
            "{ended:?}"
        );
        assert!(matches!(newer.next().await, Some(Ok(ExpertEvent::Text(_)))));
        assert!(
            matches!(other.next().await, Some(Ok(ExpertEvent::Text(_)))),
            "another session was cancelled"
        );
        assert!(
            matches!(sibling.next().await, Some(Ok(ExpertEvent::Text(_)))),
            "a different request of the same session was cancelled"
        );
        drop(newer);
        assert_eq!(
            limited.sessions.lock().unwrap().len(),
            2,
            "a finished request is still remembered"
        );
    }
}
