//! One sub-call of a stage: a small request built for an expert, its stream folded into a
//! [`Reply`] (text, a forced tool call's input, tokens, time).

use std::time::Instant;

use futures::StreamExt;
use moe_sovereign_anthropic::{
    ContentBlock, InputMessage, MessageContent, MessagesRequest, Role, System, Thinking, Tool,
    ToolChoice,
};
use moe_sovereign_experts::{Expert, ExpertError, ExpertEvent, ExpertRequest};
use serde_json::{Map, Value};

/// What a sub-call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// Its text.
    pub text: String,
    /// The input of the tool it was made to call, when it called one.
    pub tool_input: Option<Value>,
    /// Every tool call it made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Wall time, in milliseconds.
    pub ms: u64,
}

/// A tool call in a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `toolu_…`.
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments (what the model wrote; a string when it was not JSON).
    pub input: Value,
}

/// A sub-request: `system`, one user turn `user`, at most `max_tokens`, at `temperature`;
/// `model` is the client's model id (experts without a model of their own forward it).
pub fn request(
    model: &str,
    system: &str,
    user: String,
    max_tokens: u64,
    temperature: f64,
) -> ExpertRequest {
    ExpertRequest {
        body: MessagesRequest {
            model: model.to_owned(),
            messages: vec![InputMessage {
                role: Role::User,
                content: MessageContent::Text(user),
                extra: Map::new(),
            }],
            system: Some(System::Text(system.to_owned())),
            max_tokens: Some(max_tokens),
            tools: None,
            tool_choice: None,
            thinking: Some(Thinking::Disabled { extra: Map::new() }),
            stream: Some(true),
            temperature: Some(temperature),
            top_p: None,
            top_k: None,
            stop_sequences: None,
            metadata: None,
            extra: Map::new(),
        },
        anthropic_version: None,
        anthropic_beta: None,
        session: None,
        key_id: None,
        request_id: None,
    }
}

/// `request` made to answer by calling tool `name` with input matching `schema` (local
/// experts decode under the schema; remote ones are checked by the caller).
pub fn forced_tool(
    mut request: ExpertRequest,
    name: &str,
    about: &str,
    schema: Value,
) -> ExpertRequest {
    request.body.tools = Some(vec![Tool {
        name: name.to_owned(),
        description: Some(about.to_owned()),
        input_schema: Some(schema),
        extra: Map::new(),
    }]);
    request.body.tool_choice = Some(ToolChoice::Tool {
        name: name.to_owned(),
        extra: Map::new(),
    });
    request
}

/// Runs `request` on `expert` to its end.
pub async fn run(expert: &dyn Expert, request: ExpertRequest) -> Result<Reply, ExpertError> {
    let start = Instant::now();
    let mut stream = expert.stream(request).await?;
    let mut reply = Reply::default();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    while let Some(event) = stream.next().await {
        match event? {
            ExpertEvent::Text(text) => reply.text.push_str(&text),
            ExpertEvent::ToolUseStart { id, name } => calls.push((id, name, String::new())),
            ExpertEvent::ToolInputDelta(json) => {
                if let Some((_, _, all)) = calls.last_mut() {
                    all.push_str(&json);
                }
            }
            ExpertEvent::Usage(usage) => {
                reply.input_tokens = usage.input_tokens.unwrap_or(reply.input_tokens);
                reply.output_tokens = usage.output_tokens.unwrap_or(reply.output_tokens);
            }
            ExpertEvent::Stop { .. } => break,
            _ => {}
        }
    }
    reply.tool_calls = calls
        .into_iter()
        .map(|(id, name, json)| ToolCall {
            id,
            name,
            input: serde_json::from_str(if json.trim().is_empty() { "{}" } else { &json })
                .unwrap_or(Value::String(json)),
        })
        .collect();
    reply.tool_input = reply.tool_calls.first().map(|c| c.input.clone());
    reply.ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(reply)
}

/// The text of a user turn as a person wrote it (tool results and images left out).
pub fn user_text(message: &InputMessage) -> String {
    match &message.content {
        MessageContent::Text(text) => text.clone(),
        MessageContent::Blocks(blocks) => blocks
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .filter(|text| !text.trim_start().starts_with("<system-reminder>"))
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}
