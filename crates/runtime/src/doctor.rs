//! `doctor`: every check a user would otherwise do by hand, one line each. The CLI prints them
//! (non-zero exit when one failed); the dashboard shows them.

use std::time::Duration;

use moe_sovereign_keys::{KeyManager, SecretStore};
use moe_sovereign_local::Registry;
use moe_sovereign_wiring::{FileStatus, Target, Wiring};
use serde::Serialize;

use crate::{Home, config, wiring};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Worth knowing.
    Info,
    /// Works, but not as it should.
    Warn,
    /// Needs the user.
    Fail,
}

/// One check: what, how it came out, and the detail (with what to do when it failed).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// How it came out.
    pub status: Level,
    /// What was found; for a failure, what to do.
    pub detail: String,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: impl Into<String>, status: Level, detail: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// Runs every check. Blocking (keychain, files, HTTP): call it off any async runtime thread.
pub fn run() -> Vec<Check> {
    let mut checks = Checks::default();
    run_into(&mut checks);
    checks.0
}

fn run_into(checks: &mut Checks) {
    let home = match Home::locate() {
        Ok(home) => home,
        Err(e) => return checks.add("home", Level::Fail, e.to_string()),
    };
    checks.add("home", Level::Ok, home.dir().display().to_string());
    let config = match config::load(&home.config_path()) {
        Ok(config) => {
            checks.add(
                "config",
                Level::Ok,
                home.config_path().display().to_string(),
            );
            config
        }
        Err(e) => {
            checks.add("config", Level::Fail, e.to_string());
            return;
        }
    };

    // What reaches out from this machine.
    match &config.search {
        Some(search) => checks.add(
            "web search",
            Level::Info,
            format!(
                "on: moe_orchestrated's research tasks send queries to {} (egress); remove [search] from config.toml to keep everything here",
                search.searxng_url
            ),
        ),
        None => checks.add("web search", Level::Ok, "off (nothing is searched on the web)"),
    }
    for server in &config.mcp_servers {
        let (level, text) = match &server.transport {
            moe_sovereign_mcp::Transport::Stdio { command, args, .. } => (
                Level::Info,
                format!(
                    "`{command} {}` runs on this machine when moe_orchestrated needs its tools; what it reaches is up to it",
                    args.join(" ")
                ),
            ),
            moe_sovereign_mcp::Transport::Http { url } if is_loopback_url(url) => {
                (Level::Ok, format!("{url}, on this machine"))
            }
            moe_sovereign_mcp::Transport::Http { url } => (
                Level::Info,
                format!("{url}: moe_orchestrated's tool calls leave this machine (egress)"),
            ),
        };
        checks.add(format!("MCP {}", server.name), level, text);
    }
    if home.graph_path().exists() || config.graph {
        let facts = home
            .graph_path()
            .exists()
            .then(|| crate::knowledge::open(&home).and_then(|g| g.count(None)));
        let (level, text) = match facts {
            Some(Err(error)) => (Level::Warn, format!("cannot be read: {error}")),
            Some(Ok(count)) => (
                Level::Ok,
                format!(
                    "{count} facts in {}; learning {} (`moe-sovereign graph list`)",
                    home.graph_path().display(),
                    if config.graph { "on" } else { "off" }
                ),
            ),
            None => (
                Level::Ok,
                "empty; moe_orchestrated's answers will teach it, per key".to_owned(),
            ),
        };
        checks.add("knowledge graph", level, text);
    }

    // Keys and the keychain.
    let store = home.secret_store(config.secret_store);
    if let SecretStore::File(path) = &store {
        checks.add(
            "secret store",
            Level::Warn,
            format!(
                "plaintext file store in use ({}); the OS keychain is safer",
                path.display()
            ),
        );
    }
    let keys = home.keys(store);
    let default_key = match keys.load() {
        Ok(file) if file.keys.is_empty() => {
            checks.add(
                "keys",
                Level::Fail,
                "no API key: `moe-sovereign keys create --profile moe_native`",
            );
            None
        }
        Ok(file) => {
            checks.add("keys", Level::Ok, format!("{} key(s)", file.keys.len()));
            file.default_key
        }
        Err(e) => {
            checks.add("keys", Level::Fail, e.to_string());
            None
        }
    };
    let key = default_key
        .as_deref()
        .and_then(|id| match keys.reveal(Some(id)) {
            Ok(key) => {
                checks.add(
                    "keychain",
                    Level::Ok,
                    format!("{} readable", keys.secrets().describe()),
                );
                Some(key)
            }
            Err(e) => {
                checks.add("keychain", Level::Fail, e.to_string());
                None
            }
        });

    // Models.
    match Registry::new(home.dir()).list() {
        Ok(models) if models.is_empty() && config.experts.is_empty() => checks.add(
            "models",
            Level::Fail,
            "no model and no expert: `moe-sovereign models pull` (online) or `models add FILE.gguf`",
        ),
        Ok(models) => {
            for model in &models {
                if model.engine_file().is_file() {
                    checks.add(
                        format!("model {}", model.name),
                        Level::Ok,
                        model.path.display().to_string(),
                    );
                } else {
                    checks.add(
                        format!("model {}", model.name),
                        Level::Fail,
                        format!(
                            "{} is gone; `models remove {}` and add it again",
                            model.engine_file().display(),
                            model.name
                        ),
                    );
                }
            }
            if models.is_empty() {
                checks.add(
                    "models",
                    Level::Info,
                    format!("{} remote expert(s) configured", config.experts.len()),
                );
            }
        }
        Err(e) => checks.add("models", Level::Fail, e.to_string()),
    }

    // Claude's files, and the gateway where they point (else where config says it listens).
    let wiring = match wiring::wiring(&home) {
        Ok(wiring) => wiring,
        Err(e) => return checks.add("claude files", Level::Fail, e.to_string()),
    };
    let url = Target::ALL
        .iter()
        .find_map(|t| wiring.recorded(*t).ok().flatten())
        .map_or_else(|| wiring::url_for(config.listen), |(url, _)| url);
    // The running gateway may listen elsewhere (`serve --listen 127.0.0.1:0`): check that one.
    let live = home.live_url();
    if let Some(live) = &live
        && *live != url
    {
        checks.add(
            "address",
            Level::Warn,
            format!("the running gateway listens at {live}, Claude is wired to {url}"),
        );
    }
    gateway_checks(checks, live.as_deref().unwrap_or(&url), key.as_deref());
    for target in Target::ALL {
        claude_checks(
            checks,
            &home,
            &wiring,
            &keys,
            target,
            &url,
            default_key.as_deref(),
        );
    }
}

fn gateway_checks(checks: &mut Checks, url: &str, key: Option<&str>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return checks.add("gateway", Level::Fail, e.to_string()),
    };
    runtime.block_on(async {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .no_proxy()
            .build()
        {
            Ok(client) => client,
            Err(e) => return checks.add("gateway", Level::Fail, e.to_string()),
        };
        match client.get(format!("{url}/health")).send().await {
            Ok(response) if response.status().is_success() => {
                checks.add("gateway", Level::Ok, format!("{url} answers"))
            }
            Ok(response) => {
                return checks.add(
                    "gateway",
                    Level::Fail,
                    format!("{url}/health: HTTP {}", response.status()),
                );
            }
            Err(_) => {
                return checks.add(
                    "gateway",
                    Level::Fail,
                    format!("nothing answers at {url}: start it with `moe-sovereign serve`"),
                );
            }
        }
        let Some(key) = key else { return };
        match client
            .get(format!("{url}/v1/models"))
            .bearer_auth(key)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                checks.add("GET /v1/models", Level::Ok, "200 with the default key")
            }
            Ok(r) if r.status().as_u16() == 401 => checks.add(
                "GET /v1/models",
                Level::Fail,
                "401: the gateway does not accept the default key (another home? revoked?)",
            ),
            Ok(r) => checks.add(
                "GET /v1/models",
                Level::Fail,
                format!("HTTP {}", r.status()),
            ),
            Err(e) => checks.add("GET /v1/models", Level::Fail, e.to_string()),
        }
    });
}

fn claude_checks(
    checks: &mut Checks,
    home: &Home,
    wiring: &Wiring,
    keys: &KeyManager,
    target: Target,
    default_url: &str,
    default_key_id: Option<&str>,
) {
    let status = match crate::admin::target_status(
        home,
        wiring,
        keys,
        target,
        default_url,
        default_key_id,
    ) {
        Ok(status) => status,
        Err(e) => return checks.add(target.name(), Level::Fail, e),
    };
    let (recorded, statuses) = (status.recorded, status.files);
    let mut wired_files = 0;
    for (path, status) in &statuses {
        let name = format!("{target} file");
        let shown = path.display();
        match status {
            FileStatus::Missing => checks.add(name, Level::Info, format!("{shown}: not found")),
            FileStatus::Broken(line, column, message) => checks.add(
                name,
                Level::Fail,
                format!("{shown}: does not parse (line {line}, column {column}: {message}); fix it by hand"),
            ),
            FileStatus::Parsed { wired: true } => {
                wired_files += 1;
                checks.add(name, Level::Ok, format!("{shown}: wired"))
            }
            FileStatus::Parsed { wired: false } => checks.add(name, Level::Info, format!("{shown}: parses, not wired")),
        }
    }
    match (&recorded, wired_files == statuses.len()) {
        (Some(_), true) => checks.add(target.name(), Level::Ok, "wired"),
        (Some(_), false) => checks.add(
            target.name(),
            Level::Warn,
            format!("wired, but some files lost our keys: `moe-sovereign wire {target}` (or keep `serve` running)"),
        ),
        (None, _) => checks.add(target.name(), Level::Info, format!("not wired: `moe-sovereign wire {target}`")),
    }
    if recorded.is_some() {
        let helper = Wiring::helper_path(home.dir());
        if helper.is_file() {
            checks.add("credential helper", Level::Ok, helper.display().to_string());
        } else {
            checks.add(
                "credential helper",
                Level::Fail,
                format!(
                    "{} is missing: run `moe-sovereign wire {target}` again",
                    helper.display()
                ),
            );
        }
    }
}

/// True for `http(s)://127.x…`, `[::1]` and `localhost` URLs.
fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
