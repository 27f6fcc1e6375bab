//! Composition for wiring Claude: the gateway URL from config, keys from the keychain, and the
//! watcher that keeps the wiring in place while `serve` runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use moe_sovereign_keys::KeyManager;
use moe_sovereign_wiring::watch::{self, Event, Watcher};
use moe_sovereign_wiring::{Params, Report, Target, Wiring, WiringError};
use tokio::sync::broadcast;

use crate::Home;
use crate::config::Config;

/// The wiring over this home and this machine's Claude folders.
pub fn wiring(home: &Home) -> Result<Wiring, WiringError> {
    Wiring::from_process(home.dir().to_owned())
}

/// The URL Claude should use for a gateway listening on `listen`: `http://HOST:PORT`, with an
/// unspecified address (`0.0.0.0`) replaced by loopback.
pub fn url_for(listen: std::net::SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// Normalizes a user-given gateway URL: `http(s)://…`, no trailing `/` or `/v1` (Claude adds
/// `/v1/messages` itself).
pub fn normalize_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(trimmed.to_owned())
}

/// The parameters for a wiring to `url` with key `key_id`.
pub fn params(home: &Home, keys: &KeyManager, url: &str, key_id: &str) -> Result<Params, String> {
    let key = keys.reveal(Some(key_id)).map_err(|e| e.to_string())?;
    Ok(Params {
        url: url.to_owned(),
        key_id: key_id.to_owned(),
        key,
        helper: Wiring::helper_path(home.dir()),
    })
}

/// What [`wire`] did.
#[derive(Debug)]
pub struct Wired {
    /// The URL Claude now uses.
    pub url: String,
    /// The key it uses.
    pub key_id: String,
    /// Set when no key existed and one was created for Claude.
    pub created_key: bool,
    /// The key's value (for masking it in a dry run's diff; never printed).
    pub key: String,
    /// Each file and what changed in it.
    pub report: Report,
}

/// Points `target` at the gateway: `url` (default: the configured, stable address — never a
/// temporary port), key `key_id` (default: the default key; a new `moe_native` key named
/// "claude" when none exists, except in a dry run). Shared by `wire`, the dashboard and the tray.
pub fn wire(
    home: &Home,
    config: &Config,
    target: Target,
    url: Option<&str>,
    key_id: Option<&str>,
    dry_run: bool,
) -> Result<Wired, String> {
    let keys = home.keys(home.secret_store(config.secret_store));
    let url = match url {
        Some(url) => normalize_url(url)?,
        None => url_for(config.listen),
    };
    let (key_id, created_key) = match key_id {
        Some(id) => (id.to_owned(), false),
        None => match keys.load().map_err(|e| e.to_string())?.default_key {
            Some(id) => (id, false),
            None if dry_run => {
                return Err("no API key exists yet; `wire` without --dry-run creates one".into());
            }
            None => {
                let issued = keys
                    .create("moe_native", Some("claude"))
                    .map_err(|e| e.to_string())?;
                (issued.record.id, true)
            }
        },
    };
    let params = params(home, &keys, &url, &key_id)?;
    let report = wiring(home)
        .and_then(|w| w.wire(target, &params, dry_run))
        .map_err(|e| format!("cannot wire {target}: {e}"))?;
    Ok(Wired {
        url,
        key_id,
        created_key,
        key: params.key,
        report,
    })
}

/// Revokes key `id`, replaces any copy of a key left in the backups of Claude's wired files
/// (backups made before keys were kept out of them), and forgets the key's knowledge-graph
/// facts.
pub fn revoke_key(
    home: &Home,
    keys: &KeyManager,
    id: &str,
) -> Result<moe_sovereign_keys::KeyRecord, moe_sovereign_keys::KeyError> {
    let record = keys.revoke(id)?;
    if let Ok(files) = wiring(home).and_then(|w| w.recorded_files()) {
        for (_, file) in files {
            moe_sovereign_wiring::scrub_backups(&file);
        }
    }
    // What the key's requests taught the knowledge graph goes with it (only where a store
    // exists: revoking never creates one).
    if home.graph_path().exists() {
        match crate::knowledge::open(home).and_then(|g| g.forget_all(Some(&record.id))) {
            Ok(forgotten) if forgotten > 0 => {
                tracing::info!(key = %record.id, forgotten, "knowledge graph: the key's facts forgotten");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "knowledge graph: the key's facts not forgotten"),
        }
    }
    Ok(record)
}

/// Undoes `target`'s wiring (see [`Wiring::unwire`]).
pub fn unwire(home: &Home, target: Target, dry_run: bool) -> Result<Report, String> {
    wiring(home)
        .and_then(|w| w.unwire(target, dry_run))
        .map_err(|e| format!("cannot unwire {target}: {e}"))
}

/// Starts the watcher; its events are logged and sent to `events`. The keychain is asked at
/// most once per key (and only for Claude Desktop, whose seed block holds the key).
pub fn watch(
    home: &Home,
    keys: KeyManager,
    events: broadcast::Sender<Event>,
) -> Result<Watcher, WiringError> {
    let wiring = wiring(home)?;
    let home = home.clone();
    let known: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    watch::spawn(
        wiring,
        Arc::new(move |target, url, key_id| {
            let key = match target {
                Target::ClaudeCode => String::new(),
                Target::ClaudeDesktop => {
                    let cached = known.lock().ok().and_then(|k| k.get(key_id).cloned());
                    match cached {
                        Some(key) => key,
                        None => {
                            let key = keys.reveal(Some(key_id)).map_err(|e| e.to_string())?;
                            if let Ok(mut k) = known.lock() {
                                k.insert(key_id.to_owned(), key.clone());
                            }
                            key
                        }
                    }
                }
            };
            Ok(Params {
                url: url.to_owned(),
                key_id: key_id.to_owned(),
                key,
                helper: Wiring::helper_path(home.dir()),
            })
        }),
        events,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            normalize_url("http://127.0.0.1:8742/v1/").unwrap(),
            "http://127.0.0.1:8742"
        );
        assert_eq!(
            normalize_url(" https://gw.local ").unwrap(),
            "https://gw.local"
        );
        assert!(normalize_url("127.0.0.1:8742").is_err());
        assert!(normalize_url("http://").is_err());
        assert_eq!(url_for("0.0.0.0:9".parse().unwrap()), "http://127.0.0.1:9");
    }
}
