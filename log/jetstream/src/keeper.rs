//! The lease keeper: one node of several, elected with a lock in a JetStream KV bucket.
//!
//! The lock is the key [`KEEPER_KEY`] of the bucket [`KEEPER_BUCKET`] (history 1, the
//! configured replicas, `max_age` = the TTL). A node takes it by writing the key only if it
//! has no live entry (compare-and-set on the key's last sequence, expecting none or a
//! delete marker); the revision of that write is its [`Term`], strictly increasing from one
//! keeper to the next because it is the bucket stream's sequence. The keeper renews every
//! TTL/3 by rewriting the key expecting its last revision, which restarts the entry's
//! `max_age`. If it stops renewing, the server expires the entry one TTL after its last
//! write, and another node's campaign succeeds.
//!
//! A node acts as keeper only within one TTL of when its last successful claim or renewal
//! was *sent* (the server stamped the entry later than that, so the entry cannot have
//! expired sooner), and steps down at once when a renewal fails, is refused, or takes a
//! third of the TTL or more.
//!
//! # What a lock with a TTL cannot do
//!
//! It cannot exclude an old keeper absolutely: a process paused (a GC pause, a stopped VM,
//! a clock that ran slow against the servers') may wake after its lease expired and write
//! before it notices. So the keeper's writes to the log must not rely on the lock alone:
//! they are appended with compare-and-set (`append_expecting`) and carry the [`Term`], so a
//! stale keeper's write either fails or is recognisably from an older term.
//!
//! A new keeper has not seen the heartbeats its predecessor had, so it must give every
//! instance one full TTL from the start of its term before writing an expiry.
//!
//! [`Keeper::spawn`] runs the campaigns and renewals on a task and publishes the role on a
//! `watch` channel; [`KeeperLock`] is the lock itself, for callers with their own loop.

mod bucket;
mod lease;
mod marks;
mod runner;

use std::time::Duration;

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::JetStream;
use crate::error::{Error, Result};
use bucket::{bind, refused, unanswered_retried};
use lease::Lease;
pub use runner::Keeper;

/// The bucket of the keeper's lock.
pub const KEEPER_BUCKET: &str = "draft_keeper";
/// The lock's key in [`KEEPER_BUCKET`].
pub const KEEPER_KEY: &str = "keeper";
/// The shortest TTL a lock may have: the servers expire entries in whole timer ticks, and
/// a renewal must fit in a third of it.
pub const MIN_KEEPER_TTL: Duration = Duration::from_secs(1);
/// The longest node name, in bytes (it is stored in the lock's entry).
pub const MAX_NODE_NAME: usize = 256;

/// The header that marks a KV entry as deleted or purged.
const KV_OPERATION: &str = "KV-Operation";

/// One keeper's tenure: the revision of the claim that made it keeper. Every new keeper's
/// term is greater than all earlier ones (as long as the bucket is not deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Term(pub u64);

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What the lock's entry says. The claim that takes the lock has no term (its revision is
/// the term); renewals write it.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    term: Option<u64>,
}

/// The lock's entry as the stream's leader has it.
struct Current {
    revision: u64,
    /// `None` for a delete or purge marker (a keeper resigned).
    claim: Option<Claim>,
}

/// One node's handle on the keeper lock. Not `Clone`: the lease it holds is its own.
pub struct KeeperLock {
    store: kv::Store,
    /// The lock's key in the bucket ([`KEEPER_KEY`] for the keeper's own).
    key: String,
    subject: String,
    node: String,
    ttl: Duration,
    lease: Option<Lease>,
}

impl std::fmt::Debug for KeeperLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeeperLock")
            .field("node", &self.node)
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl KeeperLock {
    /// The lock for node `node` on the backend's cluster, with the backend's replicas.
    ///
    /// # Errors
    /// As [`KeeperLock::with_client`].
    pub async fn new(backend: &JetStream, node: impl Into<String>, ttl: Duration) -> Result<Self> {
        let replicas = backend.config().replicas;
        Self::with_client(backend.client().clone(), replicas, node, ttl).await
    }

    /// The lock for node `node` over `client`, creating the bucket with `replicas` replicas
    /// if no node has (nodes racing to create it all succeed).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `ttl` is below [`MIN_KEEPER_TTL`], the node name is empty
    /// or longer than [`MAX_NODE_NAME`], or the bucket exists with entries that expire
    /// sooner than `ttl` (or never); [`Error::Coordination`] if the bucket could not be
    /// created or read.
    pub async fn with_client(
        client: async_nats::Client,
        replicas: usize,
        node: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self> {
        let node = node.into();
        if ttl < MIN_KEEPER_TTL {
            return Err(Error::Misconfigured {
                what: "the keeper TTL".into(),
                reason: format!("{ttl:?} is below the minimum {MIN_KEEPER_TTL:?}"),
            });
        }
        if node.is_empty() || node.len() > MAX_NODE_NAME {
            return Err(Error::Misconfigured {
                what: "the node name".into(),
                reason: format!("{} bytes, not 1 to {MAX_NODE_NAME}", node.len()),
            });
        }
        let store = bind(async_nats::jetstream::new(client), replicas, ttl).await?;
        Ok(Self {
            key: KEEPER_KEY.to_owned(),
            subject: format!("$KV.{KEEPER_BUCKET}.{KEEPER_KEY}"),
            store,
            node,
            ttl,
            lease: None,
        })
    }

    /// A lock on another key of the same bucket, for the same node and with the same TTL
    /// (a consumer group's, say). It shares the bucket, not the lease: it starts unheld,
    /// and is taken, renewed and given up on its own. No round trip to the cluster.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `key` is not a KV key (`[-/_=.a-zA-Z0-9]+`, not starting
    /// or ending with `.`) or is the keeper's own [`KEEPER_KEY`].
    pub fn for_key(&self, key: &str) -> Result<Self> {
        if !is_kv_key(key) || key == KEEPER_KEY {
            return Err(Error::Misconfigured {
                what: "a lock key".into(),
                reason: format!("{key:?} is not a key of its own in {KEEPER_BUCKET}"),
            });
        }
        Ok(Self {
            key: key.to_owned(),
            subject: format!("$KV.{KEEPER_BUCKET}.{key}"),
            store: self.store.clone(),
            node: self.node.clone(),
            ttl: self.ttl,
            lease: None,
        })
    }

    /// This node's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lock's TTL.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// This node's term if it is keeper now (it holds the lock and is within one TTL of its
    /// last successful claim or renewal).
    #[must_use]
    pub fn term(&self) -> Option<Term> {
        self.lease
            .filter(|l| l.holds(Instant::now(), self.ttl))
            .map(|l| l.term)
    }

    /// The instant after which this node must not act as keeper without a new renewal.
    #[must_use]
    pub fn valid_until(&self) -> Option<Instant> {
        self.lease.map(|l| l.sent + self.ttl)
    }

    /// Tries to take the lock: `Some(term)` if this node is keeper now, `None` if another
    /// node holds it. If this node holds it already, this is a [`renew`](Self::renew).
    ///
    /// # Errors
    /// [`Error::Coordination`] if the cluster did not answer within a third of the TTL (the
    /// claim may have landed: this node then holds a lock it does not know of, which
    /// expires one TTL later), [`Error::Protocol`] if the entry is not a claim.
    pub async fn campaign(&mut self) -> Result<Option<Term>> {
        if self.lease.is_some() {
            return Ok(self.renew().await?.then(|| self.term()).flatten());
        }
        let value = self.claim(None)?;
        let sent = Instant::now();
        let claimed = self.within_period("claim", self.create(value)).await??;
        let Some(revision) = claimed else {
            return Ok(None);
        };
        let lease = Lease {
            term: Term(revision),
            revision,
            sent,
        };
        self.lease = Some(lease);
        info!(node = %self.node, lock = %self.key, term = revision, "took the lock");
        Ok(self.term())
    }

    /// Renews the lock: `true` if this node is still keeper. `false` means it has stepped
    /// down (the lock lapsed or another node holds it) and must stop acting as keeper at
    /// once; so does an error.
    ///
    /// # Errors
    /// [`Error::Coordination`] if the renewal failed or took a third of the TTL or more.
    pub async fn renew(&mut self) -> Result<bool> {
        let Some(lease) = self.lease.take() else {
            return Ok(false);
        };
        let sent = Instant::now();
        if !lease.holds(sent, self.ttl) {
            warn!(node = %self.node, lock = %self.key, term = %lease.term, "lease lapsed before renewal");
            return Ok(false);
        }
        let value = self.claim(Some(lease.term))?;
        let update = self.update(value, lease.revision);
        let answer = self.within_period("renew", update).await.inspect_err(|e| {
            warn!(node = %self.node, lock = %self.key, term = %lease.term, error = %e, "stepped down");
        })?;
        let revision = match answer {
            Ok(revision) => revision,
            Err(e) if refused(&e) => {
                warn!(node = %self.node, lock = %self.key, term = %lease.term, "lock lost: stepped down");
                return Ok(false);
            }
            Err(e) => {
                warn!(node = %self.node, lock = %self.key, term = %lease.term, error = %e, "stepped down");
                return Err(self.failed("renew", e));
            }
        };
        self.lease = lease.renewed(revision, sent, Instant::now(), self.ttl);
        if self.lease.is_none() {
            warn!(node = %self.node, lock = %self.key, term = %lease.term, "renewal too late: stepped down");
        }
        Ok(self.lease.is_some())
    }

    /// Who holds the lock now, as the bucket's leader says: the node's name and its term.
    ///
    /// # Errors
    /// [`Error::Coordination`] if the cluster did not answer, [`Error::Protocol`] if the
    /// entry is not a claim.
    pub async fn holder(&self) -> Result<Option<(String, Term)>> {
        let current = self.within_period("read", self.current()).await??;
        Ok(current.and_then(|c| {
            c.claim
                .map(|claim| (claim.node, Term(claim.term.unwrap_or(c.revision))))
        }))
    }

    /// Gives the lock up (on a graceful shutdown) so that another node takes over at its
    /// next campaign rather than a TTL later. Only this node's own claim is deleted; after
    /// this call the node is not keeper, whatever the outcome.
    ///
    /// # Errors
    /// [`Error::Coordination`] if the delete failed (the lock then expires one TTL after
    /// the last renewal).
    pub async fn resign(&mut self) -> Result<()> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let delete = unanswered_retried(|| {
            self.store
                .delete_expect_revision(&self.key, Some(lease.revision))
        });
        match self.within_period("resign", delete).await? {
            Ok(()) => {
                info!(node = %self.node, lock = %self.key, term = %lease.term, "gave the lock up");
                Ok(())
            }
            // Another node holds it already: nothing of ours to delete.
            Err(e) if refused(&e) => Ok(()),
            Err(e) => Err(self.failed("resign", e)),
        }
    }

    /// Steps down without touching the lock (the runner, when its lease lapsed).
    fn step_down(&mut self) {
        self.lease = None;
    }

    fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    fn claim(&self, term: Option<Term>) -> Result<Bytes> {
        let claim = Claim {
            node: self.node.clone(),
            term: term.map(|t| t.0),
        };
        serde_json::to_vec(&claim)
            .map(Bytes::from)
            .map_err(|e| Error::Protocol {
                op: "encode a keeper claim",
                reason: e.to_string(),
            })
    }

    /// Writes the claim if the key has no live entry: its revision, or `None` if another
    /// node's claim is there. Unlike `kv::Store::create`, the marker of a resigned keeper is
    /// read from the stream's leader, not a replica that may not have it yet.
    async fn create(&self, value: Bytes) -> Result<Option<u64>> {
        match self.update(value.clone(), 0).await {
            Ok(revision) => return Ok(Some(revision)),
            Err(e) if refused(&e) => {}
            Err(e) => return Err(self.failed("claim", e)),
        }
        let Some(Current {
            revision,
            claim: None,
        }) = self.current().await?
        else {
            // A live claim, or none any more (it expired just now: the next campaign wins).
            return Ok(None);
        };
        match self.update(value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if refused(&e) => Ok(None),
            Err(e) => Err(self.failed("claim", e)),
        }
    }

    /// Writes the key expecting it at `revision` (0: no entry).
    async fn update(&self, value: Bytes, revision: u64) -> Result<u64, kv::UpdateError> {
        unanswered_retried(|| self.store.update(&self.key, value.clone(), revision)).await
    }

    /// The lock's entry from the stream's leader, `None` if it has none (expired).
    async fn current(&self) -> Result<Option<Current>> {
        let message = match self
            .store
            .stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(self.failed("read", e)),
        };
        let deleted = message
            .headers
            .get(KV_OPERATION)
            .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
        let claim = if deleted {
            None
        } else {
            Some(
                serde_json::from_slice(&message.payload).map_err(|e| Error::Protocol {
                    op: "read the keeper lock",
                    reason: format!("revision {}: {e}", message.sequence),
                })?,
            )
        };
        Ok(Some(Current {
            revision: message.sequence,
            claim,
        }))
    }

    /// `future`, or [`Error::Coordination`] if it takes a third of the TTL or more.
    async fn within_period<T>(
        &self,
        op: &'static str,
        future: impl Future<Output = T>,
    ) -> Result<T> {
        let period = lease::period(self.ttl);
        tokio::time::timeout(period, future)
            .await
            .map_err(|_| Error::Coordination {
                op,
                target: KEEPER_BUCKET.into(),
                reason: format!("no answer within {period:?}"),
            })
    }

    fn failed(&self, op: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Coordination {
            op,
            target: KEEPER_BUCKET.into(),
            reason: format!("node {}: {e}", self.node),
        }
    }
}

/// Whether `key` is a JetStream KV key: `[-/_=.a-zA-Z0-9]+`, not starting or ending with
/// `.`. Pure.
fn is_kv_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_kv_keys() {
        for good in ["keeper", "group/orders/billing", "g/a.b/c-d_e", "x=1"] {
            assert!(is_kv_key(good), "{good}");
        }
        for bad in ["", ".a", "a.", "a b", "a*", "a>", "ä"] {
            assert!(!is_kv_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_claim_without_a_term_is_the_first_write_of_a_term() {
        let claim: Claim = serde_json::from_slice(br#"{"node":"a"}"#).expect("a claim");
        assert_eq!((claim.node.as_str(), claim.term), ("a", None));
        let renewal = serde_json::to_string(&Claim {
            node: "a".into(),
            term: Some(4),
        })
        .expect("encodes");
        assert_eq!(renewal, r#"{"node":"a","term":4}"#);
    }
}
