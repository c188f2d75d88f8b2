//! Follows the service's KV configuration with Blueprint's watch API
//! (`GET /v1/watch?prefix=config/<service>/`): the current values first, then every change.
//! After a disconnect it reconnects with back-off and resumes from the last revision it saw
//! (`from=`), so no change is missed; a socket that stays silent past three of the node's
//! ping intervals is taken for dead and replaced.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use draft_blueprint::wire::{WatchMessage, base64_decode};
use draft_http::ClientError;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::Apply;
use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::node::{NodeLink, Socket};

/// The longest silence on a watch socket before it is replaced (the node pings every 15 s).
const SILENCE: Duration = Duration::from_secs(45);

/// The KV follower of one service.
pub(crate) struct Follower {
    pub(crate) node: NodeLink,
    pub(crate) prefix: String,
    pub(crate) apply: Arc<Mutex<Box<dyn Apply>>>,
    pub(crate) metrics: Arc<Metrics>,
    /// The last revision seen (`None`: none yet, so the next connection asks for a snapshot).
    pub(crate) revision: Option<u64>,
    /// Receiving a snapshot: its entries come in key order, each with its own revision, so
    /// only the caught-up marker says how far it reaches.
    pub(crate) in_snapshot: bool,
}

impl Follower {
    /// Connects and applies the current values, up to the caught-up marker.
    pub(crate) async fn sync(&mut self) -> Result<Socket, String> {
        let mut socket = match self.open().await {
            Err(ClientError::Api {
                status, message, ..
            }) if (400..500).contains(&status) && self.revision.is_some() => {
                // The node has no such revision (a new data directory, another node): start
                // over from its current state.
                warn!(revision = ?self.revision, %message, "the node cannot resume the config watch; taking its current state");
                self.revision = None;
                self.apply
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .reset_kv();
                self.open().await.map_err(|e| e.to_string())?
            }
            other => other.map_err(|e| e.to_string())?,
        };
        loop {
            match self.next(&mut socket).await? {
                Some(true) => break,
                Some(false) => {}
                None => return Err("the watch closed before it caught up".to_owned()),
            }
        }
        self.metrics.config_connected.set(1);
        Ok(socket)
    }

    /// Opens the watch: a snapshot, or the changes after the last revision seen.
    async fn open(&mut self) -> Result<Socket, ClientError> {
        self.in_snapshot = self.revision.is_none();
        let query = match self.revision {
            Some(r) => format!("prefix={}&from={r}", self.prefix),
            None => format!("prefix={}", self.prefix),
        };
        self.node.websocket(&format!("/v1/watch?{query}")).await
    }

    /// Follows changes until `stop` resolves, reconnecting as needed.
    pub(crate) async fn follow(
        mut self,
        mut socket: Option<Socket>,
        stop: impl Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let mut current = if let Some(s) = socket.take() {
                s
            } else {
                let attempt = tokio::select! {
                    () = &mut stop => return,
                    attempt = self.sync() => attempt,
                };
                match attempt {
                    Ok(s) => {
                        info!(prefix = %self.prefix, revision = ?self.revision, "config watch connected");
                        backoff.reset();
                        s
                    }
                    Err(reason) => {
                        debug!(%reason, "config watch: cannot connect");
                        tokio::select! {
                            () = &mut stop => return,
                            () = tokio::time::sleep(backoff.next_delay()) => continue,
                        }
                    }
                }
            };
            let outcome = loop {
                tokio::select! {
                    () = &mut stop => return,
                    next = self.next(&mut current) => match next {
                        Ok(Some(_)) => {}
                        Ok(None) => break "closed by the node".to_owned(),
                        Err(e) => break e,
                    },
                }
            };
            self.metrics.config_connected.set(0);
            warn!(reason = %outcome, revision = ?self.revision, "config watch lost; resuming");
        }
    }

    /// Reads one message and applies it: `Some(true)` at the caught-up marker, `None` when
    /// the socket closed.
    async fn next(&mut self, socket: &mut Socket) -> Result<Option<bool>, String> {
        loop {
            let message = match tokio::time::timeout(SILENCE, socket.next()).await {
                Err(_) => return Err(format!("silent for {SILENCE:?}")),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            let text = match message {
                Message::Text(t) => t,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            let parsed: WatchMessage =
                serde_json::from_str(&text).map_err(|e| format!("watch message: {e}"))?;
            return Ok(Some(self.apply(parsed)));
        }
    }

    fn apply(&mut self, message: WatchMessage) -> bool {
        let (revision, key, value) = match message {
            WatchMessage::Put {
                revision,
                key,
                value_base64,
            } => {
                let Some(value) = base64_decode(&value_base64) else {
                    self.metrics.config_rejections.inc();
                    warn!(%key, revision, "config value with bad base64 from the node; ignored");
                    return false;
                };
                (revision, key, Some(value))
            }
            WatchMessage::Deleted { revision, key } => (revision, key, None),
            WatchMessage::CaughtUp { revision } => {
                if let Some(r) = revision {
                    self.seen(r);
                }
                self.in_snapshot = false;
                return true;
            }
            // Registry changes are not configuration.
            _ => return false,
        };
        if !self.in_snapshot {
            self.seen(revision);
        }
        let outcome = self
            .apply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(&key, value.as_deref());
        match outcome {
            Ok(()) => {
                self.metrics.config_changes.inc();
                info!(%key, revision, "config changed");
            }
            Err(reason) => {
                self.metrics.config_rejections.inc();
                warn!(%key, revision, %reason, "config value rejected; the previous config stays");
            }
        }
        false
    }

    fn seen(&mut self, revision: u64) {
        self.revision = Some(self.revision.map_or(revision, |r| r.max(revision)));
    }
}
