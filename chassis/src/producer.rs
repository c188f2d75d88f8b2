//! The service's producer: pipelined WebSocket produce to one channel
//! (`draft_catalyst::client::Producer`), with events completed by the chassis (id, source,
//! trace).
//!
//! Many sends may be in flight on one connection; each resolves once the node stored the
//! event durably. After a dropped connection the frames not yet acknowledged are sent again
//! unchanged, with the same ids, so the broker's duplicate window stores each once. A
//! connection that stays down past the client's reconnect deadline fails what it held; the
//! next send opens a new one, so a service outlives any node outage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use draft_catalyst::client::{Producer as Pipelined, ProducerOptions};
use draft_http::ClientError;

use crate::event::NewEvent;
use crate::node::NodeLink;
use crate::telemetry::TraceContext;

/// A producer to one channel; cheap to clone, and valid for the life of the service.
#[derive(Debug, Clone)]
pub struct Producer {
    slot: Arc<Slot>,
}

/// One channel's connection, replaced when it stopped for good.
#[derive(Debug)]
struct Slot {
    node: NodeLink,
    service: String,
    channel: String,
    current: Mutex<Option<Arc<Pipelined>>>,
    /// Serializes reconnects, so a stopped connection is replaced once.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Pipelined>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|p| !p.is_closed())
    }

    /// The open connection, opening one if there is none.
    async fn connected(&self) -> Result<Arc<Pipelined>, ClientError> {
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let _one = self.connecting.lock().await;
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let opened = Arc::new(
            self.node
                .catalyst
                .producer(&self.channel, ProducerOptions::default())
                .await?,
        );
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&opened));
        Ok(opened)
    }
}

impl Producer {
    /// Sends `event`; resolves to its offset once it is durable (for a duplicate id, the
    /// offset it was first stored at). The event takes the current trace context, if any.
    /// Sends made one after the other go out in that order.
    ///
    /// # Errors
    /// (from the future) [`ClientError::Api`] if the node refused the event,
    /// [`ClientError::Connect`] if it stayed out of reach past the reconnect deadline.
    pub fn send(
        &self,
        event: &NewEvent,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send + 'static {
        let json = event.to_json(&self.slot.service, TraceContext::current());
        self.send_json(json.to_string())
    }

    /// Sends a structured-mode event as it is (its JSON), without completing it.
    ///
    /// # Errors
    /// (from the future) as [`Producer::send`].
    pub fn send_json(
        &self,
        event_json: String,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send + 'static {
        // Queued now on an open connection (which keeps the order of sends); otherwise once
        // a new one is open.
        let queued = self.slot.current().map(|p| p.send(event_json.clone()));
        let slot = Arc::clone(&self.slot);
        async move {
            if let Some(queued) = queued {
                return queued.await;
            }
            slot.connected().await?.send(event_json).await
        }
    }

    async fn close(&self) {
        let current = self
            .slot
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(p) = current
            && let Ok(p) = Arc::try_unwrap(p)
        {
            p.close().await;
        }
    }
}

/// The producers of one service, one per channel, opened on first use.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    open: Mutex<HashMap<String, Producer>>,
}

impl Producers {
    /// The producer to `channel`, connecting it on first use (a failed first connection is
    /// an error; later ones are retried by the sends).
    pub(crate) async fn get(
        &self,
        node: &NodeLink,
        service: &str,
        channel: &str,
    ) -> Result<Producer, ClientError> {
        let producer = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            open.entry(channel.to_owned())
                .or_insert_with(|| Producer {
                    slot: Arc::new(Slot {
                        node: node.clone(),
                        service: service.to_owned(),
                        channel: channel.to_owned(),
                        current: Mutex::new(None),
                        connecting: tokio::sync::Mutex::new(()),
                    }),
                })
                .clone()
        };
        producer.slot.connected().await?;
        Ok(producer)
    }

    /// Closes every producer, waiting for what was sent to be acknowledged.
    pub(crate) async fn close(&self) {
        let open: Vec<Producer> = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in open {
            p.close().await;
        }
    }
}
