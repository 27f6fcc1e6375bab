//! The one state machine from expert events to Anthropic stream events, and the SSE body built
//! on it (pings while the expert is quiet, `error` events after the 200, shutdown handling).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use moe_sovereign_anthropic::{ContentBlock, Delta, Message, MessageDelta, StreamEvent};
use moe_sovereign_experts::signature::Signer;
use moe_sovereign_experts::{ExpertEvent, ExpertStream, Step, UsageUpdate, generator};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::GatewayError;
use crate::trace::Recorder;

/// Whether an event carries part of the answer (for the time to first token).
pub fn is_answer(event: &StreamEvent) -> bool {
    matches!(
        event,
        StreamEvent::ContentBlockStart { .. } | StreamEvent::ContentBlockDelta { .. }
    )
}

/// The block currently open.
#[derive(Debug)]
enum Open {
    Text,
    Thinking { text: String, signed: bool },
    ToolUse { any_input: bool },
}

/// Expert events in, stream events out. Block indices follow the order blocks are opened.
#[derive(Debug)]
pub struct Encoder {
    message: Message,
    show_thinking: bool,
    next_index: usize,
    open: Option<Open>,
    stopped: bool,
    steps: StepLog,
    signer: Signer,
}

/// The pipeline's steps for one request, shared by its encoder and its trace recorder.
pub type StepLog = std::sync::Arc<std::sync::Mutex<Vec<Step>>>;

impl Encoder {
    /// An encoder for message `id`, answering `model` (echoed as the client sent it).
    /// Thinking blocks are dropped unless `show_thinking` (the request asked for thinking);
    /// thinking that comes without a signature is signed by `signer`.
    pub fn new(id: String, model: String, show_thinking: bool, signer: Signer) -> Self {
        Self {
            message: Message::new(id, model),
            show_thinking,
            next_index: 0,
            open: None,
            stopped: false,
            steps: StepLog::default(),
            signer,
        }
    }

    /// Where the pipeline's steps go (for the trace).
    pub fn step_log(&self) -> StepLog {
        std::sync::Arc::clone(&self.steps)
    }

    /// Folds a usage update in (before `message_start` it shapes the start's usage).
    pub fn usage(&mut self, update: UsageUpdate) {
        let usage = &mut self.message.usage;
        if let Some(n) = update.input_tokens {
            usage.input_tokens = n;
        }
        if let Some(n) = update.output_tokens {
            usage.output_tokens = n;
        }
        if let Some(n) = update.cache_read_input_tokens {
            usage.cache_read_input_tokens = n;
        }
        if let Some(n) = update.cache_creation_input_tokens {
            usage.cache_creation_input_tokens = n;
        }
    }

    /// `message_start`.
    pub fn start(&self) -> StreamEvent {
        StreamEvent::MessageStart {
            message: self.message.clone(),
        }
    }

    /// The message so far: usage and, once stopped, the stop reason.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Whether a `Stop` has been seen.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The stream events for one expert event.
    pub fn event(&mut self, event: ExpertEvent, out: &mut Vec<StreamEvent>) {
        if let ExpertEvent::Step(step) = event {
            if let Ok(mut steps) = self.steps.lock() {
                steps.push(step);
            }
            return;
        }
        if self.stopped {
            return;
        }
        if !self.show_thinking
            && matches!(
                event,
                ExpertEvent::Thinking(_)
                    | ExpertEvent::ThinkingSignature(_)
                    | ExpertEvent::RedactedThinking(_)
            )
        {
            return;
        }
        match event {
            ExpertEvent::Text(text) => {
                if !matches!(self.open, Some(Open::Text)) {
                    self.open_block(Open::Text, ContentBlock::text(""), out);
                }
                self.delta(Delta::TextDelta { text }, out);
            }
            ExpertEvent::Thinking(thinking) => {
                if !matches!(self.open, Some(Open::Thinking { .. })) {
                    let block = ContentBlock::Thinking {
                        thinking: String::new(),
                        signature: String::new(),
                        extra: Map::new(),
                    };
                    let open = Open::Thinking {
                        text: String::new(),
                        signed: false,
                    };
                    self.open_block(open, block, out);
                }
                if let Some(Open::Thinking { text, .. }) = &mut self.open {
                    text.push_str(&thinking);
                }
                self.delta(Delta::ThinkingDelta { thinking }, out);
            }
            ExpertEvent::ThinkingSignature(signature) => {
                if let Some(Open::Thinking { signed, .. }) = &mut self.open
                    && !*signed
                {
                    *signed = true;
                    self.delta(Delta::SignatureDelta { signature }, out);
                }
            }
            ExpertEvent::RedactedThinking(data) => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                out.push(StreamEvent::ContentBlockStart {
                    index,
                    content_block: ContentBlock::RedactedThinking {
                        data,
                        extra: Map::new(),
                    },
                });
                out.push(StreamEvent::ContentBlockStop { index });
            }
            ExpertEvent::ToolUseStart { id, name } => {
                let block = ContentBlock::ToolUse {
                    id,
                    name,
                    input: Value::Object(Map::new()),
                    extra: Map::new(),
                };
                self.open_block(Open::ToolUse { any_input: false }, block, out);
            }
            ExpertEvent::ToolInputDelta(partial_json) => {
                if let Some(Open::ToolUse { any_input }) = &mut self.open {
                    *any_input = true;
                    self.delta(Delta::InputJsonDelta { partial_json }, out);
                }
            }
            ExpertEvent::BlockEnd => self.close(out),
            ExpertEvent::Step(_) => {}
            ExpertEvent::Usage(update) => self.usage(update),
            ExpertEvent::Stop {
                reason,
                stop_sequence,
            } => {
                self.close(out);
                self.stopped = true;
                self.message.stop_reason = Some(reason);
                self.message.stop_sequence = stop_sequence.clone();
                out.push(StreamEvent::MessageDelta {
                    delta: MessageDelta {
                        stop_reason: Some(reason),
                        stop_sequence,
                    },
                    usage: self.message.usage,
                });
                out.push(StreamEvent::MessageStop);
            }
        }
    }

    fn open_block(&mut self, open: Open, block: ContentBlock, out: &mut Vec<StreamEvent>) {
        self.close(out);
        out.push(StreamEvent::ContentBlockStart {
            index: self.next_index,
            content_block: block,
        });
        self.next_index += 1;
        self.open = Some(open);
    }

    fn delta(&self, delta: Delta, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::ContentBlockDelta {
            index: self.next_index - 1,
            delta,
        });
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let index = self.next_index - 1;
        match open {
            // Clients send thinking blocks back verbatim and expect a signature on each; a
            // local reasoning model has none, so the gateway signs with the install's secret.
            Open::Thinking {
                text,
                signed: false,
            } => out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::SignatureDelta {
                    signature: self.signer.sign(&text),
                },
            }),
            // Clients parse the concatenated input at block stop; never leave it empty.
            Open::ToolUse { any_input: false } => out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::InputJsonDelta {
                    partial_json: "{}".into(),
                },
            }),
            _ => {}
        }
        out.push(StreamEvent::ContentBlockStop { index });
    }
}

/// An `error` event.
pub fn error_event(error: &GatewayError) -> StreamEvent {
    StreamEvent::Error {
        error: error.body(),
    }
}

/// The SSE response body: `message_start` and a `ping` at once, then the expert's events, a
/// `ping` whenever the expert is quiet for `ping_interval`, and an `error` event if the expert
/// fails or the gateway shuts down. `first` are events already read from `stream`.
pub fn body(
    mut encoder: Encoder,
    first: Vec<ExpertEvent>,
    mut stream: ExpertStream,
    ping_interval: Duration,
    shutdown: CancellationToken,
    mut recorder: Recorder,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    generator(move |out| async move {
        let mut events = vec![encoder.start(), StreamEvent::Ping];
        for event in first {
            encoder.event(event, &mut events);
        }
        loop {
            if events.iter().any(is_answer) {
                recorder.first_token();
            }
            for event in events.drain(..) {
                if !out.send(Ok(event.to_sse())).await {
                    return; // client gone: dropping `stream` cancels the expert
                }
            }
            if encoder.is_stopped() {
                recorder.finish(Some(encoder.message()), None);
                return;
            }
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    let error = GatewayError::Expert(moe_sovereign_experts::ExpertError::overloaded(
                        "the gateway is shutting down",
                    ));
                    out.send(Ok(error_event(&error).to_sse())).await;
                    recorder.finish(Some(encoder.message()), Some(&error));
                    return;
                }
                next = tokio::time::timeout(ping_interval, stream.next()) => next,
            };
            match next {
                Err(_quiet) => events.push(StreamEvent::Ping),
                Ok(Some(Ok(event))) => encoder.event(event, &mut events),
                Ok(Some(Err(error))) => {
                    let error = GatewayError::Expert(error);
                    tracing::warn!("stream failed after 200: {error}");
                    events.push(error_event(&error));
                    for event in events.drain(..) {
                        out.send(Ok(event.to_sse())).await;
                    }
                    recorder.finish(Some(encoder.message()), Some(&error));
                    return;
                }
                Ok(None) => {
                    let error = GatewayError::Internal("the expert's stream ended early".into());
                    events.push(error_event(&error));
                    for event in events.drain(..) {
                        out.send(Ok(event.to_sse())).await;
                    }
                    recorder.finish(Some(encoder.message()), Some(&error));
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moe_sovereign_anthropic::StopReason;

    fn run(events: Vec<ExpertEvent>) -> Vec<String> {
        let mut encoder = Encoder::new("msg_1".into(), "m".into(), true, Signer::new([1; 32]));
        let mut out = vec![encoder.start()];
        for e in events {
            encoder.event(e, &mut out);
        }
        out.iter()
            .map(|e| String::from_utf8(e.to_sse().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn thinking_text_and_tool_use_make_three_indexed_blocks() {
        let transcript = run(vec![
            ExpertEvent::Usage(UsageUpdate {
                input_tokens: Some(7),
                ..UsageUpdate::default()
            }),
            ExpertEvent::Thinking("hm".into()),
            ExpertEvent::Text("I'll read it.".into()),
            ExpertEvent::ToolUseStart {
                id: "toolu_1".into(),
                name: "Read".into(),
            },
            ExpertEvent::ToolInputDelta("{\"file_path\":".into()),
            ExpertEvent::ToolInputDelta("\"/x\"}".into()),
            ExpertEvent::Usage(UsageUpdate {
                output_tokens: Some(9),
                ..UsageUpdate::default()
            }),
            ExpertEvent::Stop {
                reason: StopReason::ToolUse,
                stop_sequence: None,
            },
        ])
        .join("");
        let expected = [
            r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#,
            r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
            &format!(
                r#"event: content_block_delta
data: {{"type":"content_block_delta","index":0,"delta":{{"type":"signature_delta","signature":"{}"}}}}"#,
                Signer::new([1; 32]).sign("hm")
            ),
            r#"event: content_block_stop
data: {"type":"content_block_stop","index":0}"#,
            r#"event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"I'll read it."}}"#,
            r#"event: content_block_stop
data: {"type":"content_block_stop","index":1}"#,
            r#"event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"Read","input":{}}}"#,
            r#"event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"file_path\":"}}"#,
            r#"event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"/x\"}"}}"#,
            r#"event: content_block_stop
data: {"type":"content_block_stop","index":2}"#,
            r#"event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":7,"output_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#,
            r#"event: message_stop
data: {"type":"message_stop"}"#,
        ]
        .map(|e| format!("{e}\n\n"))
        .join("");
        assert_eq!(transcript, expected);
    }

    #[test]
    fn upstream_signature_is_kept_and_empty_tool_input_becomes_braces() {
        let transcript = run(vec![
            ExpertEvent::Thinking("a".into()),
            ExpertEvent::ThinkingSignature("sig".into()),
            ExpertEvent::BlockEnd,
            ExpertEvent::ToolUseStart {
                id: "t".into(),
                name: "Now".into(),
            },
            ExpertEvent::Stop {
                reason: StopReason::ToolUse,
                stop_sequence: None,
            },
        ])
        .join("");
        assert!(transcript.contains(r#""signature":"sig""#));
        assert!(!transcript.contains("moe1:"));
        assert!(transcript.contains(r#""partial_json":"{}""#));
    }

    #[test]
    fn thinking_is_dropped_unless_asked_for() {
        let mut encoder = Encoder::new("msg_1".into(), "m".into(), false, Signer::new([1; 32]));
        let mut out = Vec::new();
        encoder.event(ExpertEvent::Thinking("secret plan".into()), &mut out);
        encoder.event(ExpertEvent::ThinkingSignature("s".into()), &mut out);
        encoder.event(ExpertEvent::Text("hi".into()), &mut out);
        let transcript: String = out
            .iter()
            .map(|e| String::from_utf8(e.to_sse().to_vec()).unwrap())
            .collect();
        assert!(!transcript.contains("thinking"), "{transcript}");
        assert!(transcript.contains(r#""index":0,"delta":{"type":"text_delta","text":"hi"}"#));
    }

    #[test]
    fn nothing_follows_stop() {
        let transcript = run(vec![
            ExpertEvent::Stop {
                reason: StopReason::EndTurn,
                stop_sequence: None,
            },
            ExpertEvent::Text("late".into()),
        ]);
        assert!(transcript.last().unwrap().contains("message_stop"));
        assert!(!transcript.join("").contains("late"));
    }
}
