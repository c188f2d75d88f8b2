//! Tokens on [`Blueprint`]: made and revoked as control events through the one writer, and
//! verified against the projection through the [`TokenCache`](crate::token_cache).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use draft_http::Actor;
use draft_http::auth::{Digest, Grant, Policy, Secret, StillValid, Validity, looks_like_secret};
use draft_log::Timestamp;

use crate::applier::{Op, Outcome};
use crate::blueprint::Blueprint;
use crate::error::WriteError;
use crate::names::{Revision, TokenName};
use crate::shared::Shared;
use crate::token_cache::Verified;

/// A token just made: its secret, which is never shown again, and its revision.
#[derive(Debug)]
pub struct NewSecret {
    /// The secret.
    pub secret: Secret,
    /// The revision of its `io.draft.token.created`.
    pub revision: Revision,
}

/// The time now, as unix nanoseconds (the wall clock: expiries are wall-clock times).
pub(crate) fn now_nanos() -> u64 {
    Timestamp::now().as_unix_nanos()
}

impl Blueprint {
    /// Makes a token named `name` with `policy`, valid until `expires_at_nanos` (`None`:
    /// until revoked), recorded as `io.draft.token.created` by `actor`. Only the SHA-256 of
    /// its secret is stored; the secret is returned, once.
    ///
    /// # Errors
    /// [`WriteError::Exists`] if a token valid now has the name; [`WriteError::NoRandomness`]
    /// if the system has no randomness to give; [`WriteError::Log`] if the append fails.
    pub async fn create_token(
        &self,
        name: &TokenName,
        policy: Policy,
        expires_at_nanos: Option<u64>,
        actor: &str,
    ) -> Result<NewSecret, WriteError> {
        let secret = Secret::generate().map_err(|e| WriteError::NoRandomness(e.to_string()))?;
        self.create_token_with(secret, name, policy, expires_at_nanos, actor)
            .await
    }

    /// [`Blueprint::create_token`] with a secret made by the caller (one it has already put
    /// somewhere safe, such as the node's first admin token in its file).
    ///
    /// # Errors
    /// As [`Blueprint::create_token`].
    pub async fn create_token_with(
        &self,
        secret: Secret,
        name: &TokenName,
        policy: Policy,
        expires_at_nanos: Option<u64>,
        actor: &str,
    ) -> Result<NewSecret, WriteError> {
        let op = Op::CreateToken {
            name: name.clone(),
            secret_sha256: secret.digest().to_hex(),
            policy,
            expires_at_nanos,
            creator: actor.to_owned(),
            now_nanos: now_nanos(),
        };
        match self.shared.write(op, actor).await? {
            Outcome::Appended(revision) => Ok(NewSecret { secret, revision }),
            Outcome::Unchanged => Err(WriteError::NotRecorded("no token was appended".into())),
        }
    }

    /// Revokes the token `name` (valid or expired), as `io.draft.token.revoked` by `actor`:
    /// once this returns, no request is let through with it.
    ///
    /// # Errors
    /// [`WriteError::NotFound`] if there is no such token; [`WriteError::Log`] if the append
    /// fails.
    pub async fn revoke_token(
        &self,
        name: &TokenName,
        actor: &str,
    ) -> Result<Revision, WriteError> {
        let op = Op::RevokeToken { name: name.clone() };
        match self.shared.write(op, actor).await? {
            Outcome::Appended(revision) => Ok(revision),
            Outcome::Unchanged => Err(WriteError::NotFound),
        }
    }

    /// The grant of the token whose secret is `presented`, if it is one that is valid now
    /// (made, not revoked, not expired). `None` says nothing more: not which of these failed.
    /// The grant's [`Validity`] lapses when the token is revoked or expires, so a WebSocket
    /// opened with it can be closed then.
    #[must_use]
    pub fn authenticate(&self, presented: &str) -> Option<Grant> {
        if !looks_like_secret(presented) {
            return None;
        }
        let digest = Digest::of(presented);
        let (grant, expires_at_nanos) = grant_of(&self.shared, digest)?;
        let shared = Arc::clone(&self.shared);
        let still_valid: StillValid = Arc::new(move || grant_of(&shared, digest).is_some());
        let expires_at = expires_at_nanos.map(|n| UNIX_EPOCH + Duration::from_nanos(n));
        let validity = Validity::new(self.shared.tokens.changes(), still_valid, expires_at);
        Some(grant.with_validity(validity))
    }

    /// Whether any token is valid now (a node with auth on makes its first one when not).
    #[must_use]
    pub fn has_live_token(&self) -> bool {
        let now = now_nanos();
        self.read(|p| p.tokens().any_live_at(now))
    }
}

/// The grant of the token whose secret has `digest` and its expiry, if it is valid now: from
/// the cache, else from the projection.
fn grant_of(shared: &Shared, digest: Digest) -> Option<(Grant, Option<u64>)> {
    let verified = shared.tokens.grant(digest, now_nanos(), || {
        shared.read(|p| {
            let (name, token) = p.tokens().by_digest(&digest.to_hex())?;
            // Found by its digest; compared again in constant time all the same.
            (Digest::from_hex(&token.secret_sha256)? == digest).then(|| Verified {
                grant: Grant::new(Actor::new(name), Arc::new(token.policy.clone())),
                expires_at_nanos: token.expires_at_nanos,
            })
        })
    })?;
    Some((verified.grant, verified.expires_at_nanos))
}
