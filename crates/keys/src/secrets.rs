//! Where key plaintext lives: the OS keychain (macOS Keychain, Windows Credential Manager, Linux
//! Secret Service), or — opted into on machines without one — a 0600 file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::KeyError;
use crate::record::{parse_json, write_private};

/// The keychain service name.
pub const SERVICE: &str = "moe-sovereign";

/// A store for key plaintext.
#[derive(Debug, Clone)]
pub enum SecretStore {
    /// The OS keychain, service [`SERVICE`], one entry per key id.
    Keychain,
    /// A JSON file of id → plaintext, mode 0600. Opt-in only.
    File(PathBuf),
}

impl SecretStore {
    /// Stores `secret` under `id`.
    pub fn set(&self, id: &str, secret: &str) -> Result<(), KeyError> {
        match self {
            Self::Keychain => entry(id)?.set_password(secret).map_err(keychain_error),
            Self::File(path) => {
                let mut all = read_file(path)?;
                all.insert(id.to_owned(), secret.to_owned());
                write_file(path, &all)
            }
        }
    }

    /// The secret under `id`.
    pub fn get(&self, id: &str) -> Result<String, KeyError> {
        match self {
            Self::Keychain => entry(id)?.get_password().map_err(|e| match e {
                keyring::Error::NoEntry => KeyError::SecretMissing(id.to_owned()),
                other => keychain_error(other),
            }),
            Self::File(path) => read_file(path)?
                .remove(id)
                .ok_or_else(|| KeyError::SecretMissing(id.to_owned())),
        }
    }

    /// Removes the secret under `id`.
    pub fn delete(&self, id: &str) -> Result<(), KeyError> {
        match self {
            Self::Keychain => entry(id)?.delete_credential().map_err(|e| match e {
                keyring::Error::NoEntry => KeyError::SecretMissing(id.to_owned()),
                other => keychain_error(other),
            }),
            Self::File(path) => {
                let mut all = read_file(path)?;
                if all.remove(id).is_none() {
                    return Err(KeyError::SecretMissing(id.to_owned()));
                }
                write_file(path, &all)
            }
        }
    }

    /// A one-line description for `doctor` and errors.
    pub fn describe(&self) -> String {
        match self {
            Self::Keychain => "OS keychain".into(),
            Self::File(path) => format!("file store {} (opt-in, plaintext)", path.display()),
        }
    }
}

fn entry(id: &str) -> Result<keyring::Entry, KeyError> {
    keyring::Entry::new(SERVICE, id).map_err(keychain_error)
}

fn keychain_error(error: keyring::Error) -> KeyError {
    KeyError::KeychainUnavailable(error.to_string())
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => parse_json(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(KeyError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_file(path: &Path, all: &BTreeMap<String, String>) -> Result<(), KeyError> {
    let bytes = serde_json::to_vec_pretty(all).map_err(|e| KeyError::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    write_private(path, &bytes)
}
