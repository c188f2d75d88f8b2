//! [`TokenCache`]: verified tokens by the digest of their secret, so checking the token of a
//! request is, once it has been seen, one SHA-256 and a hash-map lookup under a read lock
//! (not a read of the projection, whose lock the writer takes for every control write).
//!
//! The writer clears the cache whenever it applies a token event, after applying it and
//! before answering the write, so a revocation is in force for every request that starts
//! after it is acknowledged. A lookup that raced with the clearing may answer with what it
//! read before, but never puts it back: entries are only added under the epoch that was
//! current before the projection was read. Only valid tokens are cached, so the cache is as
//! big as the set of tokens in use; expiry is checked on every hit.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use draft_http::auth::{Digest, Grant};
use tokio::sync::watch;

/// The most tokens kept (far more than a node has; past it, lookups read the projection).
const MAX_ENTRIES: usize = 10_000;

/// A verified token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) grant: Grant,
    /// When it expires (unix nanos; `None`: never).
    pub(crate) expires_at_nanos: Option<u64>,
}

impl Verified {
    fn is_live_at(&self, now_nanos: u64) -> bool {
        self.expires_at_nanos.is_none_or(|e| now_nanos < e)
    }
}

#[derive(Default)]
struct Inner {
    /// Moves on with every clearing.
    epoch: u64,
    grants: HashMap<Digest, Verified>,
}

/// Verified tokens by digest; see the module.
pub(crate) struct TokenCache {
    inner: RwLock<Inner>,
    /// The epoch, for what holds a grant past its check (a WebSocket) to ask again.
    changes: watch::Sender<u64>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl TokenCache {
    /// The grant of the token with `digest`, valid at `now`: from the cache, else from
    /// `load` (which reads the projection), which is then remembered.
    pub(crate) fn grant(
        &self,
        digest: Digest,
        now_nanos: u64,
        load: impl FnOnce() -> Option<Verified>,
    ) -> Option<Verified> {
        let epoch = {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(hit) = inner.grants.get(&digest) {
                return hit.is_live_at(now_nanos).then(|| hit.clone());
            }
            inner.epoch
        };
        let verified = load().filter(|v| v.is_live_at(now_nanos))?;
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.epoch == epoch && inner.grants.len() < MAX_ENTRIES {
            inner.grants.insert(digest, verified.clone());
        }
        Some(verified)
    }

    /// Forgets every token: the tokens changed. Those watching [`Self::changes`] hear of it
    /// after the cache is cleared, so what they ask then is answered from the projection.
    pub(crate) fn clear(&self) {
        let epoch = {
            let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            inner.epoch += 1;
            inner.grants.clear();
            inner.epoch
        };
        self.changes.send_replace(epoch);
    }

    /// Moves on whenever the tokens change.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use draft_http::Actor;
    use draft_http::auth::Policy;

    fn verified(name: &str, expires: Option<u64>) -> Verified {
        Verified {
            grant: Grant::new(Actor::new(name), Arc::new(Policy::Reader)),
            expires_at_nanos: expires,
        }
    }

    #[test]
    fn a_hit_does_not_load_and_expiry_is_checked_on_every_hit() {
        let cache = TokenCache::default();
        let d = Digest::of("s");
        let g = cache.grant(d, 10, || Some(verified("ci", Some(100))));
        assert_eq!(
            g.map(|g| g.grant.actor().name().to_owned()).as_deref(),
            Some("ci")
        );
        let g = cache.grant(d, 50, || panic!("a hit reads nothing"));
        assert!(g.is_some());
        assert!(cache.grant(d, 100, || panic!("a hit")).is_none(), "expired");
        assert!(cache.grant(Digest::of("x"), 10, || None).is_none());
    }

    #[test]
    fn clearing_forgets_and_a_load_from_before_it_is_not_kept() {
        let cache = TokenCache::default();
        let d = Digest::of("s");
        assert!(cache.grant(d, 0, || Some(verified("ci", None))).is_some());
        cache.clear();
        assert!(cache.grant(d, 0, || None).is_none(), "revoked: read again");
        // A lookup whose read of the projection raced with a revocation: the clearing came
        // between its epoch and its insert, so what it read is answered but not kept.
        let g = cache.grant(d, 0, || {
            cache.clear();
            Some(verified("ci", None))
        });
        assert!(g.is_some());
        assert!(cache.grant(d, 0, || None).is_none(), "not kept");
    }
}
