//! A profile's experts in order: when one is unreachable, overloaded (529), rate limited (429)
//! or its context is too small for the request, the next one answers — decided before the first
//! byte of the answer only (an answer that has begun is never mixed with another's). Each skip
//! is a `fallback` step in the trace, the expert that answers a `chosen` step (the trace names
//! it as the request's expert).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::future::BoxFuture;
use moe_sovereign_experts::limit::is_superseded;
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, Step, context, generator,
};

/// Experts tried in order.
pub struct Fallback {
    name: String,
    experts: Arc<[Arc<dyn Expert>]>,
}

impl Fallback {
    /// Tries `experts` in order (at least one).
    pub fn new(experts: Vec<Arc<dyn Expert>>) -> Self {
        let name = experts
            .iter()
            .map(|e| e.name())
            .collect::<Vec<_>>()
            .join(" → ");
        Self {
            name,
            experts: experts.into(),
        }
    }
}

/// Whether another expert may answer instead after `error`.
fn can_fall_back(error: &ExpertError) -> bool {
    match error {
        ExpertError::Overloaded { .. } => !is_superseded(error),
        ExpertError::RateLimited { .. } => true,
        other => context::is_overflow(other),
    }
}

fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn step(stage: &str, expert: &dyn Expert, outcome: String, start: Instant) -> ExpertEvent {
    ExpertEvent::Step(Step {
        stage: stage.into(),
        expert: expert.name().into(),
        outcome,
        ms: ms_since(start),
    })
}

/// Whether `event` is part of the answer itself (anything the client would see).
fn is_answer(event: &ExpertEvent) -> bool {
    !matches!(event, ExpertEvent::Usage(_) | ExpertEvent::Step(_))
}

impl Expert for Fallback {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        self.experts
            .first()
            .map(|e| e.model_label())
            .unwrap_or_default()
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        let experts = Arc::clone(&self.experts);
        Box::pin(async move {
            let mut skipped = Vec::new();
            let (index, first, start) = accept(&experts, 0, &request, &mut skipped).await?;
            let stream = generator(move |out| async move {
                for event in skipped {
                    out.send(Ok(event)).await;
                }
                let (mut index, mut stream, mut start) = (index, first, start);
                // Usage reported before the answer begins belongs to whoever answers.
                let mut held = Vec::new();
                let mut answered = false;
                while let Some(item) = stream.next().await {
                    let event = match item {
                        Ok(event) if answered => event,
                        Ok(event) if !is_answer(&event) => {
                            held.push(event);
                            continue;
                        }
                        Ok(event) => {
                            answered = true;
                            let expert = &*experts[index];
                            let answer = step("chosen", expert, "answered".into(), start);
                            for event in std::iter::once(answer).chain(held.drain(..)) {
                                if !out.send(Ok(event)).await {
                                    return;
                                }
                            }
                            event
                        }
                        Err(error)
                            if !answered && index + 1 < experts.len() && can_fall_back(&error) =>
                        {
                            let expert = &*experts[index];
                            tracing::info!(expert = expert.name(), "falling back: {error}");
                            let skip = step("fallback", expert, error.to_string(), start);
                            if !out.send(Ok(skip)).await {
                                return;
                            }
                            held.clear();
                            let mut skipped = Vec::new();
                            let next = accept(&experts, index + 1, &request, &mut skipped).await;
                            for event in skipped {
                                out.send(Ok(event)).await;
                            }
                            match next {
                                Ok(next) => (index, stream, start) = next,
                                Err(error) => {
                                    out.send(Err(error)).await;
                                    return;
                                }
                            }
                            continue;
                        }
                        Err(error) => {
                            out.send(Err(error)).await;
                            return;
                        }
                    };
                    if !out.send(Ok(event)).await {
                        return; // the client left: dropping `stream` cancels the expert
                    }
                }
                for event in held {
                    out.send(Ok(event)).await;
                }
            });
            Ok(stream.boxed())
        })
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        Box::pin(async move {
            let mut last = None;
            for expert in self.experts.iter() {
                match expert.count_tokens(request.clone()).await {
                    Err(error) if can_fall_back(&error) => last = Some(error),
                    other => return other,
                }
            }
            Err(last.unwrap_or_else(|| ExpertError::overloaded("no expert is configured")))
        })
    }

    fn waiting(&self) -> usize {
        self.experts.first().map_or(0, |e| e.waiting())
    }

    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        Box::pin(async move {
            match self.experts.first() {
                Some(expert) => expert.warm().await,
                None => Ok(()),
            }
        })
    }
}

/// The first expert from `from` on that accepts `request`: its index, stream and start time;
/// each one skipped adds a `fallback` step to `skipped`. The last one's error is the answer.
async fn accept(
    experts: &[Arc<dyn Expert>],
    from: usize,
    request: &ExpertRequest,
    skipped: &mut Vec<ExpertEvent>,
) -> Result<(usize, ExpertStream, Instant), ExpertError> {
    let mut index = from;
    loop {
        let expert = experts
            .get(index)
            .ok_or_else(|| ExpertError::overloaded("no expert is configured"))?;
        let start = Instant::now();
        match expert.stream(request.clone()).await {
            Ok(stream) => return Ok((index, stream, start)),
            Err(error) if index + 1 < experts.len() && can_fall_back(&error) => {
                tracing::info!(expert = expert.name(), "falling back: {error}");
                skipped.push(step("fallback", &**expert, error.to_string(), start));
                index += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moe_sovereign_anthropic::{MessagesRequest, StopReason};

    /// What a scripted expert does with a request.
    #[derive(Clone)]
    enum Script {
        /// Refuses it at once.
        Refuse(ExpertError),
        /// Accepts it, then fails before answering.
        FailFirst(ExpertError),
        /// Answers `text`.
        Answer(&'static str),
        /// Answers `text`, then fails.
        AnswerThenFail(&'static str, ExpertError),
    }

    struct Scripted {
        name: &'static str,
        script: Script,
    }

    fn expert(name: &'static str, script: Script) -> Arc<dyn Expert> {
        Arc::new(Scripted { name, script })
    }

    impl Expert for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        fn model_label(&self) -> String {
            self.name.into()
        }
        fn stream(&self, _: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
            let usage = Ok(ExpertEvent::Usage(moe_sovereign_experts::UsageUpdate {
                input_tokens: Some(self.name.len() as u64),
                ..Default::default()
            }));
            let stop = Ok(ExpertEvent::Stop {
                reason: StopReason::EndTurn,
                stop_sequence: None,
            });
            let events = match self.script.clone() {
                Script::Refuse(error) => return Box::pin(async move { Err(error) }),
                Script::FailFirst(error) => vec![usage, Err(error)],
                Script::Answer(text) => vec![usage, Ok(ExpertEvent::Text(text.into())), stop],
                Script::AnswerThenFail(text, error) => {
                    vec![usage, Ok(ExpertEvent::Text(text.into())), Err(error)]
                }
            };
            Box::pin(async move { Ok(futures::stream::iter(events).boxed()) })
        }
        fn count_tokens(&self, _: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
            let answer = match &self.script {
                Script::Refuse(error) | Script::FailFirst(error) => Err(error.clone()),
                _ => Ok(self.name.len() as u64),
            };
            Box::pin(async move { answer })
        }
    }

    fn request() -> ExpertRequest {
        let body: MessagesRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]
        }))
        .unwrap();
        ExpertRequest {
            body,
            anthropic_version: None,
            anthropic_beta: None,
            session: None,
            key_id: None,
            request_id: None,
        }
    }

    /// The stream's events as short strings: `step:STAGE:EXPERT`, `text:…`, `usage:N`, `stop`,
    /// `error:…`.
    async fn run(experts: Vec<Arc<dyn Expert>>) -> Result<Vec<String>, ExpertError> {
        let fallback = Fallback::new(experts);
        let mut stream = fallback.stream(request()).await?;
        let mut seen = Vec::new();
        while let Some(item) = stream.next().await {
            seen.push(match item {
                Ok(ExpertEvent::Step(step)) => format!("step:{}:{}", step.stage, step.expert),
                Ok(ExpertEvent::Text(text)) => format!("text:{text}"),
                Ok(ExpertEvent::Usage(usage)) => format!("usage:{}", usage.input_tokens.unwrap()),
                Ok(ExpertEvent::Stop { .. }) => "stop".into(),
                Ok(other) => format!("{other:?}"),
                Err(error) => format!("error:{error}"),
            });
        }
        Ok(seen)
    }

    fn unreachable() -> ExpertError {
        ExpertError::overloaded("cannot reach http://127.0.0.1:1")
    }

    #[tokio::test]
    async fn an_expert_that_refuses_passes_the_request_on() {
        let seen = run(vec![
            expert("a", Script::Refuse(unreachable())),
            expert("bb", Script::Answer("from b")),
        ])
        .await
        .unwrap();
        assert_eq!(
            seen,
            [
                "step:fallback:a",
                "step:chosen:bb",
                "usage:2",
                "text:from b",
                "stop"
            ]
        );
    }

    #[tokio::test]
    async fn a_failure_before_the_first_byte_passes_it_on_and_drops_its_usage() {
        let overflow = ExpertError::BadRequest(context::too_long(9000, 8192));
        let seen = run(vec![
            expert("a", Script::FailFirst(overflow)),
            expert("bb", Script::FailFirst(unreachable())),
            expert("ccc", Script::Answer("from c")),
        ])
        .await
        .unwrap();
        assert_eq!(
            seen,
            [
                "step:fallback:a",
                "step:fallback:bb",
                "step:chosen:ccc",
                "usage:3",
                "text:from c",
                "stop"
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_that_began_is_never_continued_by_another_expert() {
        let seen = run(vec![
            expert("a", Script::AnswerThenFail("half", unreachable())),
            expert("b", Script::Answer("other")),
        ])
        .await
        .unwrap();
        assert_eq!(
            seen,
            [
                "step:chosen:a",
                "usage:1",
                "text:half",
                "error:cannot reach http://127.0.0.1:1"
            ]
        );
    }

    #[tokio::test]
    async fn errors_of_the_request_itself_and_supersession_are_not_passed_on() {
        let bad = ExpertError::BadRequest("messages: empty".into());
        let error = run(vec![
            expert("a", Script::Refuse(bad.clone())),
            expert("b", Script::Answer("no")),
        ])
        .await
        .unwrap_err();
        assert_eq!(error, bad);
        let superseded =
            ExpertError::overloaded("superseded by a newer request from the same session");
        assert!(is_superseded(&superseded));
        let seen = run(vec![
            expert("a", Script::FailFirst(superseded)),
            expert("b", Script::Answer("no")),
        ])
        .await
        .unwrap();
        assert_eq!(
            seen.last().unwrap(),
            "error:superseded by a newer request from the same session"
        );
    }

    #[tokio::test]
    async fn when_every_expert_fails_the_last_error_is_the_answer() {
        let error = run(vec![
            expert("a", Script::Refuse(unreachable())),
            expert("b", Script::Refuse(ExpertError::overloaded("b is loading"))),
        ])
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "b is loading");
        let seen = run(vec![
            expert("a", Script::Refuse(unreachable())),
            expert("b", Script::FailFirst(ExpertError::overloaded("b died"))),
        ])
        .await
        .unwrap();
        assert_eq!(seen, ["step:fallback:a", "error:b died"]);
    }

    #[tokio::test]
    async fn counting_tokens_falls_back_too() {
        let fallback = Fallback::new(vec![
            expert("a", Script::Refuse(unreachable())),
            expert("bbb", Script::Answer("x")),
        ]);
        assert_eq!(fallback.count_tokens(request()).await, Ok(3));
        assert_eq!(fallback.name(), "a → bbb");
    }
}
