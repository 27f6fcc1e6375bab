//! A scripted expert for the router tests (test code only: never in a shipped binary, and no
//! feature of a library crate, so `cargo test` builds the libraries exactly as the release does).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use moe_sovereign_experts::generator as async_stream;
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, estimate_tokens,
};

/// Plays back a fixed script; `refuse` makes `stream` fail before accepting.
#[derive(Debug, Clone)]
pub struct ScriptedExpert {
    /// The expert's name.
    pub name: String,
    /// What `stream` plays, in order.
    pub script: Vec<Result<ExpertEvent, ExpertError>>,
    /// Pause before each scripted item.
    pub delay: Duration,
    /// An error `stream` returns instead of a stream.
    pub refuse: Option<ExpertError>,
}

impl ScriptedExpert {
    /// An expert named `name` that plays `script` without delay.
    pub fn new(name: &str, script: Vec<Result<ExpertEvent, ExpertError>>) -> Self {
        Self {
            name: name.into(),
            script,
            delay: Duration::ZERO,
            refuse: None,
        }
    }
}

impl Expert for ScriptedExpert {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        format!("scripted {}", self.name)
    }

    fn stream(&self, _request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        let script = self.script.clone();
        let delay = self.delay;
        let refuse = self.refuse.clone();
        async move {
            if let Some(error) = refuse {
                return Err(error);
            }
            Ok(async_stream(move |out| async move {
                for item in script {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if !out.send(item).await {
                        return;
                    }
                }
            })
            .boxed())
        }
        .boxed()
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        futures::future::ready(Ok(estimate_tokens(&request.body))).boxed()
    }
}

/// A plain answer: `input` tokens in, the text `parts` streamed in order, `output` tokens out,
/// `end_turn`.
pub fn answer(input: u64, parts: &[&str], output: u64) -> Vec<Result<ExpertEvent, ExpertError>> {
    let usage = |input_tokens, output_tokens| {
        Ok(ExpertEvent::Usage(moe_sovereign_experts::UsageUpdate {
            input_tokens,
            output_tokens,
            ..Default::default()
        }))
    };
    let mut script = vec![usage(Some(input), None)];
    script.extend(parts.iter().map(|p| Ok(ExpertEvent::Text((*p).into()))));
    script.push(usage(None, Some(output)));
    script.push(Ok(ExpertEvent::Stop {
        reason: moe_sovereign_anthropic::StopReason::EndTurn,
        stop_sequence: None,
    }));
    script
}
