//! Anthropic request → OpenAI chat completion request; OpenAI stream chunks → expert events.

use moe_sovereign_anthropic::{
    ContentBlock, ImageSource, MessagesRequest, Role, StopReason, ToolChoice,
};
use serde_json::{Map, Value, json};

use crate::think::ThinkSplitter;
use crate::{ExpertError, ExpertEvent, UsageUpdate, random_id};

/// The streaming chat completion body for `request`, addressed to `model`.
///
/// System text (including Claude Code's mid-conversation `role: "system"` messages) becomes one
/// leading system message, as most chat templates require; `tool_result` blocks become `tool`
/// messages right after the assistant turn that called them; thinking in the history is dropped.
pub fn to_chat_completion(request: &MessagesRequest, model: &str) -> Result<Value, ExpertError> {
    let mut system = request
        .system
        .as_ref()
        .map(|s| s.text())
        .unwrap_or_default();
    let mut messages = Vec::new();
    for message in &request.messages {
        match message.role {
            Role::System => {
                let text = message.content.text();
                if !system.is_empty() && !text.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&text);
            }
            Role::User => user_messages(&message.content.blocks(), &mut messages)?,
            Role::Assistant => messages.push(assistant_message(&message.content.blocks())),
        }
    }
    if !system.is_empty() {
        messages.insert(0, json!({"role": "system", "content": system}));
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), true.into());
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if let Some(max_tokens) = request.max_tokens {
        body.insert("max_tokens".into(), max_tokens.into());
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), p.into());
    }
    if let Some(k) = request.top_k {
        body.insert("top_k".into(), k.into());
    }
    if let Some(stop) = &request.stop_sequences
        && !stop.is_empty()
    {
        body.insert("stop".into(), json!(stop));
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .flatten()
        .filter_map(|tool| {
            let schema = tool.input_schema.clone()?;
            Some(json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description.clone().unwrap_or_default(),
                    "parameters": schema,
                }
            }))
        })
        .collect();
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &request.tool_choice {
            body.insert(
                "tool_choice".into(),
                match choice {
                    ToolChoice::Auto { .. } => json!("auto"),
                    ToolChoice::Any { .. } => json!("required"),
                    ToolChoice::None { .. } => json!("none"),
                    ToolChoice::Tool { name, .. } => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                },
            );
        }
    }
    Ok(Value::Object(body))
}

fn user_messages(blocks: &[ContentBlock], out: &mut Vec<Value>) -> Result<(), ExpertError> {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text, .. } => parts.push(json!({"type": "text", "text": text})),
            ContentBlock::Image { source, .. } => {
                let url = match source {
                    ImageSource::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                    ImageSource::Url { url } => url.clone(),
                    ImageSource::Other(_) => {
                        return Err(ExpertError::BadRequest(
                            "this expert accepts only base64 or URL image sources".into(),
                        ));
                    }
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } => {
                let mut text = content.as_ref().map(|c| c.text()).unwrap_or_default();
                if *is_error == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": text}));
            }
            ContentBlock::Other(value) => {
                return Err(ExpertError::BadRequest(format!(
                    "this expert cannot read {:?} content blocks",
                    value
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                )));
            }
            // Thinking and tool_use never appear in user turns; nothing to send.
            _ => {}
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let only_text = parts.iter().all(|p| p["type"] == "text");
    let content = if only_text {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        Value::String(texts.join("\n\n"))
    } else {
        Value::Array(parts)
    };
    out.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn assistant_message(blocks: &[ContentBlock]) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(t),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    message
}

/// Turns streamed chat completion chunks into expert events.
#[derive(Debug)]
pub struct ChunkTranslator {
    expert: String,
    stop_sequences: Vec<String>,
    tool: Option<PendingTool>,
    saw_tool_call: bool,
    finish: Option<(StopReason, Option<String>)>,
    chunks: u64,
    saw_usage: bool,
    estimated_input: u64,
    think: ThinkSplitter,
}

/// The tool call being streamed; arguments wait until its name is known.
#[derive(Debug)]
struct PendingTool {
    index: u64,
    id: Option<String>,
    name: Option<String>,
    started: bool,
    buffered: String,
}

impl ChunkTranslator {
    /// A translator for one stream; `stop_sequences` lets it name the sequence that matched;
    /// `estimated_input` stands in for the prompt size if the server reports no usage.
    pub fn new(expert: String, stop_sequences: Vec<String>, estimated_input: u64) -> Self {
        Self {
            expert,
            stop_sequences,
            tool: None,
            saw_tool_call: false,
            finish: None,
            chunks: 0,
            saw_usage: false,
            estimated_input,
            think: ThinkSplitter::new(),
        }
    }

    /// Translates one `data:` payload.
    pub fn chunk(&mut self, data: &str) -> Vec<Result<ExpertEvent, ExpertError>> {
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                return vec![Err(ExpertError::Upstream(format!(
                    "expert {:?}: unreadable stream chunk: {e}",
                    self.expert
                )))];
            }
        };
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            return vec![Err(ExpertError::Upstream(format!(
                "expert {:?}: upstream error: {message}",
                self.expert
            )))];
        }
        let mut out = Vec::new();
        if let Some(choice) = chunk.pointer("/choices/0") {
            let delta = &choice["delta"];
            let reasoning = delta
                .get("reasoning_content")
                .or_else(|| delta.get("reasoning"))
                .and_then(Value::as_str);
            if let Some(thinking) = reasoning.filter(|t| !t.is_empty()) {
                out.push(Ok(ExpertEvent::Thinking(thinking.to_owned())));
            }
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.chunks += 1;
                // A reasoning model's inline `<think>…</think>` becomes a thinking block.
                out.extend(self.think.push(text).into_iter().map(Ok));
            }
            if let Some(calls) = delta["tool_calls"].as_array() {
                for call in calls {
                    self.tool_call(call, &mut out);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                let matched = choice["stop_reason"]
                    .as_str()
                    .filter(|s| self.stop_sequences.iter().any(|q| q == s))
                    .map(str::to_owned);
                self.finish = Some(match (reason, matched) {
                    ("length", _) => (StopReason::MaxTokens, None),
                    (_, Some(sequence)) => (StopReason::StopSequence, Some(sequence)),
                    ("tool_calls" | "function_call", _) => (StopReason::ToolUse, None),
                    _ if self.saw_tool_call => (StopReason::ToolUse, None),
                    _ => (StopReason::EndTurn, None),
                });
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.saw_usage = true;
            out.push(Ok(ExpertEvent::Usage(UsageUpdate {
                input_tokens: usage["prompt_tokens"].as_u64(),
                output_tokens: usage["completion_tokens"].as_u64(),
                cache_read_input_tokens: usage
                    .pointer("/prompt_tokens_details/cached_tokens")
                    .and_then(Value::as_u64),
                cache_creation_input_tokens: None,
            })));
        }
        out
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<Result<ExpertEvent, ExpertError>>) {
        self.saw_tool_call = true;
        let index = call["index"].as_u64().unwrap_or(0);
        if self.tool.as_ref().is_none_or(|t| t.index != index) {
            if self.tool.as_ref().is_some_and(|t| t.started) {
                out.push(Ok(ExpertEvent::BlockEnd));
            }
            self.tool = Some(PendingTool {
                index,
                id: None,
                name: None,
                started: false,
                buffered: String::new(),
            });
        }
        let Some(tool) = self.tool.as_mut() else {
            return;
        };
        if let Some(id) = call["id"].as_str().filter(|s| !s.is_empty()) {
            tool.id = Some(id.to_owned());
        }
        if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
            tool.name.get_or_insert_with(String::new).push_str(name);
        }
        if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
            tool.buffered.push_str(args);
        }
        if !tool.started
            && let Some(name) = tool.name.clone()
        {
            tool.started = true;
            let id = tool.id.clone().unwrap_or_else(|| random_id("toolu_"));
            out.push(Ok(ExpertEvent::ToolUseStart { id, name }));
        }
        if tool.started && !tool.buffered.is_empty() {
            out.push(Ok(ExpertEvent::ToolInputDelta(std::mem::take(
                &mut tool.buffered,
            ))));
        }
    }

    /// The end of the stream: the final events, or an error if the upstream never finished.
    pub fn finish(&mut self) -> Vec<Result<ExpertEvent, ExpertError>> {
        let mut out: Vec<Result<ExpertEvent, ExpertError>> =
            self.think.finish().into_iter().map(Ok).collect();
        if !self.saw_usage {
            // Servers without `stream_options.include_usage` support (llama-cpp-python): the
            // prompt is estimated and one content chunk counts as one token.
            out.push(Ok(ExpertEvent::Usage(UsageUpdate {
                input_tokens: Some(self.estimated_input),
                output_tokens: Some(self.chunks),
                ..UsageUpdate::default()
            })));
        }
        match self.finish.take() {
            Some((reason, stop_sequence)) => out.push(Ok(ExpertEvent::Stop {
                reason,
                stop_sequence,
            })),
            None => out.push(Err(ExpertError::Upstream(format!(
                "expert {:?}: upstream stream ended without a finish_reason",
                self.expert
            )))),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> MessagesRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn tool_round_trip_history_becomes_openai_messages() {
        let body = to_chat_completion(
            &request(json!({
                "model": "claude-opus-4-8",
                "max_tokens": 100,
                "system": [{"type": "text", "text": "be brief"}],
                "messages": [
                    {"role": "user", "content": "read x"},
                    {"role": "system", "content": "agents: none"},
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/x"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "banana", "cache_control": {"type": "ephemeral"}},
                        {"type": "text", "text": "go on"}
                    ]}
                ],
                "tools": [{"name": "Read", "description": "reads", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any"},
                "stop_sequences": ["END"]
            })),
            "m",
        )
        .unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "be brief\n\nagents: none"},
                {"role": "user", "content": "read x"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": "{\"file_path\":\"/x\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "banana"},
                {"role": "user", "content": "go on"}
            ])
        );
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["stop"], json!(["END"]));
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn chunks_become_text_tool_and_stop_events() {
        let mut t = ChunkTranslator::new("x".into(), vec![], 0);
        let mut events: Vec<_> = [
            json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
            json!({"choices": [{"delta": {"reasoning_content": "think"}}]}),
            json!({"choices": [{"delta": {"content": "Hi"}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "Read", "arguments": ""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}),
        ]
        .iter()
        .flat_map(|c| t.chunk(&c.to_string()))
        .map(Result::unwrap)
        .collect();
        events.extend(t.finish().into_iter().map(Result::unwrap));
        assert_eq!(
            events,
            vec![
                ExpertEvent::Thinking("think".into()),
                ExpertEvent::Text("Hi".into()),
                ExpertEvent::ToolUseStart {
                    id: "call_1".into(),
                    name: "Read".into()
                },
                ExpertEvent::ToolInputDelta("{\"a\":".into()),
                ExpertEvent::ToolInputDelta("1}".into()),
                ExpertEvent::Usage(UsageUpdate {
                    input_tokens: Some(12),
                    output_tokens: Some(5),
                    ..UsageUpdate::default()
                }),
                ExpertEvent::Stop {
                    reason: StopReason::ToolUse,
                    stop_sequence: None
                },
            ]
        );
    }

    #[test]
    fn a_stream_without_finish_reason_is_an_error_and_length_is_max_tokens() {
        let mut t = ChunkTranslator::new("x".into(), vec![], 0);
        t.chunk(&json!({"choices": [{"delta": {"content": "a"}}]}).to_string());
        assert!(t.finish().last().unwrap().is_err());

        let mut t = ChunkTranslator::new("x".into(), vec!["END".into()], 0);
        t.chunk(&json!({"choices": [{"delta": {}, "finish_reason": "length"}]}).to_string());
        assert_eq!(
            t.finish().pop().unwrap().unwrap(),
            ExpertEvent::Stop {
                reason: StopReason::MaxTokens,
                stop_sequence: None
            }
        );
        let mut t = ChunkTranslator::new("x".into(), vec!["END".into()], 0);
        t.chunk(
            &json!({"choices": [{"delta": {}, "finish_reason": "stop", "stop_reason": "END"}]})
                .to_string(),
        );
        assert_eq!(
            t.finish().pop().unwrap().unwrap(),
            ExpertEvent::Stop {
                reason: StopReason::StopSequence,
                stop_sequence: Some("END".into())
            }
        );
    }

    #[test]
    fn inline_think_tags_become_thinking() {
        let mut t = ChunkTranslator::new("x".into(), vec![], 0);
        let mut events = Vec::new();
        for piece in ["<thi", "nk>2+2", "=4</think>\n\n", "Four."] {
            events
                .extend(t.chunk(&json!({"choices": [{"delta": {"content": piece}}]}).to_string()));
        }
        events.extend(
            t.chunk(&json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}).to_string()),
        );
        let events: Vec<ExpertEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            vec![
                ExpertEvent::Thinking("2+2".into()),
                ExpertEvent::Thinking("=4".into()),
                ExpertEvent::Text("Four.".into()),
            ]
        );
    }
}
