//! `keys.json`: ids, names, profiles and hashes. Never plaintext.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::KeyError;

/// One issued key, as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `key_…`: how commands refer to it.
    pub id: String,
    /// A label chosen by the user.
    pub name: String,
    /// The profile its requests run under (`moe_native`, …).
    pub profile: String,
    /// Hex SHA-256 of the plaintext.
    pub hash: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// The whole key list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The key `credential` prints and `profiles use` changes by default.
    #[serde(default)]
    pub default_key: Option<String>,
    /// All keys.
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
}

/// `home/keys.json`.
pub fn keys_path(home: &Path) -> PathBuf {
    home.join("keys.json")
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl KeyFile {
    /// Reads `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read(path) {
            Ok(bytes) => parse_json(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(KeyError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes `path` atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| KeyError::Io {
            path: path.to_owned(),
            source: e.into(),
        })?;
        write_private(path, &bytes)
    }
}

/// Parses JSON, reporting errors with file, line and column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<T, KeyError> {
    serde_json::from_slice(bytes).map_err(|e| KeyError::Corrupt {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// The project's one atomic write, mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    moe_sovereign_files::write_atomic(path, bytes, 0o600).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}
