//! `config.toml`: the raw schema (unknown keys rejected) and its validation into [`Config`].
//! Every problem is reported at once, each with `file:line:column`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moe_sovereign_experts::Profile;
use serde::Deserialize;
use toml::Spanned;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8742";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    allow_remote: bool,
    secret_store: Option<Spanned<String>>,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    local: RawLocal,
    #[serde(default)]
    experts: Vec<RawExpert>,
    #[serde(default)]
    profiles: BTreeMap<Spanned<String>, RawProfile>,
    search: Option<RawSearch>,
    #[serde(default)]
    mcp_servers: Vec<RawMcpServer>,
    graph: Option<RawGraph>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpServer {
    name: Spanned<String>,
    command: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGraph {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    searxng_url: Spanned<String>,
    max_results: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    ping_interval_ms: Option<u64>,
    first_event_timeout_ms: Option<u64>,
    max_body_mib: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    idle_unload_secs: Option<u64>,
    memory_budget_mib: Option<u64>,
    load_wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpert {
    name: Spanned<String>,
    kind: Spanned<String>,
    base_url: Option<Spanned<String>>,
    model: Option<String>,
    api_key: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    expert: Option<Spanned<String>>,
    experts: Option<Spanned<Vec<Spanned<String>>>>,
    tool_expert: Option<Spanned<String>>,
}

/// Where key plaintext is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretStoreKind {
    /// The OS keychain (default).
    #[default]
    Keychain,
    /// `secrets.json`, mode 0600 (opt-in, for machines without a keychain).
    File,
}

/// The kind of an expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpertKind {
    /// Another Anthropic-compatible gateway.
    Anthropic,
    /// An OpenAI-compatible `/v1/chat/completions` server.
    OpenAi,
    /// A registered GGUF model, run in-process.
    Local,
}

/// A validated expert entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertConfig {
    /// Unique name.
    pub name: String,
    /// Kind.
    pub kind: ExpertKind,
    /// Server address (remote kinds; empty for local).
    pub base_url: String,
    /// Upstream model id; for `local`, the registered model's name.
    pub model: Option<String>,
    /// `env:NAME` or `keychain:NAME`.
    pub api_key: Option<SecretRef>,
    /// What it is good at (`reasoning`: it has its own reasoning channel; `code`, `math`, …:
    /// what the planner assigns by).
    pub tags: Vec<String>,
}

/// A reference to a secret, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A keychain entry (service `moe-sovereign`).
    Keychain(String),
}

/// Gateway tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTuning {
    /// Quiet time before a `ping`.
    pub ping_interval: Duration,
    /// Wait for the first expert event before committing to a 200.
    pub first_event_timeout: Duration,
    /// Body limit.
    pub max_body_bytes: usize,
}

/// How local models share memory (`[local]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTuning {
    /// Unload a model unused this long (`idle_unload_secs`, 0 = never; default 15 min).
    pub idle_unload: Option<Duration>,
    /// Bytes of model files resident at once (`memory_budget_mib`, 0 = no limit); `None`: 60%
    /// of this machine's memory.
    pub memory_budget: Option<Option<u64>>,
    /// How long a request waits for a model to load before a 529 (`load_wait_ms`, default 30 s).
    pub load_wait: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Whether a non-loopback listen address is allowed.
    pub allow_remote: bool,
    /// Secret store.
    pub secret_store: SecretStoreKind,
    /// Gateway tunables.
    pub gateway: GatewayTuning,
    /// Local model residency.
    pub local: LocalTuning,
    /// Experts, in file order.
    pub experts: Vec<ExpertConfig>,
    /// Profile → its experts' names, in the order they are tried (at least one).
    pub profiles: Vec<(Profile, Vec<String>)>,
    /// `moe_orchestrated`'s tool-capable expert (the final turn of tool-bearing requests).
    pub tool_expert: Option<String>,
    /// Web search for research tasks (`[search]`; off when absent: it is egress).
    pub search: Option<SearchConfig>,
    /// MCP servers whose tools `moe_orchestrated`'s planner and experts may use.
    pub mcp_servers: Vec<McpServerConfig>,
    /// `moe_orchestrated` remembers facts per key (`[graph] enabled`, default on).
    pub graph: bool,
    /// Where it was read from, for messages about it.
    pub origin: Origin,
}

/// One `[[mcp_servers]]` entry.
pub type McpServerConfig = moe_sovereign_mcp::ServerConfig;

/// `[search]`: a SearXNG instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchConfig {
    /// Its address.
    pub searxng_url: String,
    /// Results kept per search (default 5).
    pub max_results: usize,
}

/// Where a [`Config`] came from: problems found later (an expert that cannot be built) are
/// reported at the right file, line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file (`None`: built in, no file named).
    pub path: Option<PathBuf>,
    /// Where each `[[experts]]` entry's name is (line, column), by name.
    pub experts: BTreeMap<String, (usize, usize)>,
}

impl Origin {
    /// A problem with expert `name`, at its entry (the top of the file when unknown).
    pub fn expert_problem(&self, name: &str, message: String) -> Problem {
        let (line, column) = self.experts.get(name).copied().unwrap_or((1, 1));
        Problem {
            line,
            column,
            message,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        #[expect(clippy::unwrap_used, reason = "a constant that parses")]
        let listen = DEFAULT_LISTEN.parse().unwrap();
        Self {
            listen,
            allow_remote: false,
            secret_store: SecretStoreKind::Keychain,
            gateway: GatewayTuning {
                ping_interval: Duration::from_secs(10),
                first_event_timeout: Duration::from_secs(5),
                max_body_bytes: 32 * 1024 * 1024,
            },
            local: LocalTuning {
                idle_unload: Some(Duration::from_secs(15 * 60)),
                memory_budget: None,
                load_wait: Duration::from_secs(30),
            },
            experts: Vec::new(),
            profiles: Vec::new(),
            tool_expert: None,
            search: None,
            mcp_servers: Vec::new(),
            graph: true,
            origin: Origin::default(),
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: usize,
    /// 1-based column, when known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Parsing or validation failed.
    #[error("{}", render(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Loads `path`; a missing file means the built-in defaults.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config {
            origin: Origin {
                path: Some(path.to_owned()),
                ..Origin::default()
            },
            ..Config::default()
        }),
        Err(source) => Err(ConfigError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses and validates `text` (read from `path`, for messages).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        invalid(vec![Problem {
            line,
            column,
            message: e.message().trim().to_owned(),
        }])
    })?;
    let mut problems = Vec::new();
    let mut problem = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_column(text, span.start);
        problems.push(Problem {
            line,
            column,
            message,
        });
    };
    let mut config = Config {
        allow_remote: raw.allow_remote,
        origin: Origin {
            path: Some(path.to_owned()),
            ..Origin::default()
        },
        ..Config::default()
    };

    if let Some(listen) = &raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() || raw.allow_remote => config.listen = addr,
            Ok(addr) => problem(
                listen.span(),
                format!(
                    "listen = {addr} is not a loopback address; set allow_remote = true to expose the gateway (auth stays on)"
                ),
            ),
            Err(_) => problem(
                listen.span(),
                format!("listen = {:?} is not an IP:port address", listen.get_ref()),
            ),
        }
    }
    if let Some(store) = &raw.secret_store {
        match store.get_ref().as_str() {
            "keychain" => config.secret_store = SecretStoreKind::Keychain,
            "file" => config.secret_store = SecretStoreKind::File,
            other => problem(
                store.span(),
                format!("secret_store = {other:?}: expected \"keychain\" or \"file\""),
            ),
        }
    }
    let g = &raw.gateway;
    if let Some(ms) = g.ping_interval_ms {
        config.gateway.ping_interval = Duration::from_millis(ms.max(10));
    }
    if let Some(ms) = g.first_event_timeout_ms {
        config.gateway.first_event_timeout = Duration::from_millis(ms);
    }
    if let Some(mib) = g.max_body_mib {
        config.gateway.max_body_bytes = mib.saturating_mul(1024 * 1024);
    }
    let l = &raw.local;
    if let Some(secs) = l.idle_unload_secs {
        config.local.idle_unload = (secs > 0).then(|| Duration::from_secs(secs));
    }
    if let Some(mib) = l.memory_budget_mib {
        config.local.memory_budget = Some((mib > 0).then(|| mib.saturating_mul(1024 * 1024)));
    }
    if let Some(ms) = l.load_wait_ms {
        config.local.load_wait = Duration::from_millis(ms);
    }

    for expert in &raw.experts {
        let name = expert.name.get_ref().clone();
        if name.is_empty() {
            problem(expert.name.span(), "expert name must not be empty".into());
        }
        if config.experts.iter().any(|e| e.name == name) {
            problem(
                expert.name.span(),
                format!("expert {name:?} is defined twice"),
            );
        }
        let kind = match expert.kind.get_ref().as_str() {
            "anthropic" => ExpertKind::Anthropic,
            "openai" => ExpertKind::OpenAi,
            "local" => ExpertKind::Local,
            other => {
                problem(
                    expert.kind.span(),
                    format!("kind = {other:?}: expected \"anthropic\", \"openai\" or \"local\""),
                );
                continue;
            }
        };
        let base_url = match &expert.base_url {
            _ if kind == ExpertKind::Local => {
                if expert.model.is_none() {
                    problem(
                        expert.kind.span(),
                        format!(
                            "expert {name:?}: kind = \"local\" needs model = \"<a name from `moe-sovereign models list`>\""
                        ),
                    );
                    continue;
                }
                String::new()
            }
            Some(url)
                if url.get_ref().starts_with("http://")
                    || url.get_ref().starts_with("https://") =>
            {
                url.get_ref().clone()
            }
            Some(url) => {
                problem(
                    url.span(),
                    format!(
                        "base_url = {:?} must start with http:// or https://",
                        url.get_ref()
                    ),
                );
                continue;
            }
            None => {
                problem(
                    expert.kind.span(),
                    format!("expert {name:?} needs a base_url"),
                );
                continue;
            }
        };
        let api_key = match &expert.api_key {
            None => None,
            Some(reference) => match parse_secret_ref(reference.get_ref()) {
                Ok(r) => Some(r),
                Err(message) => {
                    problem(reference.span(), message);
                    continue;
                }
            },
        };
        let mut tags: Vec<String> = Vec::new();
        for tag in &expert.tags {
            let value = tag.get_ref().trim().to_lowercase();
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problem(
                    tag.span(),
                    format!(
                        "tag {:?}: use a short word (letters, digits, - or _)",
                        tag.get_ref()
                    ),
                );
            } else if !tags.contains(&value) {
                tags.push(value);
            }
        }
        config
            .origin
            .experts
            .insert(name.clone(), line_column(text, expert.name.span().start));
        config.experts.push(ExpertConfig {
            name,
            kind,
            base_url,
            model: expert.model.clone(),
            api_key,
            tags,
        });
    }

    if let Some(search) = &raw.search {
        let url = search.searxng_url.get_ref();
        if url.starts_with("http://") || url.starts_with("https://") {
            config.search = Some(SearchConfig {
                searxng_url: url.clone(),
                max_results: search.max_results.unwrap_or(5).clamp(1, 20),
            });
        } else {
            problem(
                search.searxng_url.span(),
                format!("searxng_url = {url:?} must start with http:// or https://"),
            );
        }
    }

    for server in &raw.mcp_servers {
        let name = server.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problem(
                server.name.span(),
                format!("MCP server name {name:?}: use letters, digits, - or _"),
            );
            continue;
        }
        if config.mcp_servers.iter().any(|s| &s.name == name) {
            problem(
                server.name.span(),
                format!("MCP server {name:?} is defined twice"),
            );
            continue;
        }
        let transport = match (&server.command, &server.url) {
            (Some(command), None) if !command.get_ref().trim().is_empty() => {
                moe_sovereign_mcp::Transport::Stdio {
                    command: command.get_ref().clone(),
                    args: server.args.clone(),
                    env: server.env.clone(),
                }
            }
            (None, Some(url))
                if url.get_ref().starts_with("http://")
                    || url.get_ref().starts_with("https://") =>
            {
                if !server.args.is_empty() || !server.env.is_empty() {
                    problem(
                        url.span(),
                        format!("MCP server {name:?}: args and env are for command = servers"),
                    );
                    continue;
                }
                moe_sovereign_mcp::Transport::Http {
                    url: url.get_ref().clone(),
                }
            }
            (None, Some(url)) => {
                problem(
                    url.span(),
                    format!(
                        "url = {:?} must start with http:// or https://",
                        url.get_ref()
                    ),
                );
                continue;
            }
            _ => {
                problem(
                    server.name.span(),
                    format!(
                        "MCP server {name:?} needs either command = \"…\" (stdio) or url = \"…\" (streamable HTTP)"
                    ),
                );
                continue;
            }
        };
        config.mcp_servers.push(McpServerConfig {
            name: name.clone(),
            transport,
        });
    }
    if let Some(graph) = &raw.graph {
        config.graph = graph.enabled;
    }

    for (name, profile) in &raw.profiles {
        let Some(parsed) = Profile::parse(name.get_ref()) else {
            problem(
                name.span(),
                format!(
                    "unknown profile {:?}: expected moe_native, moe_reasoning or moe_orchestrated",
                    name.get_ref()
                ),
            );
            continue;
        };
        if let Some(tool) = &profile.tool_expert {
            if parsed != Profile::Orchestrated {
                problem(
                    tool.span(),
                    format!("profile {parsed}: tool_expert is for moe_orchestrated only"),
                );
            } else if raw
                .experts
                .iter()
                .any(|e| e.name.get_ref() == tool.get_ref())
            {
                config.tool_expert = Some(tool.get_ref().clone());
            } else {
                problem(
                    tool.span(),
                    format!(
                        "profile {parsed} names unknown tool_expert {:?}",
                        tool.get_ref()
                    ),
                );
            }
        }
        let names: Vec<&Spanned<String>> = match (&profile.expert, &profile.experts) {
            (Some(_), Some(list)) => {
                problem(
                    list.span(),
                    format!(
                        "profile {parsed}: set expert = \"…\" or experts = [\"…\", …], not both"
                    ),
                );
                continue;
            }
            (Some(one), None) => vec![one],
            (None, Some(list)) if list.get_ref().is_empty() => {
                problem(
                    list.span(),
                    format!("profile {parsed}: experts = [] names no expert"),
                );
                continue;
            }
            (None, Some(list)) => list.get_ref().iter().collect(),
            (None, None) => continue,
        };
        let mut bound = Vec::new();
        for name in names {
            let known = raw
                .experts
                .iter()
                .any(|e| e.name.get_ref() == name.get_ref());
            if !known {
                problem(
                    name.span(),
                    format!("profile {parsed} names unknown expert {:?}", name.get_ref()),
                );
            } else if bound.contains(name.get_ref()) {
                problem(
                    name.span(),
                    format!("profile {parsed} names expert {:?} twice", name.get_ref()),
                );
            } else {
                bound.push(name.get_ref().clone());
            }
        }
        config.profiles.push((parsed, bound));
    }

    if problems.is_empty() {
        Ok(config)
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(invalid(problems))
    }
}

fn parse_secret_ref(text: &str) -> Result<SecretRef, String> {
    if let Some(name) = text.strip_prefix("env:").filter(|n| !n.is_empty()) {
        Ok(SecretRef::Env(name.to_owned()))
    } else if let Some(name) = text.strip_prefix("keychain:").filter(|n| !n.is_empty()) {
        Ok(SecretRef::Keychain(name.to_owned()))
    } else {
        Err("api_key must be a reference (\"env:VARIABLE\" or \"keychain:NAME\"), never the key itself".into())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("config.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn the_documented_shape_parses() {
        let config = parse(
            Path::new("c"),
            r#"
listen = "127.0.0.1:9000"
[[experts]]
name = "upstream"
kind = "anthropic"
base_url = "http://127.0.0.1:9000"
model = "m"
api_key = "env:UPSTREAM_KEY"
[profiles.moe_native]
expert = "upstream"
"#,
        )
        .unwrap();
        assert_eq!(
            config.experts[0].api_key,
            Some(SecretRef::Env("UPSTREAM_KEY".into()))
        );
        assert_eq!(
            config.profiles,
            vec![(Profile::Native, vec!["upstream".to_owned()])]
        );
    }

    #[test]
    fn mcp_servers_are_stdio_or_http_and_checked() {
        let config = parse(
            Path::new("c"),
            r#"
[[mcp_servers]]
name = "everything"
command = "node"
args = ["index.js"]
env = { TOKEN = "t" }
[[mcp_servers]]
name = "remote"
url = "http://127.0.0.1:3001/mcp"
[graph]
enabled = false
"#,
        )
        .unwrap();
        assert_eq!(config.mcp_servers.len(), 2);
        assert_eq!(
            config.mcp_servers[1].transport,
            moe_sovereign_mcp::Transport::Http {
                url: "http://127.0.0.1:3001/mcp".into()
            }
        );
        assert!(!config.graph);
        assert!(Config::default().graph);
        let problems = errors(
            "[[mcp_servers]]\nname = \"a b\"\ncommand = \"x\"\n[[mcp_servers]]\nname = \"c\"\n[[mcp_servers]]\nname = \"d\"\nurl = \"ftp://x\"\n[[mcp_servers]]\nname = \"e\"\ncommand = \"x\"\nurl = \"http://x\"\n",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("config.toml:2:8: MCP server name \"a b\""));
        assert!(problems[1].starts_with("config.toml:5:8: MCP server \"c\" needs either"));
        assert!(problems[2].starts_with("config.toml:8:7: url = \"ftp://x\""));
        assert!(problems[3].starts_with("config.toml:10:8: MCP server \"e\" needs either"));
    }

    #[test]
    fn unknown_keys_name_file_line_and_column() {
        assert_eq!(
            errors(
                "listen = \"127.0.0.1:1\"\n\n[[experts]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://x\"\nmodle = \"m\"\n"
            ),
            vec![
                "config.toml:7:1: unknown field `modle`, expected one of `name`, `kind`, `base_url`, `model`, `api_key`, `tags`"
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = errors(
            "listen = \"0.0.0.0:80\"\n[[experts]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"x\"\n[[experts]]\nname = \"b\"\nkind = \"anthropic\"\nbase_url = \"http://b\"\napi_key = \"sk-live-123\"\n[profiles.moe_native]\nexpert = \"nope\"\n",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("config.toml:1:10: listen = 0.0.0.0:80 is not a loopback"));
        assert!(problems[1].starts_with("config.toml:5:12: base_url"));
        assert!(problems[2].starts_with("config.toml:10:11: api_key must be a reference"));
        assert!(
            problems[3].starts_with("config.toml:12:10: profile moe_native names unknown expert")
        );
    }

    #[test]
    fn a_missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.origin.path.as_deref(), Some(path.as_path()));
        assert_eq!(
            Config {
                origin: Origin::default(),
                ..loaded
            },
            Config::default()
        );
    }

    const TWO: &str = "[[experts]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://a\"\ntags = [\"Code\", \"reasoning\", \"code\"]\n[[experts]]\nname = \"b\"\nkind = \"openai\"\nbase_url = \"http://b\"\n";

    #[test]
    fn profiles_take_one_expert_or_an_ordered_list_and_a_tool_expert() {
        let config = parse(
            Path::new("c"),
            &format!("{TWO}[profiles.moe_native]\nexperts = [\"b\", \"a\"]\n[profiles.moe_orchestrated]\nexpert = \"a\"\ntool_expert = \"b\"\n"),
        )
        .unwrap();
        assert_eq!(
            config.profiles,
            vec![
                (Profile::Native, vec!["b".to_owned(), "a".to_owned()]),
                (Profile::Orchestrated, vec!["a".to_owned()])
            ]
        );
        assert_eq!(config.tool_expert.as_deref(), Some("b"));
        let search = parse(
            Path::new("c"),
            "[search]\nsearxng_url = \"http://127.0.0.1:8888\"\n",
        )
        .unwrap()
        .search
        .unwrap();
        assert_eq!(
            (search.searxng_url.as_str(), search.max_results),
            ("http://127.0.0.1:8888", 5)
        );
        assert!(
            errors("[search]\nsearxng_url = \"searx.local\"\n")[0]
                .starts_with("config.toml:2:15: searxng_url")
        );
        assert_eq!(config.experts[0].tags, ["code", "reasoning"]);
        assert_eq!(config.origin.experts["b"], (7, 8));
    }

    #[test]
    fn profile_mistakes_are_refused_at_their_place() {
        let problems = errors(&format!(
            "{TWO}[profiles.moe_native]\nexpert = \"a\"\nexperts = [\"b\"]\n[profiles.moe_reasoning]\nexperts = []\ntool_expert = \"a\"\n[profiles.moe_orchestrated]\nexperts = [\"a\", \"a\", \"zz\"]\ntool_expert = \"nope\"\n"
        ));
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(
            problems[0].starts_with("config.toml:12:11: profile moe_native: set expert"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with(
                "config.toml:14:11: profile moe_reasoning: experts = [] names no expert"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[2].contains("tool_expert is for moe_orchestrated only"),
            "{problems:#?}"
        );
        assert!(
            problems[3].starts_with(
                "config.toml:17:17: profile moe_orchestrated names expert \"a\" twice"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[4].contains("unknown expert \"zz\""),
            "{problems:#?}"
        );
        assert!(
            problems[5].starts_with(
                "config.toml:18:15: profile moe_orchestrated names unknown tool_expert \"nope\""
            ),
            "{problems:#?}"
        );
        let tag = errors(
            "[[experts]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://a\"\ntags = [\"two words\"]\n",
        );
        assert!(
            tag[0].starts_with("config.toml:5:9: tag \"two words\""),
            "{tag:#?}"
        );
    }
}
