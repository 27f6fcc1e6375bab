//! Dashboard sessions: one-time login links (60 s, single use) exchanged for a session cookie.
//! Only hashes of tokens are kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a login link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(60);
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);

/// Open login links and sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    links: HashMap<[u8; 32], Instant>,
    sessions: HashMap<[u8; 32], Instant>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// A new login token, valid once within [`LINK_LIFETIME`].
    pub fn issue_link(&self) -> String {
        let token = random_token();
        if let Ok(mut inner) = self.inner.lock() {
            let now = Instant::now();
            inner.links.retain(|_, expires| *expires > now);
            inner.links.insert(digest(&token), now + LINK_LIFETIME);
        }
        token
    }

    /// Trades a login token for a session id; a used, expired or unknown token gets nothing.
    pub fn redeem(&self, token: &str) -> Option<String> {
        let mut inner = self.inner.lock().ok()?;
        let expires = inner.links.remove(&digest(token))?;
        let now = Instant::now();
        if expires <= now {
            return None;
        }
        let session = random_token();
        inner
            .sessions
            .retain(|_, seen| now.duration_since(*seen) < SESSION_IDLE);
        inner.sessions.insert(digest(&session), now);
        Some(session)
    }

    /// Whether `session` is open (and marks it used).
    pub fn check(&self, session: &str) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        let now = Instant::now();
        match inner.sessions.get_mut(&digest(session)) {
            Some(seen) if now.duration_since(*seen) < SESSION_IDLE => {
                *seen = now;
                true
            }
            _ => false,
        }
    }

    /// Ends a session.
    pub fn end(&self, session: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sessions.remove(&digest(session));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once_and_its_session_until_ended() {
        let sessions = Sessions::default();
        let token = sessions.issue_link();
        let session = sessions.redeem(&token).unwrap_or_default();
        assert!(!session.is_empty());
        assert_eq!(sessions.redeem(&token), None, "a link works once");
        assert!(sessions.check(&session));
        assert!(!sessions.check(&token), "a link is no session");
        sessions.end(&session);
        assert!(!sessions.check(&session));
        assert_eq!(sessions.redeem("nonsense"), None);
    }

    #[test]
    fn an_expired_link_is_refused() {
        let sessions = Sessions::default();
        let token = sessions.issue_link();
        if let Ok(mut inner) = sessions.inner.lock() {
            for expires in inner.links.values_mut() {
                *expires = Instant::now();
            }
        }
        assert_eq!(sessions.redeem(&token), None);
    }
}
