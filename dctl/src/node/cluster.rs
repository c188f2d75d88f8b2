//! [`Cluster`]: this node's part among several nodes sharing one JetStream log. It runs the
//! lease keeper's election and passes heartbeats between the nodes over NATS, as Blueprint's
//! [`Peers`], and says in `/v1/status` who keeps the leases and which nodes it hears.
//!
//! A node alone on the embedded log has no `Cluster`: it keeps its own leases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use draft_blueprint::{PeerHeartbeat, Peers};
use draft_log_jetstream::{Heartbeat, HeartbeatBus, JetStream, Keeper, KeeperLock};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::group_locks::LocksOnNats;
use crate::error::{Error, Result};

/// Heartbeats waiting to be published; more are dropped (the next one makes up for a lost
/// one: an instance's TTL spans several heartbeats).
const OUTBOX: usize = 4096;
/// Heartbeats from other nodes waiting to be applied; more are dropped, as above.
const INBOX: usize = 4096;
/// How long a node that shared no heartbeat stays in the status's `heard_from`.
const HEARD_FOR: Duration = Duration::from_secs(60);
/// How often at most a failing publish is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The election and the heartbeat bus of one node, running.
pub(crate) struct Cluster {
    node: String,
    /// Taken by [`Cluster::shutdown`], which resigns.
    keeper: Mutex<Option<Keeper>>,
    /// A lock that never campaigns: it reads who holds the real one, for the status.
    reader: KeeperLock,
    /// The consumer groups' locks, for Catalyst.
    group_locks: Arc<LocksOnNats>,
    outbox: mpsc::Sender<Heartbeat>,
    heard: broadcast::Sender<PeerHeartbeat>,
    /// When each other node last shared a heartbeat.
    nodes: Arc<Mutex<HashMap<String, Instant>>>,
    tasks: Vec<AbortHandle>,
}

impl Cluster {
    /// Joins the election as `node`, with a lock that holds `ttl` unrenewed, and the
    /// heartbeat bus, on `log`'s connection.
    ///
    /// # Errors
    /// [`Error::ConnectLog`] if the keeper's bucket cannot be made or read, or the heartbeat
    /// subscription fails.
    pub(crate) async fn join(log: &JetStream, node: &str, ttl: Duration) -> Result<Arc<Self>> {
        let failed = |e: draft_log_jetstream::Error| Error::ConnectLog(format!("cluster: {e}"));
        let lock = KeeperLock::new(log, node, ttl).await.map_err(failed)?;
        let reader = KeeperLock::new(log, node, ttl).await.map_err(failed)?;
        let group_locks = Arc::new(LocksOnNats::new(reader.for_key("group").map_err(failed)?));
        let bus = HeartbeatBus::new(log.client().clone(), node);
        let incoming = bus.subscribe(INBOX).await.map_err(failed)?;
        let keeper = Keeper::spawn(lock);
        let (outbox, outgoing) = mpsc::channel(OUTBOX);
        let (heard, _) = broadcast::channel(INBOX);
        let nodes = Arc::new(Mutex::new(HashMap::new()));
        let tasks = vec![
            tokio::spawn(publish(bus, outgoing)).abort_handle(),
            tokio::spawn(receive(incoming, heard.clone(), Arc::clone(&nodes))).abort_handle(),
        ];
        info!(
            node,
            ttl_ms = ttl.as_millis() as u64,
            "joined the lease keeper's election"
        );
        Ok(Arc::new(Self {
            node: node.to_owned(),
            keeper: Mutex::new(Some(keeper)),
            reader,
            group_locks,
            outbox,
            heard,
            nodes,
            tasks,
        }))
    }

    /// The consumer groups' locks: a group is served by the node that holds its lock.
    pub(crate) fn group_locks(&self) -> Arc<dyn draft_catalyst::GroupLocks> {
        self.group_locks.clone()
    }

    /// Stops campaigning and, if this node is keeper, resigns, so that another node takes
    /// over at its next campaign rather than a TTL later.
    pub(crate) async fn shutdown(&self) {
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(keeper) = keeper {
            keeper.shutdown().await;
        }
    }

    /// What `/v1/status` says of the cluster: the keeper (from the lock, or the error that
    /// kept it from being read), whether it is this node, and the nodes this one heard
    /// heartbeats from within the last minute.
    pub(crate) async fn status(&self) -> serde_json::Value {
        let keeper = match self.reader.holder().await {
            Ok(Some((node, term))) => serde_json::json!({"node": node, "term": term.0}),
            Ok(None) => serde_json::Value::Null,
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        let now = Instant::now();
        let mut heard: Vec<(String, u64)> = self
            .nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, at)| now.duration_since(**at) < HEARD_FOR)
            .map(|(node, at)| (node.clone(), now.duration_since(*at).as_millis() as u64))
            .collect();
        heard.sort();
        serde_json::json!({
            "node": self.node,
            "keeper": keeper,
            "this_node_term": Peers::term(self),
            "heard_from": heard
                .into_iter()
                .map(|(node, ago)| serde_json::json!({"node": node, "last_heartbeat_ms_ago": ago}))
                .collect::<Vec<_>>(),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

impl Peers for Cluster {
    fn share(&self, heartbeat: PeerHeartbeat) {
        // Full: dropped, as a lost message would be.
        let _ = self.outbox.try_send(Heartbeat {
            service: heartbeat.service,
            instance: heartbeat.instance,
            ttl: heartbeat.ttl,
        });
    }

    fn heard(&self) -> BoxStream<'static, PeerHeartbeat> {
        futures::stream::unfold(self.heard.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(h) => return Some((h, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    fn term(&self) -> Option<u64> {
        self.keeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Keeper::term)
            .map(|t| t.0)
    }
}

/// Publishes the heartbeats this node takes, until the `Cluster` is gone.
async fn publish(bus: HeartbeatBus, mut outgoing: mpsc::Receiver<Heartbeat>) {
    let mut warned: Option<Instant> = None;
    while let Some(heartbeat) = outgoing.recv().await {
        if let Err(e) = bus.publish(&heartbeat).await
            && warned.is_none_or(|at| at.elapsed() >= WARN_EVERY)
        {
            warned = Some(Instant::now());
            warn!(error = %e, "cannot share a heartbeat with the other nodes");
        }
    }
}

/// Passes the heartbeats other nodes share to Blueprint, noting when each node was last
/// heard, until the connection closes.
async fn receive(
    mut incoming: draft_log_jetstream::Heartbeats,
    heard: broadcast::Sender<PeerHeartbeat>,
    nodes: Arc<Mutex<HashMap<String, Instant>>>,
) {
    while let Some(shared) = incoming.next().await {
        {
            let mut nodes = nodes.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if let Some(at) = nodes.get_mut(&shared.node) {
                *at = now;
            } else {
                nodes.retain(|_, at| now.duration_since(*at) < HEARD_FOR);
                nodes.insert(shared.node, now);
            }
        }
        // No receiver yet (Blueprint not open): nothing to renew.
        let _ = heard.send(PeerHeartbeat {
            service: shared.heartbeat.service,
            instance: shared.heartbeat.instance,
            ttl: shared.heartbeat.ttl,
        });
    }
}
