//! Signatures on thinking we produce: an HMAC-SHA256 of the thinking text under a per-install
//! secret. Claude Code echoes thinking blocks back in later turns; ours verify, anything else
//! (edited, foreign, forged) does not.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What our signatures start with.
const PREFIX: &str = "moe2:";

/// Signs and verifies thinking with one secret.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    /// A signer with `key` (the install's secret).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A signer with a fresh random key (tests, or an install whose secret cannot be stored:
    /// its signatures then last as long as the process).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        // Without an entropy source the key stays zero: signatures still work, but are
        // forgeable; getrandom fails only on platforms we do not run on.
        let _ = getrandom::fill(&mut key);
        Self { key }
    }

    fn mac(&self, thinking: &str) -> Hmac<Sha256> {
        #[expect(clippy::expect_used, reason = "HMAC takes a key of any length")]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(thinking.as_bytes());
        mac
    }

    /// The signature of `thinking`.
    pub fn sign(&self, thinking: &str) -> String {
        format!(
            "{PREFIX}{}",
            hex::encode(self.mac(thinking).finalize().into_bytes())
        )
    }

    /// Whether `signature` is ours for exactly `thinking` (compared in constant time).
    pub fn verify(&self, thinking: &str, signature: &str) -> bool {
        signature
            .strip_prefix(PREFIX)
            .and_then(|digits| hex::decode(digits).ok())
            .is_some_and(|tag| self.mac(thinking).verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_signature_verifies_and_nothing_else_does() {
        let signer = Signer::new([7; 32]);
        let signature = signer.sign("I think so.");
        assert!(signer.verify("I think so.", &signature));
        assert!(!signer.verify("I think not.", &signature));
        assert!(!Signer::new([8; 32]).verify("I think so.", &signature));
        assert!(!signer.verify("I think so.", "EqQBCkgIBRABGAIiQL…"));
        assert!(!signer.verify("I think so.", "moe2:zz"));
        assert!(!signer.verify("I think so.", ""));
        // RFC 4231 test case 2 ("Jefe"), through the same construction.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
