//! Composition for wiring Claude: the gateway URL from config, keys from the keychain, and the
//! watcher that keeps the wiring in place while `serve` runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use moe_sovereign_keys::KeyManager;
use moe_sovereign_wiring::watch::{self, Event, Watcher};
use moe_sovereign_wiring::{Params, Target, Wiring, WiringError};
use tokio::sync::broadcast;

use crate::Home;

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
