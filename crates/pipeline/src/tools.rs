//! MCP tools in sub-calls: an expert is offered the tools of the configured MCP servers, and
//! the gateway runs the calls it makes and feeds the results back, for a few rounds. Only the
//! pipeline's own sub-calls get these tools: a client's tool calls (Claude Code's) always go
//! back to the client.

use std::time::Instant;

use moe_sovereign_anthropic::{
    ContentBlock, InputMessage, MessageContent, Role, Tool, ToolResultContent,
};
use moe_sovereign_experts::{Expert, ExpertRequest};
use moe_sovereign_mcp::{CALL_TIMEOUT, Mcp, McpTool};
use serde_json::{Map, Value};

use crate::call::{self, Reply};

/// Rounds of tool calls one sub-call may make before it must answer.
pub const MAX_ROUNDS: usize = 4;
/// Characters of a tool's description shown to the planner.
const ABOUT_CHARS: usize = 200;

/// One tool call the gateway ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRun {
    /// The qualified tool name.
    pub name: String,
    /// What it said (or why it failed), shortened.
    pub outcome: String,
    /// It failed.
    pub failed: bool,
    /// Wall time.
    pub ms: u64,
}

/// `tools` as Anthropic tool definitions.
pub fn definitions(tools: &[McpTool]) -> Vec<Tool> {
    tools
        .iter()
        .map(|t| Tool {
            name: t.name.clone(),
            description: Some(t.description.clone()),
            input_schema: Some(t.input_schema.clone()),
            extra: Map::new(),
        })
        .collect()
}

/// One line per tool for a planner: name, what it does, its argument names.
pub fn catalogue(tools: &[McpTool]) -> String {
    tools
        .iter()
        .map(|t| {
            let about: String = t.description.chars().take(ABOUT_CHARS).collect();
            let args: Vec<&str> = t
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!(
                "- {}({}): {}",
                t.name,
                args.join(", "),
                about.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs tool `name` with `input`: the text to give a model, whether it failed, and the record.
pub async fn run_tool(mcp: &Mcp, name: &str, input: &Value) -> (String, bool, ToolRun) {
    let start = Instant::now();
    let (text, failed) = match mcp.call(name, input, CALL_TIMEOUT).await {
        Ok(output) => (output.text, output.is_error),
        Err(error) => (error.to_string(), true),
    };
    let outcome: String = text.chars().take(120).collect();
    let run = ToolRun {
        name: name.to_owned(),
        outcome: outcome.split_whitespace().collect::<Vec<_>>().join(" "),
        failed,
        ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    (text, failed, run)
}

/// Runs `request` on `expert` with `tools` offered; each round's tool calls are run through
/// `mcp` and answered, up to [`MAX_ROUNDS`], then the expert must answer without tools. The
/// final reply carries the tokens of every round; the runs are in the order made.
pub async fn run_with_tools(
    expert: &dyn Expert,
    mut request: ExpertRequest,
    mcp: &Mcp,
    tools: &[McpTool],
) -> Result<(Reply, Vec<ToolRun>), String> {
    let mut runs = Vec::new();
    let (mut input_tokens, mut output_tokens, mut ms) = (0, 0, 0);
    if !tools.is_empty() {
        request.body.tools = Some(definitions(tools));
    }
    for round in 0..=MAX_ROUNDS {
        if round == MAX_ROUNDS {
            request.body.tools = None;
            request.body.tool_choice = None;
        }
        let mut reply = call::run(expert, request.clone())
            .await
            .map_err(|e| e.to_string())?;
        input_tokens += reply.input_tokens;
        output_tokens += reply.output_tokens;
        ms += reply.ms;
        let offered = request.body.tools.as_ref().is_some_and(|t| !t.is_empty());
        if reply.tool_calls.is_empty() || !offered {
            reply.input_tokens = input_tokens;
            reply.output_tokens = output_tokens;
            reply.ms = ms;
            return Ok((reply, runs));
        }
        let mut asked = Vec::new();
        if !reply.text.trim().is_empty() {
            asked.push(ContentBlock::text(reply.text.clone()));
        }
        let mut answers = Vec::new();
        for tool_call in &reply.tool_calls {
            asked.push(ContentBlock::ToolUse {
                id: tool_call.id.clone(),
                name: tool_call.name.clone(),
                input: tool_call.input.clone(),
                extra: Map::new(),
            });
            let (text, failed, run) = if tools.iter().any(|t| t.name == tool_call.name) {
                run_tool(mcp, &tool_call.name, &tool_call.input).await
            } else {
                let why = format!("there is no tool named `{}`", tool_call.name);
                let run = ToolRun {
                    name: tool_call.name.clone(),
                    outcome: why.clone(),
                    failed: true,
                    ms: 0,
                };
                (why, true, run)
            };
            runs.push(run);
            answers.push(ContentBlock::ToolResult {
                tool_use_id: tool_call.id.clone(),
                content: Some(ToolResultContent::Text(text)),
                is_error: failed.then_some(true),
                extra: Map::new(),
            });
        }
        let messages = &mut request.body.messages;
        messages.push(InputMessage {
            role: Role::Assistant,
            content: MessageContent::Blocks(asked),
            extra: Map::new(),
        });
        messages.push(InputMessage {
            role: Role::User,
            content: MessageContent::Blocks(answers),
            extra: Map::new(),
        });
    }
    Err("the tool rounds ended without an answer".into())
}
