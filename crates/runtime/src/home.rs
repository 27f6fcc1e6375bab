//! The data folder: `config.toml`, `keys.json`, (opt-in) `secrets.json`, and while a gateway
//! runs `live.json` (its address) and `admin.secret` (what `moe-sovereign ui` shows the gateway
//! to get a dashboard login link; 0600, so only this user can read it).

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

    /// The knowledge graph of `moe_orchestrated` (`knowledge.sqlite`, 0600).
    pub fn graph_path(&self) -> PathBuf {
        self.dir.join("knowledge.sqlite")
    }

    /// `live.json`: the running gateway's address.
    pub fn live_path(&self) -> PathBuf {
        self.dir.join("live.json")
    }

    /// Records that a gateway of process `pid` serves at `url` (written atomically, 0600).
    pub fn write_live(&self, url: &str) -> Result<(), RuntimeError> {
        let body = serde_json::json!({ "url": url, "pid": std::process::id() }).to_string();
        write_private(&self.live_path(), body.as_bytes())
    }

    /// Forgets the live address, if it is ours.
    pub fn remove_live(&self) {
        let ours = std::fs::read_to_string(self.live_path())
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|v| v["pid"].as_u64() == Some(u64::from(std::process::id())));
        if ours {
            let _ = std::fs::remove_file(self.live_path());
        }
    }

    /// The running gateway's URL, if one recorded it and its process is still there.
    pub fn live_url(&self) -> Option<String> {
        self.live().map(|(url, _)| url)
    }

    /// The running gateway's URL and process id, if its process is still there.
    pub fn live(&self) -> Option<(String, u32)> {
        let text = std::fs::read_to_string(self.live_path()).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = value["pid"].as_u64()?;
        if !process_alive(pid) {
            return None;
        }
        let url = value["url"].as_str()?.to_owned();
        Some((url, u32::try_from(pid).ok()?))
    }

    /// `admin.secret`, created (random, 0600) when missing.
    pub fn admin_secret(&self) -> Result<String, RuntimeError> {
        self.secret("admin.secret", "the dashboard secret")
            .map(hex::encode)
    }

    /// The key that signs the thinking we produce (`thinking.secret`, created like
    /// `admin.secret`): signatures made before a restart still verify after it.
    pub fn thinking_key(&self) -> Result<[u8; 32], RuntimeError> {
        self.secret("thinking.secret", "the thinking signature key")
    }

    /// 32 random bytes kept hex-encoded in `name` (0600), made when missing or unreadable.
    fn secret(&self, name: &str, what: &str) -> Result<[u8; 32], RuntimeError> {
        let path = self.dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(bytes) = hex::decode(text.trim())
            && let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(secret);
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| RuntimeError::Io {
            context: format!("cannot make {what}"),
            source: std::io::Error::other(e.to_string()),
        })?;
        write_private(&path, hex::encode(secret).as_bytes())?;
        Ok(secret)
    }

    /// Reads `admin.secret` without creating it.
    pub fn read_admin_secret(&self) -> Option<String> {
        let secret = std::fs::read_to_string(self.dir.join("admin.secret")).ok()?;
        Some(secret.trim().to_owned()).filter(|s| s.len() >= 32)
    }
}

/// Whether process `pid` exists (always true where that cannot be told).
fn process_alive(pid: u64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Writes a small private file with the one atomic-write routine (temp file, fsync, 0600, rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    moe_sovereign_files::write_atomic(path, bytes, 0o600).map_err(|source| RuntimeError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })
}
