//! [`Tokens`]: the tokens part of the projection, by name and by the digest of their secret.
//!
//! A token is here from its `io.draft.token.created` until its `io.draft.token.revoked`;
//! one that expired stays (listed as expired, refused when presented) until it is revoked or
//! its name is taken by a new token. Pure, like the rest of the projection.

use std::collections::BTreeMap;

use draft_http::auth::Policy;
use serde::{Deserialize, Serialize};

/// A token as the projection keeps it: never its secret, only the secret's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The SHA-256 of its secret, lowercase hex.
    pub secret_sha256: String,
    /// What it may do.
    pub policy: Policy,
    /// When it stops being valid (unix nanos; `None`: never).
    pub expires_at_nanos: Option<u64>,
    /// Who made it.
    pub creator: String,
    /// When it was made (unix nanos).
    pub created_nanos: u64,
    /// The revision that made it.
    pub revision: u64,
}

impl Token {
    /// Whether it is still valid at `now` (unix nanos).
    #[must_use]
    pub fn is_live_at(&self, now_nanos: u64) -> bool {
        self.expires_at_nanos.is_none_or(|e| now_nanos < e)
    }
}

/// Every token that was made and not revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    by_name: BTreeMap<String, Token>,
    /// Secret digest (hex) -> name.
    by_digest: BTreeMap<String, String>,
}

impl Tokens {
    /// Adds `token` as `name`, in place of an (expired) token of the same name.
    pub(crate) fn create(&mut self, name: &str, token: Token) {
        self.revoke(name);
        self.by_digest
            .insert(token.secret_sha256.clone(), name.to_owned());
        self.by_name.insert(name.to_owned(), token);
    }

    /// Removes the token `name`, if there is one.
    pub(crate) fn revoke(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            self.by_digest.remove(&old.secret_sha256);
        }
    }

    /// The token named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Token> {
        self.by_name.get(name)
    }

    /// The token whose secret has this digest (lowercase hex), with its name.
    #[must_use]
    pub fn by_digest(&self, secret_sha256: &str) -> Option<(&str, &Token)> {
        let name = self.by_digest.get(secret_sha256)?;
        self.by_name.get(name).map(|t| (name.as_str(), t))
    }

    /// Every token, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Token)> {
        self.by_name.iter()
    }

    /// Whether any token is valid at `now` (unix nanos).
    #[must_use]
    pub fn any_live_at(&self, now_nanos: u64) -> bool {
        self.by_name.values().any(|t| t.is_live_at(now_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(digest: &str, expires: Option<u64>) -> Token {
        Token {
            secret_sha256: digest.into(),
            policy: Policy::Reader,
            expires_at_nanos: expires,
            creator: "admin".into(),
            created_nanos: 0,
            revision: 0,
        }
    }

    #[test]
    fn by_name_and_by_digest_until_revoked_or_replaced() {
        let mut t = Tokens::default();
        t.create("ci", token("d1", Some(100)));
        assert_eq!(t.by_digest("d1").map(|(n, _)| n), Some("ci"));
        assert!(t.any_live_at(99));
        assert!(!t.any_live_at(100), "expired at its expiry");
        t.create("ci", token("d2", None));
        assert!(
            t.by_digest("d1").is_none(),
            "the old secret is gone with it"
        );
        assert_eq!(t.get("ci").map(|x| x.secret_sha256.as_str()), Some("d2"));
        t.revoke("ci");
        t.revoke("never");
        assert!(t.by_digest("d2").is_none());
        assert_eq!(t.iter().count(), 0);
    }
}
