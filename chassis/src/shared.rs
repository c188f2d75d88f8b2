//! What every part of a running service shares: its identity, its link to the node, its
//! producers, metrics and readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use draft_http::ClientError;

use crate::metrics::Metrics;
use crate::node::NodeLink;
use crate::plugin::{Health, Started};
use crate::producer::{Producer, Producers};

/// The state of one running service.
pub(crate) struct Shared {
    pub(crate) service: String,
    pub(crate) instance: String,
    pub(crate) node: NodeLink,
    pub(crate) producers: Producers,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) plugins: Vec<Started>,
    /// Each hook's name and whether its consumer is connected.
    pub(crate) hooks: Vec<(String, Arc<AtomicBool>)>,
    /// True from the moment the service serves until its shutdown starts.
    pub(crate) serving: AtomicBool,
}

impl Shared {
    /// The producer to `channel`, opened on first use.
    pub(crate) async fn producer(&self, channel: &str) -> Result<Producer, ClientError> {
        self.producers.get(&self.node, &self.service, channel).await
    }

    /// Why the service is not ready (empty: ready).
    pub(crate) async fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.serving.load(Ordering::Acquire) {
            reasons.push("not serving (starting or shutting down)".to_owned());
        }
        // The KV watch reads its socket all the time, so it sees the node go away at once,
        // while a hook whose handler is busy only notices when it reads next. (A service
        // without hooks stays ready: it serves without the node.)
        let node_up = self.metrics.config_connected.get() == 1;
        for (name, connected) in &self.hooks {
            if !node_up || !connected.load(Ordering::Acquire) {
                reasons.push(format!("hook {name} is not connected"));
            }
        }
        for started in &self.plugins {
            if let Health::Down(why) = started.plugin.health(started.handle.as_ref()).await {
                reasons.push(format!("plugin {} is down: {why}", started.plugin.name()));
            }
        }
        reasons
    }
}
