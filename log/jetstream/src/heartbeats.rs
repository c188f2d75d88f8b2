//! Heartbeats shared between nodes over core NATS, so that the lease keeper sees the
//! heartbeats that reached any node.
//!
//! Heartbeats are not logged: each is a core NATS message on [`HEARTBEAT_SUBJECT`], at most
//! once, no stream and no acknowledgement. A lost one costs nothing lasting: an instance
//! heartbeats several times per TTL, and a new keeper gives every instance a full TTL.
//! The body is JSON: `{"service", "instance", "node", "ttl_ms"}`, at most
//! [`MAX_HEARTBEAT_BYTES`].
//!
//! Why core NATS rather than a KV bucket with a TTL per key: a heartbeat is worth one TTL
//! and nothing after, so it need not be replicated and fsynced (an R3 put is a raft round
//! and three `fsync`s with `sync_interval: always`). On the three-server loopback test
//! cluster (`--example heartbeat_transport`, release, 2 cores) core NATS carried about
//! 570 000 heartbeats/s from one node to another at 0.2 ms p50 / 0.35 ms p99, against
//! about 30 000 puts/s (256 in flight) and 1.1 ms p50 / 2 ms p99 through a watched R3 KV
//! bucket. What core NATS gives up, delivery to a node that is down or slow, a keeper does
//! not need: a new keeper gives every instance a full TTL anyway.
//!
//! Receiving is bounded: a task moves messages from the subscription to a channel of the
//! capacity given to [`HeartbeatBus::subscribe`], dropping (and counting) what does not fit
//! and what cannot be decoded, so a slow reader loses heartbeats rather than growing a
//! queue. Past that, the client's own subscription buffer and the server's slow-consumer
//! limit drop heartbeats too (not counted here) when a node is overwhelmed.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use crate::error::{Error, Result};

/// The subject heartbeats travel on.
pub const HEARTBEAT_SUBJECT: &str = "draft.heartbeats";
/// The largest heartbeat message, in bytes; larger ones are refused when published and
/// dropped when received.
pub const MAX_HEARTBEAT_BYTES: usize = 1024;
/// How often at most a subscriber warns about dropped or malformed messages.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One heartbeat of a service instance, as one node received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The service.
    pub service: String,
    /// The instance of the service.
    pub instance: String,
    /// How long the instance's lease lasts from this heartbeat.
    pub ttl: Duration,
}

/// A heartbeat another node received and shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedHeartbeat {
    /// The node that received it.
    pub node: String,
    /// The heartbeat.
    pub heartbeat: Heartbeat,
}

/// The message body (borrowed where it has no escapes).
#[derive(Debug, Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    instance: Cow<'a, str>,
    #[serde(borrow)]
    node: Cow<'a, str>,
    ttl_ms: u64,
}

impl Wire<'_> {
    fn decode(payload: &[u8]) -> std::result::Result<SharedHeartbeat, String> {
        if payload.len() > MAX_HEARTBEAT_BYTES {
            return Err(format!("{} bytes", payload.len()));
        }
        let wire: Wire<'_> = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        if wire.service.is_empty() || wire.instance.is_empty() || wire.node.is_empty() {
            return Err("an empty service, instance or node".into());
        }
        if wire.ttl_ms == 0 {
            return Err("a zero TTL".into());
        }
        Ok(SharedHeartbeat {
            node: wire.node.into_owned(),
            heartbeat: Heartbeat {
                service: wire.service.into_owned(),
                instance: wire.instance.into_owned(),
                ttl: Duration::from_millis(wire.ttl_ms),
            },
        })
    }
}

/// One node's end of the heartbeat subject: publishes what reached this node, and receives
/// what reached the others. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HeartbeatBus {
    client: async_nats::Client,
    node: Arc<str>,
}

impl HeartbeatBus {
    /// The bus of node `node` over `client` (for example [`JetStream::client`](crate::JetStream::client)).
    pub fn new(client: async_nats::Client, node: impl Into<String>) -> Self {
        Self {
            client,
            node: Arc::from(node.into()),
        }
    }

    /// This node's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Shares a heartbeat this node received. Returns once the client has queued it (it
    /// waits only when the client's outgoing buffer is full); delivery is at most once.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if it encodes to more than [`MAX_HEARTBEAT_BYTES`];
    /// [`Error::Coordination`] if the client is closed.
    pub async fn publish(&self, heartbeat: &Heartbeat) -> Result<()> {
        let body = encode(&self.node, heartbeat)?;
        self.client
            .publish(HEARTBEAT_SUBJECT, body)
            .await
            .map_err(|e| Error::Coordination {
                op: "publish a heartbeat",
                target: HEARTBEAT_SUBJECT.into(),
                reason: e.to_string(),
            })
    }

    /// The heartbeats other nodes share from now on (this node's own are skipped), at most
    /// `capacity` waiting (at least 1); more are dropped until the reader catches up. The
    /// stream ends when the client is closed.
    ///
    /// # Errors
    /// [`Error::Coordination`] if the subscription could not be made.
    pub async fn subscribe(&self, capacity: usize) -> Result<Heartbeats> {
        let subscriber = self
            .client
            .subscribe(HEARTBEAT_SUBJECT)
            .await
            .map_err(|e| Error::Coordination {
                op: "subscribe to heartbeats",
                target: HEARTBEAT_SUBJECT.into(),
                reason: e.to_string(),
            })?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counts = Arc::new(Counts::default());
        tokio::spawn(relay(
            subscriber,
            tx,
            Arc::clone(&self.node),
            Arc::clone(&counts),
        ));
        Ok(Heartbeats { rx, counts })
    }
}

/// The body of `heartbeat` as `node` shares it.
fn encode(node: &str, heartbeat: &Heartbeat) -> Result<Bytes> {
    let wire = Wire {
        service: Cow::Borrowed(&heartbeat.service),
        instance: Cow::Borrowed(&heartbeat.instance),
        node: Cow::Borrowed(node),
        ttl_ms: u64::try_from(heartbeat.ttl.as_millis()).unwrap_or(u64::MAX),
    };
    let body = serde_json::to_vec(&wire).map_err(|e| Error::Protocol {
        op: "encode a heartbeat",
        reason: e.to_string(),
    })?;
    if body.len() > MAX_HEARTBEAT_BYTES {
        return Err(Error::TooLarge {
            what: "a heartbeat",
            size: body.len(),
            max: MAX_HEARTBEAT_BYTES,
        });
    }
    Ok(Bytes::from(body))
}

#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
    malformed: AtomicU64,
}

/// Moves messages from the subscription into the bounded channel until either end closes.
async fn relay(
    mut subscriber: async_nats::Subscriber,
    tx: mpsc::Sender<SharedHeartbeat>,
    node: Arc<str>,
    counts: Arc<Counts>,
) {
    let mut warned: Option<Instant> = None;
    let mut warn_once_in_a_while = |what: &str, total: u64, reason: &str| {
        let now = Instant::now();
        if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            warned = Some(now);
            warn!(
                subject = HEARTBEAT_SUBJECT,
                total, reason, "heartbeats {what}"
            );
        }
    };
    loop {
        let message = tokio::select! {
            () = tx.closed() => break,
            message = subscriber.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let shared = match Wire::decode(&message.payload) {
            Ok(shared) => shared,
            Err(reason) => {
                let total = counts.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                warn_once_in_a_while("malformed, dropped", total, &reason);
                continue;
            }
        };
        if *shared.node == *node {
            continue;
        }
        match tx.try_send(shared) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let total = counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                warn_once_in_a_while("dropped", total, "the reader is behind");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
}

/// The heartbeats other nodes share: a [`Stream`] from [`HeartbeatBus::subscribe`].
/// Dropping it ends the subscription.
#[derive(Debug)]
pub struct Heartbeats {
    rx: mpsc::Receiver<SharedHeartbeat>,
    counts: Arc<Counts>,
}

impl Heartbeats {
    /// How many heartbeats were dropped because the reader was behind.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// How many messages on the subject were not heartbeats (and were dropped).
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.counts.malformed.load(Ordering::Relaxed)
    }
}

impl Stream for Heartbeats {
    type Item = SharedHeartbeat;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat() -> Heartbeat {
        Heartbeat {
            service: "orders".into(),
            instance: "orders-1".into(),
            ttl: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_heartbeat_round_trips_with_the_sending_node_and_escapes() {
        let body = encode("n1", &heartbeat()).expect("encodes");
        let shared = Wire::decode(&body).expect("decodes");
        assert_eq!(shared.node, "n1");
        assert_eq!(shared.heartbeat, heartbeat());
        let quoted = Heartbeat {
            instance: "a \"quoted\" \\ name".into(),
            ..heartbeat()
        };
        let body = encode("n\t2", &quoted).expect("encodes");
        let shared = Wire::decode(&body).expect("decodes escapes");
        assert_eq!((shared.node.as_str(), shared.heartbeat), ("n\t2", quoted));
    }

    #[test]
    fn garbage_empty_fields_zero_ttls_and_oversized_bodies_are_refused() {
        for body in [
            &b"\xff\x00not json"[..],
            br#"{"service":"a","instance":"b"}"#,
            br#"{"service":"","instance":"b","node":"n","ttl_ms":5}"#,
            br#"{"service":"a","instance":"b","node":"n","ttl_ms":0}"#,
            br#"{"service":"a","instance":"b","node":"n","ttl_ms":-1}"#,
        ] {
            assert!(
                Wire::decode(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let big = Heartbeat {
            instance: "i".repeat(MAX_HEARTBEAT_BYTES),
            ..heartbeat()
        };
        assert!(matches!(
            encode("n1", &big),
            Err(Error::TooLarge {
                max: MAX_HEARTBEAT_BYTES,
                ..
            })
        ));
        let body = serde_json::to_vec(&serde_json::json!({
            "service": "a", "instance": "i".repeat(MAX_HEARTBEAT_BYTES), "node": "n", "ttl_ms": 5
        }))
        .expect("encodes");
        assert!(Wire::decode(&body).is_err());
    }
}
