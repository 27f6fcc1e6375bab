//! `moe_reasoning`: reasoning first, shown live as a `thinking` block, then the answer.
//!
//! - Thinking off (or not asked for): the expert answers with its reasoning switched off — no
//!   thinking block and no hidden reasoning cost.
//! - Thinking on, expert with a reasoning channel of its own (tag `reasoning`): its reasoning
//!   streams through; past the budget it is cut off and the answer is asked for with the
//!   reasoning so far.
//! - Thinking on, any other expert: an explicit think pass (no tools, capped at the budget)
//!   streamed as thinking, then the answer pass with that reasoning in the last user turn (the
//!   prefix of the conversation stays as it was, so a local model reuses its KV cache).
//!
//! `thinking.budget_tokens` caps the reasoning (adaptive: [`ADAPTIVE_BUDGET`]); usage reports
//! the request's own input and both passes' output. Thinking blocks that come back in later
//! turns reach the expert only when our signature on them verifies.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::future::BoxFuture;
use moe_sovereign_anthropic::{
    ContentBlock, InputMessage, MessageContent, MessagesRequest, Role, System, Thinking,
};
use moe_sovereign_experts::signature::Signer;
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, Step, UsageUpdate, generator,
};
use serde_json::Map;

/// The reasoning budget, in tokens, when the request leaves it to us (`adaptive`).
pub const ADAPTIVE_BUDGET: u64 = 1024;

/// What the think pass is told (appended to the system prompt).
const THINK_PROMPT: &str = "Before anyone answers, think the request through step by step: what is asked, what you know, what could go wrong, and the plan for the answer. Write only this reasoning, briefly; do not write the answer itself.";

/// What the answer pass gets after the user's last turn.
fn answer_prompt(reasoning: &str) -> String {
    format!(
        "<reasoning>\n{}\n</reasoning>\nThe reasoning above is yours, written before answering. Now answer the request above, using it.",
        reasoning.trim()
    )
}

/// A reasoning expert.
pub struct Reasoning {
    name: String,
    expert: Arc<dyn Expert>,
    native: bool,
    signer: Signer,
}

impl Reasoning {
    /// `expert` reasoning for `moe_reasoning`; `native` when it has its own reasoning channel.
    /// `signer` verifies thinking blocks sent back to us.
    pub fn new(expert: Arc<dyn Expert>, native: bool, signer: Signer) -> Self {
        Self {
            name: expert.name().to_owned(),
            expert,
            native,
            signer,
        }
    }
}

/// The reasoning budget of a request with thinking on, leaving the answer at least half of
/// `max_tokens`.
fn budget(body: &MessagesRequest) -> Option<u64> {
    let asked = match body.thinking.as_ref()? {
        Thinking::Enabled { budget_tokens, .. } => budget_tokens.unwrap_or(ADAPTIVE_BUDGET),
        Thinking::Adaptive { .. } => ADAPTIVE_BUDGET,
        Thinking::Disabled { .. } => return None,
    };
    let max_tokens = body.max_tokens.unwrap_or(4096);
    Some(asked.min(max_tokens / 2).max(1))
}

fn thinking_off() -> Option<Thinking> {
    Some(Thinking::Disabled { extra: Map::new() })
}

/// Drops thinking blocks we cannot vouch for from the conversation: a thinking block stays only
/// when our signature on it verifies (redacted thinking never does). An assistant turn left
/// empty keeps a short note, so turns still alternate.
pub fn keep_verified_thinking(body: &mut MessagesRequest, signer: &Signer) {
    for message in &mut body.messages {
        let MessageContent::Blocks(blocks) = &mut message.content else {
            continue;
        };
        let before = blocks.len();
        blocks.retain(|block| match block {
            ContentBlock::Thinking {
                thinking,
                signature,
                ..
            } => signer.verify(thinking, signature),
            ContentBlock::RedactedThinking { .. } => false,
            _ => true,
        });
        if blocks.is_empty() && before > 0 {
            blocks.push(ContentBlock::text("(reasoning omitted)"));
        }
    }
}

/// The think pass: no tools, thinking off (we ask for it in text), capped at `budget`.
fn think_request(request: &ExpertRequest, budget: u64) -> ExpertRequest {
    let mut think = request.clone();
    let body = &mut think.body;
    let tools: Vec<String> = body
        .tools
        .iter()
        .flatten()
        .map(|tool| tool.name.clone())
        .collect();
    body.tools = None;
    body.tool_choice = None;
    body.thinking = thinking_off();
    body.max_tokens = Some(budget);
    body.stop_sequences = None;
    let mut prompt = THINK_PROMPT.to_owned();
    if !tools.is_empty() {
        prompt.push_str(&format!(
            " The answer may call these tools: {}.",
            tools.join(", ")
        ));
    }
    body.system = Some(match body.system.take() {
        None => System::Text(prompt),
        Some(System::Text(text)) => System::Text(format!("{text}\n\n{prompt}")),
        Some(System::Blocks(mut blocks)) => {
            blocks.push(ContentBlock::text(prompt));
            System::Blocks(blocks)
        }
    });
    think
}

/// The answer pass: the request as sent, thinking off, `reasoning` after the last user turn,
/// `output_left` tokens to answer in.
fn answer_request(request: &ExpertRequest, reasoning: &str, output_left: u64) -> ExpertRequest {
    let mut answer = request.clone();
    let body = &mut answer.body;
    body.thinking = thinking_off();
    body.max_tokens = Some(output_left.max(1));
    let note = ContentBlock::text(answer_prompt(reasoning));
    match body.messages.last_mut() {
        Some(last) if last.role == Role::User => {
            let mut blocks = last.content.blocks();
            blocks.push(note);
            last.content = MessageContent::Blocks(blocks);
        }
        _ => body.messages.push(InputMessage {
            role: Role::User,
            content: MessageContent::Blocks(vec![note]),
            extra: Map::new(),
        }),
    }
    answer
}

fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A rough token count of reasoning text (for the budget of a native reasoner, whose stream
/// reports output tokens only at the end).
fn rough_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

impl Expert for Reasoning {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        self.expert.model_label()
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        Box::pin(async move {
            let mut request = request;
            keep_verified_thinking(&mut request.body, &self.signer);
            let Some(budget) = budget(&request.body) else {
                request.body.thinking = thinking_off();
                return self.expert.stream(request).await;
            };
            let start = Instant::now();
            let first = if self.native {
                let mut native = request.clone();
                native.body.thinking = Some(Thinking::Enabled {
                    budget_tokens: Some(budget),
                    extra: Map::new(),
                });
                self.expert.stream(native).await?
            } else {
                self.expert.stream(think_request(&request, budget)).await?
            };
            let expert = Arc::clone(&self.expert);
            let native = self.native;
            let max_tokens = request.body.max_tokens.unwrap_or(4096);
            Ok(generator(move |out| async move {
                let reasoned = match reason(first, native, budget, &out).await {
                    Some(reasoned) => reasoned,
                    None => return,
                };
                let Reasoned {
                    text,
                    input_tokens,
                    output_tokens,
                    answered,
                } = reasoned;
                let think = ExpertEvent::Step(Step {
                    stage: "think".into(),
                    expert: expert.name().into(),
                    outcome: format!("{output_tokens} tokens of reasoning"),
                    ms: ms_since(start),
                });
                if !out.send(Ok(think)).await || answered {
                    return;
                }
                let answer_start = Instant::now();
                let left = max_tokens.saturating_sub(output_tokens);
                let mut answer = match expert.stream(answer_request(&request, &text, left)).await {
                    Ok(stream) => stream,
                    Err(error) => {
                        out.send(Err(error)).await;
                        return;
                    }
                };
                let mut stepped = false;
                while let Some(item) = answer.next().await {
                    let item = match item {
                        // The request's own input, and both passes' output.
                        Ok(ExpertEvent::Usage(usage)) => Ok(ExpertEvent::Usage(UsageUpdate {
                            input_tokens: input_tokens.or(usage.input_tokens),
                            output_tokens: usage.output_tokens.map(|n| n + output_tokens),
                            ..usage
                        })),
                        Ok(ExpertEvent::Thinking(_) | ExpertEvent::ThinkingSignature(_)) => {
                            continue;
                        }
                        Ok(step @ ExpertEvent::Step(_)) => Ok(step),
                        Ok(event) if !stepped => {
                            stepped = true;
                            let step = ExpertEvent::Step(Step {
                                stage: "answer".into(),
                                expert: expert.name().into(),
                                outcome: "answered after reasoning".into(),
                                ms: ms_since(answer_start),
                            });
                            if !out.send(Ok(step)).await {
                                return;
                            }
                            Ok(event)
                        }
                        other => other,
                    };
                    if !out.send(item).await {
                        return; // the client left: dropping `answer` cancels the expert
                    }
                }
            })
            .boxed())
        })
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        Box::pin(async move {
            let mut request = request;
            keep_verified_thinking(&mut request.body, &self.signer);
            self.expert.count_tokens(request).await
        })
    }

    fn waiting(&self) -> usize {
        self.expert.waiting()
    }

    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        self.expert.warm()
    }
}

/// What the reasoning part produced.
struct Reasoned {
    text: String,
    input_tokens: Option<u64>,
    output_tokens: u64,
    /// A native reasoner answered within its budget: the whole answer has been sent.
    answered: bool,
}

/// Streams the reasoning of `stream` out as thinking (closing the block), up to `budget`
/// tokens; `None` when the client left or the expert failed (the error was sent).
async fn reason(
    mut stream: ExpertStream,
    native: bool,
    budget: u64,
    out: &moe_sovereign_experts::Yielder<Result<ExpertEvent, ExpertError>>,
) -> Option<Reasoned> {
    let mut reasoned = Reasoned {
        text: String::new(),
        input_tokens: None,
        output_tokens: 0,
        answered: false,
    };
    let mut thinking_open = false;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                out.send(Err(error)).await;
                return None;
            }
        };
        match event {
            // An inner stage's note (a fallback): for the trace, as it came.
            step @ ExpertEvent::Step(_) => {
                let sent = out.send(Ok(step)).await;
                if !sent {
                    return None;
                }
            }
            ExpertEvent::Usage(usage) => {
                reasoned.input_tokens = reasoned.input_tokens.or(usage.input_tokens);
                if let Some(n) = usage.output_tokens {
                    reasoned.output_tokens = n;
                }
                if native && !out.send(Ok(ExpertEvent::Usage(usage))).await {
                    return None;
                }
            }
            // The think pass writes its reasoning as text; a native reasoner as thinking.
            ExpertEvent::Text(text) if !native => {
                reasoned.text.push_str(&text);
                thinking_open = true;
                if !out.send(Ok(ExpertEvent::Thinking(text))).await {
                    return None;
                }
            }
            ExpertEvent::Thinking(text) => {
                reasoned.text.push_str(&text);
                thinking_open = true;
                if !out.send(Ok(ExpertEvent::Thinking(text))).await {
                    return None;
                }
                if native && rough_tokens(&reasoned.text) >= budget {
                    // Over budget: cut the reasoning off (dropping the stream cancels it).
                    reasoned.output_tokens = rough_tokens(&reasoned.text);
                    out.send(Ok(ExpertEvent::BlockEnd)).await;
                    return Some(reasoned);
                }
            }
            ExpertEvent::ThinkingSignature(_) => {}
            ExpertEvent::Stop { .. } if !native => break,
            // A native reasoner's answer: everything after its reasoning goes through.
            other if native => {
                if thinking_open {
                    thinking_open = false;
                    if !out.send(Ok(ExpertEvent::BlockEnd)).await {
                        return None;
                    }
                }
                reasoned.answered = true;
                if !out.send(Ok(other)).await {
                    return None;
                }
            }
            _ => {}
        }
    }
    if thinking_open && !out.send(Ok(ExpertEvent::BlockEnd)).await {
        return None;
    }
    if reasoned.output_tokens == 0 {
        reasoned.output_tokens = rough_tokens(&reasoned.text);
    }
    Some(reasoned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Recording, drain, reply, request};
    use serde_json::json;

    fn signer() -> Signer {
        Signer::new([3; 32])
    }

    fn texts(events: &[Result<ExpertEvent, ExpertError>]) -> (String, String, Vec<String>) {
        let (mut thinking, mut text, mut steps) = (String::new(), String::new(), Vec::new());
        for event in events {
            match event {
                Ok(ExpertEvent::Thinking(t)) => thinking.push_str(t),
                Ok(ExpertEvent::Text(t)) => text.push_str(t),
                Ok(ExpertEvent::Step(s)) => steps.push(s.stage.clone()),
                _ => {}
            }
        }
        (thinking, text, steps)
    }

    #[tokio::test]
    async fn thinking_off_means_one_call_with_reasoning_off_and_no_thinking() {
        let expert = Recording::new("r", vec![reply(10, 2, "4")]);
        let stage = Reasoning::new(expert.clone(), false, signer());
        let events = drain(
            stage
                .stream(request(json!({"model": "m", "max_tokens": 100,
                    "messages": [{"role": "user", "content": "2+2?"}]})))
                .await
                .unwrap(),
        )
        .await;
        let (thinking, text, _) = texts(&events);
        assert_eq!((thinking.as_str(), text.as_str()), ("", "4"));
        let seen = expert.requests();
        assert_eq!(seen.len(), 1);
        assert!(matches!(seen[0].thinking, Some(Thinking::Disabled { .. })));
    }

    #[tokio::test]
    async fn without_a_reasoning_channel_it_thinks_first_then_answers_with_that_reasoning() {
        let expert = Recording::new(
            "r",
            vec![reply(50, 12, "Two and two make four."), reply(70, 3, "4")],
        );
        let stage = Reasoning::new(expert.clone(), false, signer());
        let body = json!({"model": "m", "max_tokens": 1000, "system": "Be brief.",
            "thinking": {"type": "enabled", "budget_tokens": 300},
            "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "2+2?"}]});
        let events = drain(stage.stream(request(body)).await.unwrap()).await;
        let (thinking, text, steps) = texts(&events);
        assert_eq!(thinking, "Two and two make four.");
        assert_eq!(text, "4");
        assert_eq!(steps, ["think", "answer"]);
        // The thinking block closes before the answer starts.
        let end = events
            .iter()
            .position(|e| matches!(e, Ok(ExpertEvent::BlockEnd)))
            .unwrap();
        let answer = events
            .iter()
            .position(|e| matches!(e, Ok(ExpertEvent::Text(_))))
            .unwrap();
        assert!(end < answer);
        // Usage: the request's own input; output of both passes.
        let usage: Vec<UsageUpdate> = events
            .iter()
            .filter_map(|e| match e {
                Ok(ExpertEvent::Usage(u)) => Some(*u),
                _ => None,
            })
            .collect();
        assert!(
            usage.iter().all(|u| u.input_tokens.is_none_or(|n| n == 50)),
            "{usage:?}"
        );
        assert_eq!(usage.last().unwrap().output_tokens, Some(15));

        let seen = expert.requests();
        assert_eq!(seen.len(), 2);
        let think = &seen[0];
        assert_eq!(think.max_tokens, Some(300));
        assert!(think.tools.is_none());
        let system = think.system.as_ref().unwrap().text();
        assert!(
            system.starts_with("Be brief.") && system.contains("Read"),
            "{system}"
        );
        let answer = &seen[1];
        assert!(answer.tools.is_some());
        assert_eq!(answer.max_tokens, Some(1000 - 12));
        assert_eq!(answer.system.as_ref().unwrap().text(), "Be brief.");
        let last = answer.messages.last().unwrap().content.text();
        assert!(
            last.starts_with("2+2?") && last.contains("Two and two make four."),
            "{last}"
        );
    }

    #[tokio::test]
    async fn the_budget_leaves_room_for_the_answer_and_adaptive_has_a_default() {
        let body = |thinking| {
            serde_json::from_value::<MessagesRequest>(json!({"model": "m", "max_tokens": 200,
                "thinking": thinking, "messages": []}))
            .unwrap()
        };
        assert_eq!(
            budget(&body(json!({"type": "enabled", "budget_tokens": 150}))),
            Some(100)
        );
        assert_eq!(
            budget(&body(json!({"type": "enabled", "budget_tokens": 50}))),
            Some(50)
        );
        assert_eq!(budget(&body(json!({"type": "adaptive"}))), Some(100));
        assert_eq!(budget(&body(json!({"type": "disabled"}))), None);
    }

    #[tokio::test]
    async fn a_native_reasoner_over_budget_is_cut_off_and_asked_for_the_answer() {
        let long = "x".repeat(400); // about 100 tokens
        let expert = Recording::new(
            "n",
            vec![
                vec![
                    Ok(ExpertEvent::Thinking(long.clone())),
                    Ok(ExpertEvent::Thinking("never".into())),
                ],
                reply(5, 1, "done"),
            ],
        );
        let stage = Reasoning::new(expert.clone(), true, signer());
        let body = json!({"model": "m", "max_tokens": 1000,
            "thinking": {"type": "enabled", "budget_tokens": 64},
            "messages": [{"role": "user", "content": "go"}]});
        let events = drain(stage.stream(request(body)).await.unwrap()).await;
        let (thinking, text, _) = texts(&events);
        assert_eq!((thinking, text.as_str()), (long, "done"));
        let seen = expert.requests();
        assert!(matches!(
            seen[0].thinking,
            Some(Thinking::Enabled {
                budget_tokens: Some(64),
                ..
            })
        ));
        assert!(matches!(seen[1].thinking, Some(Thinking::Disabled { .. })));
    }

    #[test]
    fn only_thinking_we_signed_reaches_the_expert() {
        let signer = signer();
        let ours = signer.sign("mine");
        let mut body: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 10, "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "mine", "signature": ours},
                    {"type": "thinking", "thinking": "edited", "signature": ours},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "foreign", "signature": "EqQB"}]},
                {"role": "user", "content": "c"}]
        }))
        .unwrap();
        keep_verified_thinking(&mut body, &signer);
        let kinds: Vec<Vec<&str>> = body
            .messages
            .iter()
            .map(|m| match &m.content {
                MessageContent::Blocks(blocks) => blocks.iter().map(ContentBlock::kind).collect(),
                MessageContent::Text(_) => vec!["text"],
            })
            .collect();
        assert_eq!(
            kinds,
            [
                vec!["text"],
                vec!["thinking", "text"],
                vec!["text"],
                vec!["text"]
            ]
        );
    }
}
