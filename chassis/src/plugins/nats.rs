//! A NATS connection as a plugin (feature `nats`).
//!
//! [`Nats`] reads the configuration section `nats`:
//!
//! ```toml
//! [nats]
//! url = "nats://127.0.0.1:4222"   # required; credentials as nats://user:password@host or nats://token@host
//! ```
//!
//! - **start** connects an [`async_nats::Client`] (named after the service, so the server's
//!   monitoring shows who is connected). An unreachable server, a bad URL or a missing `nats`
//!   section stops the service before it registers, with one line that names the plugin and
//!   hides the credentials. Once started, the client reconnects by itself whenever the
//!   connection drops.
//! - **health** is `Up` while the client is connected and the server answers a flush
//!   (a PING) within 1 s; `Down` while it is reconnecting.
//! - **stop** drains the client: subscriptions stop, what was published is flushed, the
//!   connection closes (within 5 s; at once when the server is already gone).
//!
//! The handle is the [`async_nats::Client`] itself (cheap to clone).
//!
//! ```no_run
//! use draft_chassis::plugin::{Plugin, PluginContext};
//! use draft_chassis::plugins::nats::Nats;
//!
//! # async fn example() -> Result<(), draft_chassis::plugin::PluginError> {
//! let ctx = PluginContext {
//!     service: "orders".into(),
//!     config: serde_json::json!({"nats": {"url": "nats://127.0.0.1:4222"}}),
//! };
//! let plugin = Nats::new();
//! let client = plugin.start(&ctx).await?;
//! client.publish("orders.created", "o-1".into()).await?;
//! plugin.stop(&client).await;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub use async_nats;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, ServerAddr};
use serde::Deserialize;

use super::report::{one_line, redact_credentials};
use crate::plugin::{Health, Plugin, PluginContext, PluginError};

/// The configuration section the plugin reads.
pub const SECTION: &str = "nats";

/// How long start waits for the connection (TCP, the server's INFO, CONNECT).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a health check may wait for the server's PONG: `/readyz` must answer quickly.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// How long stop waits for the drain to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The section `nats` of a service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The server, `nats://host:port` (credentials as `nats://user:password@host:port`).
    pub url: String,
}

impl NatsConfig {
    /// Reads the section `nats` of `ctx`'s configuration.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, NatsError> {
        let section = ctx.section(SECTION).ok_or(NatsError::MissingSection)?;
        Self::deserialize(section).map_err(|e| NatsError::BadSection(one_line(&e)))
    }
}

/// Why the NATS plugin did not start. Each message names the plugin, says what failed and
/// never shows credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The configuration has no `nats` section (bad configuration: fix it and restart).
    #[error("nats plugin: the configuration has no `nats` section (it needs at least `url`)")]
    MissingSection,
    /// The `nats` section is not a valid [`NatsConfig`] (bad configuration).
    #[error("nats plugin: bad `nats` section: {0}")]
    BadSection(String),
    /// `url` is not a NATS server address (bad configuration).
    #[error("nats plugin: invalid url {url}: {reason}")]
    BadUrl {
        /// The URL, credentials hidden.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No connection within 5 s: unreachable, refused, or authorization failed (retryable
    /// once the server or the URL is fixed).
    #[error("nats plugin: cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, credentials hidden.
        url: String,
        /// What the server or the network answered.
        reason: String,
    },
}

/// The NATS plugin: its handle is an [`async_nats::Client`] (see the module docs).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Nats {}

impl Nats {
    /// The plugin, reading the section `nats`.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }

    /// Connects to `config.url`, naming the connection `name`.
    pub async fn connect(config: &NatsConfig, name: &str) -> Result<Client, NatsError> {
        let url = redact_credentials(&config.url);
        let address: ServerAddr = config.url.parse().map_err(|e| NatsError::BadUrl {
            url: url.clone(),
            reason: one_line(&e),
        })?;
        let connect = ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(address);
        // The client's own timeout covers one attempt; this bounds the whole start.
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(NatsError::Connect {
                url,
                reason: one_line(&e),
            }),
            Err(_) => Err(NatsError::Connect {
                url,
                reason: format!("no connection within {:?}", CONNECT_TIMEOUT * 2),
            }),
        }
    }
}

impl Plugin for Nats {
    type Handle = Client;

    fn name(&self) -> &str {
        SECTION
    }

    async fn start(&self, ctx: &PluginContext) -> Result<Client, PluginError> {
        let config = NatsConfig::from_context(ctx)?;
        let client = Self::connect(&config, &ctx.service).await?;
        tracing::info!(url = %redact_credentials(&config.url), "nats connected");
        Ok(client)
    }

    async fn stop(&self, client: &Client) {
        let connected = client.connection_state() == State::Connected;
        let drain = async {
            if let Err(e) = client.drain().await {
                tracing::warn!(error = %one_line(&e), "nats drain failed");
                return;
            }
            if connected {
                // `drain` only queues the request. A flush queued behind it resolves (or
                // fails, once the client closes the connection) after the drain is done.
                let _ = client.flush().await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!("nats drain unfinished after {DRAIN_TIMEOUT:?}");
        }
    }

    async fn health(&self, client: &Client) -> Health {
        match client.connection_state() {
            State::Connected => {}
            state => return Health::Down(format!("connection {state}")),
        }
        match tokio::time::timeout(HEALTH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => Health::Up,
            Ok(Err(e)) => Health::Down(format!("flush failed: {}", one_line(&e))),
            Err(_) => Health::Down(format!("no PONG within {HEALTH_TIMEOUT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(config: serde_json::Value) -> PluginContext {
        PluginContext {
            service: "orders".into(),
            config,
        }
    }

    #[test]
    fn the_section_is_read_or_refused_with_a_clear_message() {
        let config =
            NatsConfig::from_context(&ctx(serde_json::json!({"nats": {"url": "nats://h:4222"}})))
                .unwrap();
        assert_eq!(config.url, "nats://h:4222");
        assert_eq!(
            NatsConfig::from_context(&ctx(serde_json::json!({}))),
            Err(NatsError::MissingSection)
        );
        let e = NatsConfig::from_context(&ctx(serde_json::json!({"nats": {"uri": "x"}})))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("nats plugin: bad `nats` section"), "{e}");
        assert!(e.contains("unknown field `uri`"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_its_credentials() {
        let config = NatsConfig {
            url: "http://user:s3cret@h:4222".into(),
        };
        let e = Nats::connect(&config, "orders").await.unwrap_err();
        assert!(matches!(e, NatsError::BadUrl { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("nats plugin: invalid url"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
