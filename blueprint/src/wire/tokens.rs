//! The token endpoints' bodies: `POST /v1/tokens`, `GET /v1/tokens`, `DELETE
//! /v1/tokens/{name}`. No answer but the creation's ever holds a secret.

use draft_http::auth::{Policy, Role};
use serde::{Deserialize, Deserializer, Serialize};

/// The longest a token may live: ten years, in seconds.
pub const MAX_TOKEN_SECS: u64 = 10 * 365 * 86_400;

/// An optional field that, when present, must be a `T`: `null` is refused rather than read as
/// absent (the API document says each field is its type, not `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The body of `POST /v1/tokens`: a name, and a built-in role or a policy (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The token's name (the actor of what is done with it): 1 to 64 of `[A-Za-z0-9._-]`.
    pub name: String,
    /// A built-in role (`service`: scoped to the token's name).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub role: Option<Role>,
    /// A policy (see [`Policy`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub policy: Option<Policy>,
    /// How long the token is valid, in seconds (1 to [`MAX_TOKEN_SECS`]; absent: it does not
    /// expire).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in_secs: Option<u64>,
}

/// The answer of `POST /v1/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token's name.
    pub name: String,
    /// The secret: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it may do.
    pub policy: Policy,
    /// When it stops being valid (RFC 3339; `None`: never).
    pub expires_at: Option<String>,
    /// The revision of its `io.draft.token.created`.
    pub revision: u64,
}

/// One token of `GET /v1/tokens` (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub policy: Policy,
    /// Who made it.
    pub creator: String,
    /// When (RFC 3339).
    pub created: String,
    /// When it stops being valid (RFC 3339; `None`: never).
    pub expires_at: Option<String>,
    /// Whether it has expired (it is refused, and its name may be given to a new token).
    pub expired: bool,
    /// The revision that made it.
    pub revision: u64,
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    /// Every token made and not revoked, by name.
    pub tokens: Vec<TokenInfo>,
    /// The revision the answer is as of.
    pub revision: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_none_and_null_is_refused() {
        let t: NewToken = serde_json::from_str(r#"{"name":"ci","role":"reader"}"#).expect("valid");
        assert_eq!(
            (t.role, t.policy, t.expires_in_secs),
            (Some(Role::Reader), None, None)
        );
        for body in [
            r#"{"name":"ci","role":"reader","policy":null}"#,
            r#"{"name":"ci","role":null}"#,
            r#"{"name":"ci","role":"reader","expires_in_secs":null}"#,
        ] {
            assert!(serde_json::from_str::<NewToken>(body).is_err(), "{body}");
        }
    }
}
