//! [`GroupLocks`]: how nodes that share one log agree on which of them serves a consumer
//! group, so a group has one active member across every node, not one per node.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

/// One lock per consumer group, held by at most one node at a time, with a TTL. The node
/// hands Catalyst one when other nodes append to the same log (on NATS JetStream, a key per
/// group in a KV bucket); a node alone on its log has none and serves every group itself.
///
/// A node activates a member of a group only while it holds the group's lock, and only
/// until the instant [`hold`](Self::hold) returned: a node paused past its lease stops
/// delivering when it wakes, before it has renewed.
pub trait GroupLocks: Send + Sync + 'static {
    /// Takes the lock of `channel`'s group `group` for this node, or renews it if this node
    /// holds it: `Ok(Some(until))` if it holds it now, the instant after which it must not
    /// act for the group without another `hold`; `Ok(None)` if another node holds it. Then
    /// this node waits for the lock, which [`waiting_elsewhere`](Self::waiting_elsewhere)
    /// tells the other nodes, until its [`release`](Self::release).
    ///
    /// # Errors
    /// Why the cluster did not answer; the caller then acts as if it does not hold the lock.
    fn hold<'a>(
        &'a self,
        channel: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Option<Instant>, String>>;

    /// This node has no member of the group left: gives the lock up if it holds it, so that
    /// another node's next [`hold`](Self::hold) takes it at once rather than a TTL later,
    /// and stops waiting for it if it does not.
    fn release<'a>(&'a self, channel: &'a str, group: &'a str) -> BoxFuture<'a, ()>;

    /// The other nodes that wait for the lock of `channel`'s group `group` (members of the
    /// group stand by there), by name: a deletion is refused while there are any. A node that
    /// died waiting counts for up to one TTL.
    ///
    /// # Errors
    /// Why the cluster did not answer.
    fn waiting_elsewhere<'a>(
        &'a self,
        channel: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;

    /// How often a held lock is renewed (a third of its TTL, typically).
    fn renew_every(&self) -> Duration;
}
