//! The gateway's key check: hashes from `keys.json`, reloaded when the file changes, so
//! `keys create`, `keys revoke` and `profiles use` take effect on a running server.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::SystemTime;

use moe_sovereign_experts::Profile;
use moe_sovereign_gateway::{Authenticator, Caller};
use moe_sovereign_keys::{KeyFile, KeyVerifier};

/// Keys from a file, re-read when its modification time or size changes.
#[derive(Debug)]
pub struct FileKeys {
    path: PathBuf,
    cache: RwLock<(Option<(SystemTime, u64)>, KeyVerifier)>,
}

impl FileKeys {
    /// Keys from `path` (`keys.json`).
    pub fn new(path: PathBuf) -> Self {
        let keys = Self {
            path,
            cache: RwLock::new((None, KeyVerifier::default())),
        };
        keys.refresh();
        keys
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    fn refresh(&self) {
        let stamp = self.stamp();
        if let Ok(cache) = self.cache.read()
            && cache.0 == stamp
            && stamp.is_some()
        {
            return;
        }
        let verifier = match KeyFile::load(&self.path) {
            Ok(file) => KeyVerifier::new(file),
            Err(error) => {
                // Fail closed: an unreadable key file accepts no key.
                tracing::error!("cannot read keys: {error}");
                KeyVerifier::default()
            }
        };
        if let Ok(mut cache) = self.cache.write() {
            *cache = (stamp, verifier);
        }
    }

    /// How many keys are loaded.
    pub fn count(&self) -> usize {
        self.refresh();
        self.cache.read().map_or(0, |c| c.1.len())
    }
}

impl Authenticator for FileKeys {
    fn authenticate(&self, key: &str) -> Option<Caller> {
        self.refresh();
        let cache = self.cache.read().ok()?;
        let record = cache.1.verify(key)?;
        Some(Caller {
            key_id: record.id.clone(),
            key_name: record.name.clone(),
            profile: Profile::parse(&record.profile).unwrap_or(Profile::Native),
        })
    }
}
