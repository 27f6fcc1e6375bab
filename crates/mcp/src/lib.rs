//! The MCP servers named in `config.toml` (`[[mcp_servers]]`), as one catalogue of tools the
//! orchestrated pipeline can call.
//!
//! A server is a child process spoken to over stdio (`command`, `args`, `env`) or a streamable
//! HTTP endpoint (`url`), through the official Rust SDK (`rmcp`). Servers are started on first
//! use, not at start-up, and started again after they die. Tools are named
//! `{server}__{tool}` so two servers may offer tools of the same name. Every call has a time
//! limit; a server that does not answer in time or fails is left out of the catalogue, never an
//! error of the request that asked.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

/// How long a server may take to start and list its tools.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one tool call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most text of one tool result passed on to a model.
pub const MAX_RESULT_CHARS: usize = 8000;
/// The separator between a server's name and its tool's in a qualified tool name.
pub const SEPARATOR: &str = "__";

/// What went wrong talking to an MCP server.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// No configured server offers that tool.
    #[error("no MCP server offers a tool named `{0}`")]
    UnknownTool(String),
    /// The server could not be started or did not complete the handshake.
    #[error("MCP server `{server}` did not start: {why}")]
    Start {
        /// The server's name.
        server: String,
        /// Why.
        why: String,
    },
    /// The call failed on the way (transport, protocol).
    #[error("MCP server `{server}` failed: {why}")]
    Call {
        /// The server's name.
        server: String,
        /// Why.
        why: String,
    },
    /// The server took longer than allowed.
    #[error("MCP server `{server}` did not answer within {secs} s")]
    Timeout {
        /// The server's name.
        server: String,
        /// The limit.
        secs: u64,
    },
}

/// How to reach one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A child process on this machine, spoken to over stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables (values may be secrets: never logged).
        env: BTreeMap<String, String>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// Its URL (`http://127.0.0.1:3001/mcp`).
        url: String,
    },
}

/// One `[[mcp_servers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Its name (letters, digits, `-`, `_`).
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
}

/// A tool some server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// `{server}__{tool}`: the name models see.
    pub name: String,
    /// The server.
    pub server: String,
    /// The tool's own name on its server.
    pub tool: String,
    /// What it does.
    pub description: String,
    /// Its arguments, as a JSON schema object.
    pub input_schema: Value,
}

/// What a tool call returned: its text, and whether the tool says it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// The text blocks of the result (other blocks named), capped at [`MAX_RESULT_CHARS`].
    pub text: String,
    /// The tool reported an error.
    pub is_error: bool,
}

type Session = RunningService<RoleClient, ()>;

struct Connected {
    session: Session,
    tools: Vec<McpTool>,
}

struct Server {
    config: ServerConfig,
    connected: Mutex<Option<Connected>>,
}

/// The configured MCP servers.
#[derive(Clone, Default)]
pub struct Mcp {
    servers: Arc<Vec<Server>>,
}

/// `{server}__{tool}` with anything but ASCII letters, digits, `_` and `-` replaced, at most 64
/// characters (the limit of Anthropic tool names).
pub fn qualified_name(server: &str, tool: &str) -> String {
    format!("{server}{SEPARATOR}{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

impl Mcp {
    /// The servers of `configs`; nothing is started yet.
    pub fn new(configs: Vec<ServerConfig>) -> Self {
        let servers = configs
            .into_iter()
            .map(|config| Server {
                config,
                connected: Mutex::new(None),
            })
            .collect();
        Self {
            servers: Arc::new(servers),
        }
    }

    /// True when no server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The configured servers.
    pub fn configs(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.iter().map(|s| &s.config)
    }

    /// Every tool of every server that answers (servers started as needed, in parallel); a
    /// server that does not start is logged and left out.
    pub async fn tools(&self) -> Vec<McpTool> {
        let lists = join_all(self.servers.iter().map(|server| async move {
            match server.tools().await {
                Ok(tools) => tools,
                Err(error) => {
                    tracing::warn!(%error, "MCP server left out");
                    Vec::new()
                }
            }
        }))
        .await;
        lists.into_iter().flatten().collect()
    }

    /// Calls tool `name` (qualified) with `arguments` (an object; anything else is sent as no
    /// arguments), within `limit`.
    pub async fn call(
        &self,
        name: &str,
        arguments: &Value,
        limit: Duration,
    ) -> Result<ToolOutput, McpError> {
        for server in self.servers.iter() {
            let tools = server.tools().await.unwrap_or_default();
            if let Some(tool) = tools.iter().find(|t| t.name == name) {
                return server.call(&tool.tool, arguments, limit).await;
            }
        }
        Err(McpError::UnknownTool(name.to_owned()))
    }

    /// Stops every server that was started.
    pub async fn shutdown(&self) {
        for server in self.servers.iter() {
            if let Some(connected) = server.connected.lock().await.take() {
                let _ = connected.session.cancel().await;
            }
        }
    }
}

impl Server {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Its tools, starting it first when it is not running.
    async fn tools(&self) -> Result<Vec<McpTool>, McpError> {
        let mut connected = self.connected.lock().await;
        if connected
            .as_ref()
            .is_some_and(|c| c.session.is_transport_closed())
        {
            *connected = None;
        }
        if let Some(c) = connected.as_ref() {
            return Ok(c.tools.clone());
        }
        let fresh = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| McpError::Start {
                server: self.name().to_owned(),
                why: format!("no handshake within {} s", CONNECT_TIMEOUT.as_secs()),
            })??;
        let tools = fresh.tools.clone();
        tracing::info!(
            server = self.name(),
            tools = tools.len(),
            "MCP server started"
        );
        *connected = Some(fresh);
        Ok(tools)
    }

    async fn connect(&self) -> Result<Connected, McpError> {
        let start = |why: String| McpError::Start {
            server: self.name().to_owned(),
            why,
        };
        let session: Session = match &self.config.transport {
            Transport::Stdio { command, args, env } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).envs(env).kill_on_drop(true);
                let (process, stderr) = TokioChildProcess::builder(cmd)
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| start(format!("cannot run `{command}`: {e}")))?;
                if let Some(stderr) = stderr {
                    let server = self.name().to_owned();
                    tokio::spawn(async move {
                        let mut lines = BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            tracing::debug!(server = %server, "MCP server says: {line}");
                        }
                    });
                }
                ().serve(process).await.map_err(|e| start(e.to_string()))?
            }
            Transport::Http { url } => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                ().serve(transport)
                    .await
                    .map_err(|e| start(e.to_string()))?
            }
        };
        let listed = session
            .list_all_tools()
            .await
            .map_err(|e| start(format!("listing its tools failed: {e}")))?;
        let tools = listed
            .into_iter()
            .map(|tool| McpTool {
                name: qualified_name(self.name(), &tool.name),
                server: self.name().to_owned(),
                tool: tool.name.to_string(),
                description: tool.description.map(|d| d.to_string()).unwrap_or_default(),
                input_schema: Value::Object((*tool.input_schema).clone()),
            })
            .collect();
        Ok(Connected { session, tools })
    }

    async fn call(
        &self,
        tool: &str,
        arguments: &Value,
        limit: Duration,
    ) -> Result<ToolOutput, McpError> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params.arguments = Some(arguments.clone());
        }
        let peer = {
            let connected = self.connected.lock().await;
            match connected.as_ref() {
                Some(c) => c.session.peer().clone(),
                None => {
                    return Err(McpError::Call {
                        server: self.name().to_owned(),
                        why: "not running".into(),
                    });
                }
            }
        };
        let result = tokio::time::timeout(limit, peer.call_tool(params))
            .await
            .map_err(|_| McpError::Timeout {
                server: self.name().to_owned(),
                secs: limit.as_secs(),
            })?
            .map_err(|e| McpError::Call {
                server: self.name().to_owned(),
                why: e.to_string(),
            })?;
        let mut text = String::new();
        for block in &result.content {
            if !text.is_empty() {
                text.push('\n');
            }
            match block.as_text() {
                Some(t) => text.push_str(&t.text),
                None => text.push_str("[a non-text result block]"),
            }
        }
        if text.is_empty()
            && let Some(structured) = &result.structured_content
        {
            text = structured.to_string();
        }
        if text.chars().count() > MAX_RESULT_CHARS {
            text = text.chars().take(MAX_RESULT_CHARS).collect();
            text.push_str("\n[cut]");
        }
        Ok(ToolOutput {
            text,
            is_error: result.is_error.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_are_valid_tool_names() {
        assert_eq!(
            qualified_name("everything", "get-sum"),
            "everything__get-sum"
        );
        assert_eq!(qualified_name("my server", "a.b/c"), "my_server__a_b_c");
        assert_eq!(qualified_name(&"s".repeat(80), "t").len(), 64);
    }

    #[tokio::test]
    async fn a_server_that_cannot_start_is_left_out_with_its_reason() {
        let mcp = Mcp::new(vec![ServerConfig {
            name: "missing".into(),
            transport: Transport::Stdio {
                command: "/nonexistent/mcp-server".into(),
                args: vec![],
                env: BTreeMap::new(),
            },
        }]);
        assert!(mcp.tools().await.is_empty());
        let error = mcp
            .call("missing__x", &Value::Null, CALL_TIMEOUT)
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("no MCP server offers a tool named `missing__x`")
        );
    }
}
