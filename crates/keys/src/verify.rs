//! Key material: generation, hashing, constant-time verification.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::record::{KeyFile, KeyRecord};

/// The prefix of every key.
pub const KEY_PREFIX: &str = "moe-sk-";

/// Hex digits after the prefix.
const KEY_HEX_DIGITS: usize = 48;

/// What stands in for one of our keys in a copy kept beside its place (a backup).
pub const REDACTED_KEY: &str = "moe-sk-removed-from-this-copy";

/// `text` with every key of ours (`moe-sk-` + 48 hex digits) replaced by [`REDACTED_KEY`].
pub fn redact_keys(text: &str) -> std::borrow::Cow<'_, str> {
    let is_key_at = |at: usize| {
        let digits = &text.as_bytes()[at + KEY_PREFIX.len()..];
        digits.len() >= KEY_HEX_DIGITS && digits[..KEY_HEX_DIGITS].iter().all(u8::is_ascii_hexdigit)
    };
    let starts: Vec<usize> = text
        .match_indices(KEY_PREFIX)
        .map(|(at, _)| at)
        .filter(|&at| is_key_at(at))
        .collect();
    if starts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in starts {
        out.push_str(&text[from..at]);
        out.push_str(REDACTED_KEY);
        from = at + KEY_PREFIX.len() + KEY_HEX_DIGITS;
    }
    out.push_str(&text[from..]);
    std::borrow::Cow::Owned(out)
}

/// A fresh key: `moe-sk-` + 48 hex digits (192 random bits).
pub(crate) fn new_plaintext() -> String {
    format!("{KEY_PREFIX}{}", hex::encode(random::<24>()))
}

/// A fresh key id: `key_` + 8 hex digits.
pub(crate) fn new_id() -> String {
    format!("key_{}", hex::encode(random::<4>()))
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // No entropy source means no safe keys at all; refusing to run is the only option.
    #[expect(
        clippy::expect_used,
        reason = "no entropy source: keys cannot be made safely"
    )]
    getrandom::fill(&mut bytes).expect("the OS entropy source failed");
    bytes
}

/// Hex SHA-256 of a key (keys carry 192 random bits, so a plain hash is enough).
pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Checks presented keys against the stored hashes.
#[derive(Debug, Clone, Default)]
pub struct KeyVerifier {
    keys: Vec<(KeyRecord, [u8; 32])>,
}

impl KeyVerifier {
    /// A verifier for the keys in `file`.
    pub fn new(file: KeyFile) -> Self {
        let keys = file
            .keys
            .into_iter()
            .filter_map(|record| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&record.hash, &mut hash).ok()?;
                Some((record, hash))
            })
            .collect();
        Self { keys }
    }

    /// The record of the key `presented`, if it is one of ours. Every stored hash is compared,
    /// each in constant time, so timing says nothing about which or how much matched.
    pub fn verify(&self, presented: &str) -> Option<&KeyRecord> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (record, hash) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(record);
            }
        }
        found
    }

    /// How many keys exist.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key exists.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn keys_are_redacted_and_nothing_else() {
        let key = new_plaintext();
        let text =
            format!("{{\"apiKey\": \"{key}\", \"x\": \"moe-sk-short\", \"y\": \"{key}-tail\"}}");
        let redacted = redact_keys(&text);
        assert_eq!(
            redacted,
            format!(
                "{{\"apiKey\": \"{REDACTED_KEY}\", \"x\": \"moe-sk-short\", \"y\": \"{REDACTED_KEY}-tail\"}}"
            )
        );
        assert!(matches!(
            redact_keys("{\"a\": 1}"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(redact_keys("moe-sk-"), "moe-sk-");
    }
}
