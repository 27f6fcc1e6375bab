//! `wiring.json` in our home: what each wiring wrote and what was there before, so `unwire`
//! restores exactly that and the watcher knows what to keep in place. No key values: our own
//! values are remembered as hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{WiringError, file};

/// Everything recorded, by target name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// `claude-desktop`, `claude-code`.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetState>,
}

/// One target's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetState {
    /// False after `unwire`: the watcher leaves the files alone.
    pub wired: bool,
    /// The gateway URL written.
    pub url: String,
    /// The key whose credential the wiring uses.
    pub key_id: String,
    /// Per file (absolute path).
    #[serde(default)]
    pub files: BTreeMap<PathBuf, FileState>,
}

/// What we changed in one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileState {
    /// The file did not exist before we wrote it.
    pub created: bool,
    /// One entry per path we set, in the order first set.
    #[serde(default)]
    pub priors: Vec<Prior>,
}

/// A path we set and what it held before.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prior {
    /// Object keys from the root.
    pub path: Vec<String>,
    /// The raw JSON text that was there, `None` when absent.
    pub raw: Option<String>,
    /// sha256 of our value (canonical form); `None` for objects we only created on the way,
    /// and for an object that was empty before we added to it (`raw` is then its text, the
    /// whitespace inside it included, and `path` may be empty: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours: Option<String>,
    /// What undoing sets when `raw` is `None` (instead of removing the member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Value>,
    /// For an array entry we added: its `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
}

impl State {
    /// The record in `home`, empty when there is none.
    pub fn load(home: &Path) -> Result<Self, WiringError> {
        let path = Self::path(home);
        match file::read(&path)? {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| WiringError::Syntax {
                path,
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }),
        }
    }

    /// Writes the record (0600).
    pub fn save(&self, home: &Path) -> Result<(), WiringError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        file::write_atomic(&Self::path(home), format!("{text}\n").as_bytes(), 0o600)
    }

    /// `wiring.json` in `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join("wiring.json")
    }
}

/// sha256 (hex) of `value` with object keys sorted, so a reordered copy still matches.
pub fn fingerprint(value: &Value) -> String {
    let mut hasher = Sha256::new();
    canonical(value, &mut hasher);
    hex::encode(hasher.finalize())
}

fn canonical(value: &Value, out: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.update(b"{");
            for key in keys {
                out.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
                out.update(b":");
                canonical(&map[key], out);
                out.update(b",");
            }
            out.update(b"}");
        }
        Value::Array(items) => {
            out.update(b"[");
            for item in items {
                canonical(item, out);
                out.update(b",");
            }
            out.update(b"]");
        }
        other => out.update(other.to_string().as_bytes()),
    }
}
