//! The service's producer: pipelined WebSocket produce to one channel
//! (`draft_catalyst::Producer`), with events completed by the chassis (id, source, trace).
//!
//! Many sends may be in flight on one connection; each resolves once the node stored the
//! event durably. After a dropped connection the frames not yet acknowledged are sent again
//! unchanged, with the same ids, so the broker's duplicate window stores each once.

use std::collections::HashMap;
use std::sync::Arc;

use draft_catalyst::client::{Producer as Pipelined, ProducerOptions};
use draft_http::ClientError;
use tokio::sync::Mutex;

use crate::event::NewEvent;
use crate::node::NodeLink;
use crate::telemetry::TraceContext;

/// A producer to one channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Pipelined>,
    service: Arc<str>,
}

impl Producer {
    /// Sends `event`; resolves to its offset once it is durable (for a duplicate id, the
    /// offset it was first stored at). The event takes the current trace context, if any.
    ///
    /// # Errors
    /// (from the future) [`ClientError::Api`] if the node refused the event,
    /// [`ClientError::Connect`] if it stayed out of reach past the reconnect deadline.
    pub fn send(
        &self,
        event: &NewEvent,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send + 'static {
        let json = event.to_json(&self.service, TraceContext::current());
        self.inner.send(json.to_string())
    }

    /// Sends a structured-mode event as it is (its JSON), without completing it.
    pub fn send_json(
        &self,
        event_json: String,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send + 'static {
        self.inner.send(event_json)
    }
}

/// The producers of one service, one per channel, opened on first use.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    open: Mutex<HashMap<String, Producer>>,
}

impl Producers {
    /// The producer to `channel`, connecting it on first use.
    pub(crate) async fn get(
        &self,
        node: &NodeLink,
        service: &str,
        channel: &str,
    ) -> Result<Producer, ClientError> {
        let mut open = self.open.lock().await;
        if let Some(p) = open.get(channel) {
            return Ok(p.clone());
        }
        let inner = node
            .catalyst
            .producer(channel, ProducerOptions::default())
            .await?;
        let producer = Producer {
            inner: Arc::new(inner),
            service: Arc::from(service),
        };
        open.insert(channel.to_owned(), producer.clone());
        Ok(producer)
    }

    /// Closes every producer, waiting for what was sent to be acknowledged.
    pub(crate) async fn close(&self) {
        let open: Vec<Producer> = self.open.lock().await.drain().map(|(_, p)| p).collect();
        for p in open {
            if let Ok(inner) = Arc::try_unwrap(p.inner) {
                inner.close().await;
            }
        }
    }
}
