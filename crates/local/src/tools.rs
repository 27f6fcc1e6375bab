//! Tools for models whose chat template does not render them, and forced tool calls.
//!
//! A template that never mentions `tools` (SmolLM2's plain ChatML, many small models) would
//! silently drop the tool definitions and every earlier call and result. For those, the
//! definitions go into the system prompt in the Hermes format (the one Qwen and most
//! tool-tuned small models learnt), earlier calls become `<tool_call>` text in the assistant
//! turn, and results become `<tool_response>` user turns. The engine's own parser reads calls
//! back from the output (Hermes tags, bare JSON, Llama and Mistral formats).
//!
//! `tool_choice` `any` / `tool` are enforced by a JSON-schema constraint on the whole output:
//! `{"name": <one of the allowed tools>, "arguments": <that tool's input schema>}`, so even a
//! tiny model emits a call that parses and validates.

use serde_json::{Value, json};

/// What the request allows the model to do with its tools (OpenAI's `tool_choice` values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The model decides.
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call one of the tools.
    Any,
    /// The model must call this tool.
    Tool(String),
}

impl Choice {
    /// Reads an OpenAI-shaped `tool_choice` (absent = auto).
    pub fn from_openai(value: &Value) -> Self {
        match value {
            Value::String(s) if s == "none" => Self::None,
            Value::String(s) if s == "required" => Self::Any,
            Value::Object(_) => match value["function"]["name"].as_str() {
                Some(name) => Self::Tool(name.to_owned()),
                None => Self::Auto,
            },
            _ => Self::Auto,
        }
    }
}

/// Whether a chat template renders tool definitions itself.
pub fn template_renders_tools(template: &str) -> bool {
    template.contains("tools")
}

/// The Hermes-format tool instructions appended to the system prompt.
pub fn system_prompt(tools: &[Value]) -> String {
    let mut prompt = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        prompt.push('\n');
        prompt.push_str(&tool.to_string());
    }
    prompt.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    prompt
}

/// Rewrites OpenAI-shaped chat messages for a template without tool support: the tool prompt
/// joins the system message (one is created if needed), assistant `tool_calls` become
/// `<tool_call>` text, `tool` messages become `<tool_response>` user turns.
pub fn fold_into_text(messages: &mut Vec<Value>, tools: &[Value], choice: &Choice) {
    if !tools.is_empty() && *choice != Choice::None {
        let prompt = system_prompt(tools);
        match messages.first_mut() {
            Some(first) if first["role"] == "system" => {
                let text = first["content"].as_str().unwrap_or_default();
                first["content"] = json!(if text.is_empty() {
                    prompt
                } else {
                    format!("{text}\n\n{prompt}")
                });
            }
            _ => messages.insert(0, json!({"role": "system", "content": prompt})),
        }
    }
    for message in messages.iter_mut() {
        if message["role"] == "tool" {
            let result = text_of(&message["content"]);
            *message = json!({
                "role": "user",
                "content": format!("<tool_response>\n{result}\n</tool_response>"),
            });
        } else if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            let mut text = text_of(&message["content"]);
            for call in calls {
                let arguments: Value = call["function"]["arguments"]
                    .as_str()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_else(|| json!({}));
                let call = json!({"name": call["function"]["name"], "arguments": arguments});
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("<tool_call>\n{call}\n</tool_call>"));
            }
            *message = json!({"role": "assistant", "content": text});
        }
    }
}

/// The text of an OpenAI-shaped `content`: a string, or its text parts joined by blank lines.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => String::new(),
    }
}

/// The JSON schema every output must match when `choice` forces a call, or `None` when it does
/// not. Errors name a forced tool that is not in `tools`.
pub fn forced_call_schema(tools: &[Value], choice: &Choice) -> Result<Option<Value>, String> {
    let allowed: Vec<&Value> = match choice {
        Choice::Auto | Choice::None => return Ok(None),
        Choice::Any => tools.iter().collect(),
        Choice::Tool(name) => {
            let tool = tools
                .iter()
                .find(|t| t["function"]["name"] == name.as_str())
                .ok_or_else(|| format!("tool_choice names {name:?}, which is not in tools"))?;
            vec![tool]
        }
    };
    if allowed.is_empty() {
        return Err("tool_choice requires a tool call, but the request has no tools".into());
    }
    let variants: Vec<Value> = allowed
        .iter()
        .map(|tool| {
            let parameters = match &tool["function"]["parameters"] {
                Value::Object(schema) if !schema.is_empty() => {
                    let mut schema = schema.clone();
                    // Claude Code's schemas name their draft; a nested `$schema` is not ours to check.
                    schema.remove("$schema");
                    // Only the declared keys: a schema that leaves extra keys open lets a small
                    // model invent one and ramble in it until max_tokens, so the call never
                    // closes (seen with SmolLM2: `"description": "The weather in a…"`).
                    if schema.contains_key("properties") {
                        schema
                            .entry("additionalProperties")
                            .or_insert(Value::Bool(false));
                    }
                    Value::Object(schema)
                }
                _ => json!({"type": "object"}),
            };
            json!({
                "type": "object",
                "properties": {
                    "name": {"const": tool["function"]["name"]},
                    "arguments": parameters,
                },
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let mut schema = if variants.len() == 1 {
        variants.into_iter().next().unwrap_or_default()
    } else {
        json!({"anyOf": variants})
    };
    // Fixed separators and no free whitespace: a small model cannot wander off into blanks.
    schema["x-guidance"] = json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
        "lenient": true,
    });
    Ok(Some(schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Value {
        json!({"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }})
    }

    #[test]
    fn choices_come_from_openai_values() {
        assert_eq!(Choice::from_openai(&json!("required")), Choice::Any);
        assert_eq!(Choice::from_openai(&json!("none")), Choice::None);
        assert_eq!(Choice::from_openai(&Value::Null), Choice::Auto);
        assert_eq!(
            Choice::from_openai(&json!({"type": "function", "function": {"name": "x"}})),
            Choice::Tool("x".into())
        );
    }

    #[test]
    fn calls_and_results_become_hermes_text() {
        let mut messages = vec![
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Weather in Paris?"}),
            json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]}),
            json!({"role": "tool", "tool_call_id": "t1", "content": "18°C"}),
        ];
        fold_into_text(&mut messages, &[weather()], &Choice::Auto);
        let system = messages[0]["content"].as_str().unwrap();
        assert!(system.starts_with("Be brief.\n\n# Tools"), "{system}");
        assert!(system.contains("\"name\":\"get_weather\""), "{system}");
        assert_eq!(
            messages[2],
            json!({"role": "assistant", "content": "Checking.\n<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>"})
        );
        assert_eq!(
            messages[3],
            json!({"role": "user", "content": "<tool_response>\n18°C\n</tool_response>"})
        );
    }

    #[test]
    fn none_keeps_the_tools_out_of_the_prompt() {
        let mut messages = vec![json!({"role": "user", "content": "hi"})];
        fold_into_text(&mut messages, &[weather()], &Choice::None);
        assert_eq!(messages, vec![json!({"role": "user", "content": "hi"})]);
        fold_into_text(&mut messages, &[weather()], &Choice::Any);
        assert_eq!(messages[0]["role"], "system");
    }

    #[test]
    fn forced_calls_get_a_schema_over_the_allowed_tools() {
        let other = json!({"type": "function", "function": {"name": "noop", "parameters": {}}});
        let tools = [weather(), other];
        assert_eq!(forced_call_schema(&tools, &Choice::Auto), Ok(None));
        let one = forced_call_schema(&tools, &Choice::Tool("get_weather".into()))
            .unwrap()
            .unwrap();
        assert_eq!(one["properties"]["name"]["const"], "get_weather");
        assert_eq!(one["properties"]["arguments"]["required"][0], "city");
        assert_eq!(
            one["properties"]["arguments"]["additionalProperties"],
            false
        );
        let any = forced_call_schema(&tools, &Choice::Any).unwrap().unwrap();
        assert_eq!(any["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(
            any["anyOf"][1]["properties"]["arguments"],
            json!({"type": "object"})
        );
        assert!(
            forced_call_schema(&tools, &Choice::Tool("nope".into()))
                .unwrap_err()
                .contains("\"nope\"")
        );
        assert!(forced_call_schema(&[], &Choice::Any).is_err());
    }
}
