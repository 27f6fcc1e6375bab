//! Response bodies: the non-streaming message, usage, models, token counts.

use serde::{Deserialize, Serialize};

use crate::request::ContentBlock;

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// `max_tokens` reached.
    MaxTokens,
    /// A custom stop sequence matched.
    StopSequence,
    /// The model called a tool.
    ToolUse,
    /// The model paused a long turn.
    PauseTurn,
    /// The model refused.
    Refusal,
}

/// Token usage. Numbers in stream `message_delta`s are cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens not read from or written to a cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Prompt tokens written to a cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Prompt tokens read from a cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

/// A complete assistant message (non-streaming response, and `message_start`'s payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_…`.
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `"assistant"`.
    pub role: String,
    /// The model id as the client asked for it.
    pub model: String,
    /// The answer.
    pub content: Vec<ContentBlock>,
    /// Null while streaming.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that matched, if any.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
}

impl Message {
    /// An empty assistant message.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: "message".into(),
            role: "assistant".into(),
            model: model.into(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Always `"model"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// e.g. `claude-moe-native`.
    pub id: String,
    /// Shown by Claude Code and Claude Desktop.
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// This page.
    pub data: Vec<ModelInfo>,
    /// Whether more pages follow.
    pub has_more: bool,
    /// First id of this page.
    pub first_id: Option<String>,
    /// Last id of this page.
    pub last_id: Option<String>,
}

/// `POST /v1/messages/count_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTokensResponse {
    /// Tokens the request would use as input.
    pub input_tokens: u64,
}
