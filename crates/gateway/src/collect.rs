//! A non-streaming answer: the same stream events, folded into one message the way the SDKs'
//! stream helpers do it. One code path for both response kinds.

use moe_sovereign_anthropic::{ContentBlock, Delta, Message, StreamEvent};
use serde_json::Value;

use crate::GatewayError;

/// Folds stream events into a message.
#[derive(Debug, Default)]
pub struct Collector {
    message: Option<Message>,
    tool_inputs: Vec<(usize, String)>,
}

impl Collector {
    /// Applies one event.
    pub fn apply(&mut self, event: StreamEvent) -> Result<(), GatewayError> {
        match event {
            StreamEvent::MessageStart { message } => self.message = Some(message),
            StreamEvent::ContentBlockStart { content_block, .. } => {
                self.message_mut()?.content.push(content_block);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                if let Delta::InputJsonDelta { partial_json } = &delta {
                    match self.tool_inputs.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, json)) => json.push_str(partial_json),
                        None => self.tool_inputs.push((index, partial_json.clone())),
                    }
                    return Ok(());
                }
                let block =
                    self.message_mut()?.content.get_mut(index).ok_or_else(|| {
                        GatewayError::Internal("delta for a missing block".into())
                    })?;
                match (block, delta) {
                    (ContentBlock::Text { text, .. }, Delta::TextDelta { text: more }) => {
                        text.push_str(&more);
                    }
                    (
                        ContentBlock::Thinking { thinking, .. },
                        Delta::ThinkingDelta { thinking: more },
                    ) => thinking.push_str(&more),
                    (
                        ContentBlock::Thinking { signature, .. },
                        Delta::SignatureDelta { signature: sig },
                    ) => *signature = sig,
                    _ => {}
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if let Some(position) = self.tool_inputs.iter().position(|(i, _)| *i == index) {
                    let (_, json) = self.tool_inputs.remove(position);
                    let parsed: Value =
                        serde_json::from_str(if json.trim().is_empty() { "{}" } else { &json })
                            .map_err(|e| {
                                GatewayError::Internal(format!(
                                    "the expert produced tool input that is not JSON ({e}): {json}"
                                ))
                            })?;
                    if let Some(ContentBlock::ToolUse { input, .. }) =
                        self.message_mut()?.content.get_mut(index)
                    {
                        *input = parsed;
                    }
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                let message = self.message_mut()?;
                message.stop_reason = delta.stop_reason;
                message.stop_sequence = delta.stop_sequence;
                message.usage = usage;
            }
            StreamEvent::Error { error } => {
                return Err(GatewayError::Internal(error.message));
            }
            StreamEvent::MessageStop | StreamEvent::Ping => {}
        }
        Ok(())
    }

    fn message_mut(&mut self) -> Result<&mut Message, GatewayError> {
        self.message
            .as_mut()
            .ok_or_else(|| GatewayError::Internal("event before message_start".into()))
    }

    /// The finished message.
    pub fn finish(self) -> Result<Message, GatewayError> {
        self.message
            .ok_or_else(|| GatewayError::Internal("no message was produced".into()))
    }
}
