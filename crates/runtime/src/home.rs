//! The data folder: `config.toml`, `keys.json`, (opt-in) `secrets.json`.

use std::path::{Path, PathBuf};

use moe_sovereign_keys::{KeyManager, SecretStore};

use crate::RuntimeError;
use crate::config::SecretStoreKind;

/// The data and config folder.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `MOE_SOVEREIGN_HOME`, else the platform config folder (`~/.config/moe-sovereign`).
    pub fn locate() -> Result<Self, RuntimeError> {
        if let Some(dir) = std::env::var_os("MOE_SOVEREIGN_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self::at(PathBuf::from(dir)));
        }
        directories::ProjectDirs::from("", "", "moe-sovereign")
            .map(|dirs| Self::at(dirs.config_dir().to_owned()))
            .ok_or(RuntimeError::NoHome)
    }

    /// A home at `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The secret store: `MOE_SOVEREIGN_SECRET_STORE` (`keychain` | `file`) wins over config.
    pub fn secret_store(&self, configured: SecretStoreKind) -> SecretStore {
        let kind = match std::env::var("MOE_SOVEREIGN_SECRET_STORE").as_deref() {
            Ok("file") => SecretStoreKind::File,
            Ok("keychain") => SecretStoreKind::Keychain,
            _ => configured,
        };
        match kind {
            SecretStoreKind::Keychain => SecretStore::Keychain,
            SecretStoreKind::File => SecretStore::File(self.dir.join("secrets.json")),
        }
    }

    /// Key management over this home.
    pub fn keys(&self, store: SecretStore) -> KeyManager {
        KeyManager::new(&self.dir, store)
    }
}
