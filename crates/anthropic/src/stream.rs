//! Stream events and their SSE encoding.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::request::ContentBlock;
use crate::response::{Message, StopReason, Usage};

/// One server-sent event of a streamed message. `data.type` equals the event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// First event: the message with empty content and the input usage.
    MessageStart {
        /// The message so far.
        message: Message,
    },
    /// A content block opens.
    ContentBlockStart {
        /// Position in the final `content`.
        index: usize,
        /// The block, empty (`text: ""`, `input: {}`, `thinking: ""`).
        content_block: ContentBlock,
    },
    /// A piece of the open block.
    ContentBlockDelta {
        /// Block index.
        index: usize,
        /// The piece.
        delta: Delta,
    },
    /// The block is complete.
    ContentBlockStop {
        /// Block index.
        index: usize,
    },
    /// Top-level changes: stop reason, cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDelta,
        /// Cumulative usage.
        usage: Usage,
    },
    /// Last event.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error after the 200 was sent.
    Error {
        /// The error.
        error: ErrorBody,
    },
}

impl StreamEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }

    /// `event: NAME\ndata: JSON\n\n`.
    pub fn to_sse(&self) -> Bytes {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serializing these plain data types cannot fail (no maps with non-string keys).
        if serde_json::to_writer(&mut out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

/// The `delta` of a `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More tool input JSON (concatenate, parse at block stop).
    InputJsonDelta {
        /// A fragment of JSON.
        partial_json: String,
    },
    /// More reasoning.
    ThinkingDelta {
        /// The reasoning text.
        thinking: String,
    },
    /// The thinking block's signature, once, before its stop.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// Any other delta type (citations, …).
    #[serde(untagged)]
    Other(serde_json::Value),
}

/// The `delta` of a `message_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the model stopped.
    pub stop_reason: Option<StopReason>,
    /// The matching stop sequence.
    pub stop_sequence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frame_names_the_event_and_matches_data_type() {
        let frame = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: Delta::TextDelta {
                text: "po\"ng".into(),
            },
        }
        .to_sse();
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"po\\\"ng\"}}\n\n"
        );
    }

    #[test]
    fn message_stop_and_ping_are_bare() {
        assert_eq!(
            &StreamEvent::Ping.to_sse()[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        assert_eq!(
            &StreamEvent::MessageStop.to_sse()[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }
}
