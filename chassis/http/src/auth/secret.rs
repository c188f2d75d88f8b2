//! [`Secret`]: a token's secret, made of 256 random bits and shown once; [`Digest`]: its
//! SHA-256, which is all the node keeps.
//!
//! A secret is `draft_` and 43 characters of unpadded base64url (RFC 4648 §5) of 32 bytes
//! from the operating system's random source. The prefix lets secret scanners and people
//! tell a Draft token at a glance. Since the secret is random and long, one round of SHA-256
//! is enough to store it (no password hashing: there is nothing to guess), and looking a
//! request's token up by its digest compares digests, never secrets; [`Digest`]'s equality
//! is constant-time besides.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "draft_";
/// The random bytes in a secret.
const SECRET_BYTES: usize = 32;
/// A secret's length: the prefix and 43 base64url characters.
const SECRET_LEN: usize = SECRET_PREFIX.len() + 43;

/// A token's secret, as the client sends it. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new secret from 256 bits of the operating system's randomness.
    ///
    /// # Errors
    /// If the operating system has no randomness to give (fatal for token creation).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!(
            "{SECRET_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// The secret's text, to show once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its digest, as stored.
    #[must_use]
    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Whether `text` has the shape of a secret (prefix, length, base64url), so a request with
/// something else is refused without hashing it. Says nothing of whether it is valid.
#[must_use]
pub fn looks_like_secret(text: &str) -> bool {
    text.len() == SECRET_LEN
        && text.starts_with(SECRET_PREFIX)
        && text[SECRET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The SHA-256 of a secret. Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `secret`'s text.
    #[must_use]
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Lowercase hex, as stored in `io.draft.token.created`.
    #[must_use]
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Reads lowercase (or uppercase) hex back; `None` if it is not 64 hex digits.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hidden_from_debug() {
        let a = Secret::generate().expect("randomness");
        let b = Secret::generate().expect("randomness");
        assert_ne!(a, b);
        assert!(looks_like_secret(a.expose()), "{}", a.expose());
        assert_eq!(format!("{a:?}"), "Secret(..)");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), Digest::of(a.expose()));
        for bad in [
            "",
            "draft_",
            "draft_short",
            "bearer",
            &format!("{}!", &a.expose()[..48]),
        ] {
            assert!(!looks_like_secret(bad), "{bad}");
        }
    }

    #[test]
    fn digests_are_sha256_in_hex_and_read_back() {
        let d = Digest::of("abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("ab"), None);
        assert_eq!(Digest::from_hex(&"zz".repeat(32)), None);
    }
}
