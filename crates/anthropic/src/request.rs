//! Request bodies of `POST /v1/messages` and `POST /v1/messages/count_tokens`.
//!
//! Every struct keeps the fields it does not know in `extra`, so nothing a client sends is lost
//! when a request is forwarded to another Anthropic-compatible server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /v1/messages` (and of `count_tokens`, which omits `max_tokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model id as the client sent it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// System prompt: a string or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// Required for `/v1/messages`; absent for `count_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `auto`, `any`, `tool` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking: `enabled` (with a budget), `adaptive` or `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// SSE when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// `metadata.user_id` and friends; accepted, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Everything else (`output_config`, `context_management`, `service_tier`, …), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system`: a plain string or an array of (text) blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum System {
    /// `"system": "…"`.
    Text(String),
    /// `"system": [{"type":"text","text":"…"}, …]`.
    Blocks(Vec<ContentBlock>),
}

impl System {
    /// The system prompt's text, blocks joined by blank lines.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => join_text(blocks),
        }
    }
}

/// The role of an input message. Claude Code sends `system` messages inside `messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (or tool results).
    User,
    /// The model.
    Assistant,
    /// A mid-conversation system message.
    System,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: MessageContent,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// `"content": "…"`.
    Text(String),
    /// `"content": [{…}, …]`.
    Blocks(Vec<ContentBlock>),
}

impl MessageContent {
    /// The content as blocks (a string becomes one text block).
    pub fn blocks(&self) -> Vec<ContentBlock> {
        match self {
            Self::Text(text) => vec![ContentBlock::text(text.clone())],
            Self::Blocks(blocks) => blocks.clone(),
        }
    }

    /// The text of all text blocks, joined by blank lines.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => join_text(blocks),
        }
    }
}

fn join_text(blocks: &[ContentBlock]) -> String {
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n\n")
}

/// A content block, in requests and responses alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// `cache_control`, `citations`, … kept as is.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// An image (base64 or URL source).
    Image {
        /// Where the bytes are.
        source: ImageSource,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A tool call made by the assistant.
    ToolUse {
        /// `toolu_…` id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (an object).
        input: Value,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// The result of a tool call, sent by the user side.
    ToolResult {
        /// The `tool_use` block this answers.
        tool_use_id: String,
        /// A string or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
        /// True when the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Visible reasoning.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Opaque signature.
        #[serde(default)]
        signature: String,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Reasoning the client may not see.
    RedactedThinking {
        /// Opaque data.
        data: String,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A block type this gateway does not model (documents, search results, server tools, …).
    #[serde(untagged)]
    Other(Value),
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            extra: Map::new(),
        }
    }

    /// The block's `type` string.
    pub fn kind(&self) -> &str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::ToolUse { .. } => "tool_use",
            Self::ToolResult { .. } => "tool_result",
            Self::Thinking { .. } => "thinking",
            Self::RedactedThinking { .. } => "redacted_thinking",
            Self::Other(value) => value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown"),
        }
    }
}

/// `source` of an image block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline bytes.
    Base64 {
        /// e.g. `image/png`.
        media_type: String,
        /// Base64 bytes.
        data: String,
    },
    /// A URL.
    Url {
        /// The URL.
        url: String,
    },
    /// Any other source kind (files API, …).
    #[serde(untagged)]
    Other(Value),
}

/// `content` of a `tool_result`: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    /// A string.
    Text(String),
    /// Text and image blocks.
    Blocks(Vec<ContentBlock>),
}

impl ToolResultContent {
    /// The text of the result.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => join_text(blocks),
        }
    }
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input (absent for Anthropic's typed server tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// `type`, `cache_control`, … kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// Unknown fields (`disable_parallel_tool_use`), kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// The model must call some tool.
    Any {
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// No tool calls.
    None {
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

/// `thinking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    /// Thinking on, with a budget.
    Enabled {
        /// Token budget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_tokens: Option<u64>,
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// The model decides (Claude Code's default).
    Adaptive {
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Thinking off.
    Disabled {
        /// Unknown fields, kept.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

impl Thinking {
    /// Whether the client asked for thinking output.
    pub fn is_on(&self) -> bool {
        !matches!(self, Self::Disabled { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claude_code_body_round_trips_with_unknown_fields_kept() {
        let body = json!({
            "model": "claude-opus-4-8",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                    {"type": "text", "text": "say pong", "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "system", "content": "Available agent types"}
            ],
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.495; cc_entrypoint=sdk-cli;"},
                {"type": "text", "text": "You are a Claude agent", "cache_control": {"type": "ephemeral"}}
            ],
            "tools": [{"name": "Read", "description": "Reads", "input_schema": {"type": "object", "$schema": "https://json-schema.org/draft/2020-12/schema"}}],
            "metadata": {"user_id": "{\"device_id\":\"ab\"}"},
            "max_tokens": 64000,
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"},
            "stream": true
        });
        let request: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(request.messages[1].role, Role::System);
        assert!(request.extra.contains_key("output_config"));
        assert!(matches!(request.thinking, Some(Thinking::Adaptive { .. })));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
    }

    #[test]
    fn unknown_block_types_are_kept_verbatim() {
        let block = json!({"type": "document", "source": {"type": "text", "data": "x"}});
        let parsed: ContentBlock = serde_json::from_value(block.clone()).unwrap();
        assert_eq!(parsed.kind(), "document");
        assert_eq!(serde_json::to_value(parsed).unwrap(), block);
    }

    #[test]
    fn tool_result_content_may_be_string_or_blocks() {
        let block: ContentBlock = serde_json::from_value(json!({
            "type": "tool_result", "tool_use_id": "t1",
            "content": [{"type": "text", "text": "1\tbanana"}], "is_error": false
        }))
        .unwrap();
        let ContentBlock::ToolResult { content, .. } = block else {
            panic!("not a tool_result")
        };
        assert_eq!(content.unwrap().text(), "1\tbanana");
    }
}
