//! [`Peers`]: what Blueprint needs from the other nodes when several share one log.
//!
//! Leases live in memory, and a heartbeat reaches one node. So that any node can take it,
//! every node passes the heartbeats it takes to the others ([`Peers::share`]) and renews the
//! leases of those it hears ([`Peers::heard`]). Only one node, the lease keeper, turns lapses
//! into `io.draft.instance.expired` ([`Peers::term`]); a node that becomes keeper first
//! gives every passing instance one full TTL, since it cannot know when the last keeper last
//! heard from them. Its expiries are appended with compare-and-set, like every control write,
//! and carry its term, so the audit trail says which keeper wrote each.
//!
//! The node's wiring implements it (over NATS for the JetStream backend); a node alone on its
//! log has none and is always the keeper.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::names::{InstanceId, ServiceName};
use crate::shared::Shared;
use crate::wire::Health;

/// A heartbeat one node took and passed to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeartbeat {
    /// The service.
    pub service: String,
    /// The instance.
    pub instance: String,
    /// The instance's TTL, as the node that took the heartbeat knows it (the nodes that
    /// hear it renew with the TTL of their own projection, which the log makes the same).
    pub ttl: Duration,
}

/// The other nodes of a cluster, as Blueprint's leases see them.
pub trait Peers: Send + Sync + 'static {
    /// Passes a heartbeat this node took to the other nodes (best effort: a lost one is made
    /// up by the next, as the TTL is several heartbeat intervals).
    fn share(&self, heartbeat: PeerHeartbeat);

    /// The heartbeats the other nodes took, as they arrive (this node's own are not in it).
    fn heard(&self) -> BoxStream<'static, PeerHeartbeat>;

    /// `Some(term)` if this node is the lease keeper at this instant, `None` if it is not;
    /// terms grow with every new keeper. Asked before every expiry is decided and again
    /// before it is written, so it must be cheap, and it must turn `None` as soon as the
    /// keeper's lease may have lapsed (after a pause too), not only once a task noticed.
    fn term(&self) -> Option<u64>;
}

/// Which node turns lapsed leases into expiries, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeping {
    /// This node is alone on its log: it is always the keeper.
    Alone,
    /// This node is the keeper, under this term.
    Keeper(u64),
    /// Another node is (or none is, during an election).
    Another,
}

/// A shared [`Peers`], as settings hold it.
#[derive(Clone)]
pub struct PeersHandle(pub Arc<dyn Peers>);

impl fmt::Debug for PeersHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Peers")
    }
}

/// Renews the lease of every passing instance another node heard from, until Blueprint is
/// gone or the node shuts down.
pub(crate) async fn hear(shared: Weak<Shared>) {
    let Some((mut heard, shutdown)) = shared.upgrade().and_then(|s| {
        let peers = s.config.peers.clone()?;
        Some((peers.0.heard(), s.config.shutdown.clone()))
    }) else {
        return;
    };
    let stopping = shutdown.triggered();
    tokio::pin!(stopping);
    loop {
        let heartbeat = tokio::select! {
            h = heard.next() => h,
            () = &mut stopping => return,
        };
        let (Some(heartbeat), Some(shared)) = (heartbeat, shared.upgrade()) else {
            return;
        };
        let (Ok(service), Ok(instance)) = (
            ServiceName::parse(&heartbeat.service),
            InstanceId::parse(&heartbeat.instance),
        ) else {
            continue;
        };
        let ttl = shared.read(|s| {
            s.instance(service.as_str(), instance.as_str())
                .filter(|i| i.health == Health::Passing)
                .map(|i| Duration::from_millis(i.registration.ttl_ms))
        });
        if let Some(ttl) = ttl {
            shared
                .leases()
                .renew(&service, &instance, ttl, tokio::time::Instant::now());
        }
    }
}
