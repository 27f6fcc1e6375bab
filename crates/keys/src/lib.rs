//! API keys for the gateway: issue `moe-sk-…` keys, keep their plaintext in the OS keychain
//! (service `moe-sovereign`), keep only SHA-256 hashes on disk, and verify presented keys in
//! constant time.
//!
//! Layout:
//! - [`record`]: the on-disk key list (`keys.json`, mode 0600) and its atomic save;
//! - [`secrets`]: where plaintext lives: the OS keychain, or the opt-in file store;
//! - [`verify`]: hashing and constant-time lookup, used on every request.

pub mod record;
pub mod secrets;
pub mod verify;

use std::path::{Path, PathBuf};

pub use record::{KeyFile, KeyRecord};
pub use secrets::SecretStore;
pub use verify::{KeyVerifier, REDACTED_KEY, hash_key, redact_keys};

/// Everything that can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key with this id.
    #[error("no key with id {0:?} (see `moe-sovereign keys list`)")]
    UnknownKey(String),
    /// No key has been created yet.
    #[error(
        "no API key exists yet: create one with `moe-sovereign keys create --profile moe_native`"
    )]
    NoKeys,
    /// The keychain holds no plaintext for this key.
    #[error("the keychain holds no secret for key {0:?}; it may have been revoked or removed")]
    SecretMissing(String),
    /// No usable keychain.
    #[error(
        "no OS keychain is available ({0}). On a machine without one, opt in to the file store: \
         set MOE_SOVEREIGN_SECRET_STORE=file (plaintext in secrets.json, mode 0600; `doctor` flags it)"
    )]
    KeychainUnavailable(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file does not parse.
    #[error("{path}:{line}:{column}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Issues, lists, revokes and reveals keys kept under one home folder.
#[derive(Debug)]
pub struct KeyManager {
    keys_path: PathBuf,
    secrets: SecretStore,
}

/// A newly issued key; the plaintext is shown once.
#[derive(Debug)]
pub struct IssuedKey {
    /// Its record (no secret).
    pub record: KeyRecord,
    /// The `moe-sk-…` plaintext.
    pub plaintext: String,
}

impl KeyManager {
    /// Keys under `home` (`home/keys.json`), plaintext in `secrets`.
    pub fn new(home: &Path, secrets: SecretStore) -> Self {
        Self {
            keys_path: record::keys_path(home),
            secrets,
        }
    }

    /// Where plaintext goes.
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// The key list file.
    pub fn keys_path(&self) -> &Path {
        &self.keys_path
    }

    /// The current key list (empty when the file does not exist).
    pub fn load(&self) -> Result<KeyFile, KeyError> {
        KeyFile::load(&self.keys_path)
    }

    /// Issues a key bound to `profile`. The first key becomes the default key.
    pub fn create(&self, profile: &str, name: Option<&str>) -> Result<IssuedKey, KeyError> {
        let mut file = self.load()?;
        let plaintext = verify::new_plaintext();
        let id = loop {
            let id = verify::new_id();
            if !file.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        // Keychain first: a key on disk without its secret would be unusable.
        self.secrets.set(&id, &plaintext)?;
        let record = KeyRecord {
            id: id.clone(),
            name: name.unwrap_or("default").to_owned(),
            profile: profile.to_owned(),
            hash: hash_key(&plaintext),
            created_at: record::now(),
        };
        file.keys.push(record.clone());
        if file.default_key.is_none() {
            file.default_key = Some(id.clone());
        }
        if let Err(error) = file.save(&self.keys_path) {
            let _ = self.secrets.delete(&id);
            return Err(error);
        }
        Ok(IssuedKey { record, plaintext })
    }

    /// Removes a key: from disk (so it stops working at once) and from the keychain.
    pub fn revoke(&self, id: &str) -> Result<KeyRecord, KeyError> {
        let mut file = self.load()?;
        let position = file
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?;
        let record = file.keys.remove(position);
        if file.default_key.as_deref() == Some(id) {
            file.default_key = file.keys.first().map(|k| k.id.clone());
        }
        file.save(&self.keys_path)?;
        match self.secrets.delete(id) {
            Ok(()) | Err(KeyError::SecretMissing(_)) => Ok(record),
            Err(error) => Err(error),
        }
    }

    /// The plaintext of key `id` (or of the default key) from the keychain.
    pub fn reveal(&self, id: Option<&str>) -> Result<String, KeyError> {
        let file = self.load()?;
        let id = match id {
            Some(id) => id.to_owned(),
            None => file.default_key.clone().ok_or(KeyError::NoKeys)?,
        };
        let record = file
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.clone()))?;
        let plaintext = self.secrets.get(&record.id)?;
        // The keychain entry must still match the record (a stale entry is as good as none).
        if hash_key(&plaintext) != record.hash {
            return Err(KeyError::SecretMissing(record.id.clone()));
        }
        Ok(plaintext)
    }

    /// Binds key `id` (or the default key) to `profile`.
    pub fn set_profile(&self, id: Option<&str>, profile: &str) -> Result<KeyRecord, KeyError> {
        let mut file = self.load()?;
        let id = match id {
            Some(id) => id.to_owned(),
            None => file.default_key.clone().ok_or(KeyError::NoKeys)?,
        };
        let record = file
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.clone()))?;
        record.profile = profile.to_owned();
        let record = record.clone();
        file.save(&self.keys_path)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(dir: &Path) -> KeyManager {
        KeyManager::new(dir, SecretStore::File(dir.join("secrets.json")))
    }

    #[test]
    fn create_reveal_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let keys = manager(dir.path());
        let issued = keys.create("moe_native", Some("laptop")).unwrap();
        assert!(issued.plaintext.starts_with("moe-sk-"));
        assert_eq!(keys.reveal(None).unwrap(), issued.plaintext);

        let on_disk = std::fs::read_to_string(keys.keys_path()).unwrap();
        assert!(!on_disk.contains(&issued.plaintext), "plaintext on disk");

        let verifier = KeyVerifier::new(keys.load().unwrap());
        assert_eq!(
            verifier.verify(&issued.plaintext).unwrap().id,
            issued.record.id
        );
        assert!(verifier.verify("moe-sk-wrong").is_none());

        keys.revoke(&issued.record.id).unwrap();
        assert!(matches!(keys.reveal(None), Err(KeyError::NoKeys)));
        assert!(
            KeyVerifier::new(keys.load().unwrap())
                .verify(&issued.plaintext)
                .is_none()
        );
    }

    #[test]
    fn set_profile_rebinds_the_default_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = manager(dir.path());
        let first = keys.create("moe_native", None).unwrap();
        keys.create("moe_native", None).unwrap();
        let record = keys.set_profile(None, "moe_reasoning").unwrap();
        assert_eq!(record.id, first.record.id);
        assert_eq!(keys.load().unwrap().keys[0].profile, "moe_reasoning");
        assert_eq!(keys.load().unwrap().keys[1].profile, "moe_native");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = manager(dir.path());
        keys.create("moe_native", None).unwrap();
        for name in ["keys.json", "secrets.json"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
