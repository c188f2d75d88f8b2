//! A PostgreSQL connection pool as a plugin (feature `postgres`).
//!
//! [`Postgres`] reads the configuration section `postgres`:
//!
//! ```toml
//! [postgres]
//! url = "postgres://user:password@host:5432/db"   # required
//! max_connections = 8                             # optional, default 8
//! ```
//!
//! - **start** builds a [`Pool`] (`deadpool-postgres` over `tokio-postgres`) and checks it with
//!   one connection and `SELECT 1`, so a wrong URL, password or port stops the service before
//!   it registers. Without a `postgres` section start fails too: a service that adds the
//!   plugin needs a database. Every failure is one line that names the plugin and hides the
//!   password.
//! - **health** is `SELECT 1` on a pooled connection, answered within 2 s, else `Down`.
//! - **stop** closes the pool: idle connections close at once, those in use when returned.
//!
//! The handle is the [`Pool`] itself; take a connection with `pool.get().await`, which gives
//! up after 5 s (no connection free, or none could be opened) rather than wait forever.
//!
//! **No TLS**: connections are plaintext (`tokio_postgres::NoTls`), which suits a database on
//! the same host or a private network. A URL with `sslmode=require` fails at start; the
//! default `sslmode=prefer` connects in plaintext.
//!
//! ```no_run
//! use draft_chassis::plugin::{Plugin, PluginContext};
//! use draft_chassis::plugins::postgres::Postgres;
//!
//! # async fn example() -> Result<(), draft_chassis::plugin::PluginError> {
//! let ctx = PluginContext {
//!     service: "orders".into(),
//!     config: serde_json::json!({"postgres": {"url": "postgres://app:pw@127.0.0.1/orders"}}),
//! };
//! let plugin = Postgres::new();
//! let pool = plugin.start(&ctx).await?;
//! let row = pool.get().await?.query_one("SELECT 1 + 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 2);
//! plugin.stop(&pool).await;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub use deadpool_postgres::Pool;
pub use deadpool_postgres::tokio_postgres;
use deadpool_postgres::{Manager, ManagerConfig, PoolError, RecyclingMethod, Runtime};
use serde::Deserialize;
use tokio_postgres::NoTls;

use super::report::{one_line, redact_password};
use crate::plugin::{Health, Plugin, PluginContext, PluginError};

/// The configuration section the plugin reads.
pub const SECTION: &str = "postgres";

/// How long start waits for its first connection (connect, authenticate, `SELECT 1`).
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a health check may take: `/readyz` calls it, and must answer quickly.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The section `postgres` of a service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db` (or `postgresql://`); query parameters are
    /// those of `tokio_postgres::Config` (`connect_timeout`, `application_name`, …).
    pub url: String,
    /// The pool's size (at least 1; default 8).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    8
}

impl PostgresConfig {
    /// Reads the section `postgres` of `ctx`'s configuration.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, PostgresError> {
        let section = ctx.section(SECTION).ok_or(PostgresError::MissingSection)?;
        let config =
            Self::deserialize(section).map_err(|e| PostgresError::BadSection(one_line(&e)))?;
        if config.max_connections == 0 {
            return Err(PostgresError::BadSection(
                "max_connections must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// The URL parsed for `tokio-postgres`, with the plugin's connect timeout unless the URL
    /// sets one.
    fn pg_config(&self) -> Result<tokio_postgres::Config, PostgresError> {
        // tokio-postgres also takes `key=value` strings; only URLs are accepted, so that
        // every message can hide the password (and anything else is not shown at all).
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(PostgresError::BadUrl {
                url: "(not shown)".into(),
                reason: "expected postgres://user:password@host:port/db".into(),
            });
        }
        let bad_url = |reason: String| PostgresError::BadUrl {
            url: redact_password(&self.url),
            reason,
        };
        let mut config: tokio_postgres::Config =
            self.url.parse().map_err(|e| bad_url(one_line(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(START_TIMEOUT);
        }
        Ok(config)
    }
}

/// Why the PostgreSQL plugin did not start. Each message names the plugin, says what failed
/// and never shows a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The configuration has no `postgres` section (bad configuration: fix it and restart).
    #[error(
        "postgres plugin: the configuration has no `postgres` section (it needs at least `url`)"
    )]
    MissingSection,
    /// The `postgres` section is not a valid [`PostgresConfig`] (bad configuration).
    #[error("postgres plugin: bad `postgres` section: {0}")]
    BadSection(String),
    /// `url` is not a PostgreSQL URL `tokio-postgres` understands (bad configuration).
    #[error("postgres plugin: invalid url {url}: {reason}")]
    BadUrl {
        /// The URL, password hidden (`(not shown)` if it is no `postgres://` URL).
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No working connection within 5 s: unreachable, refused, authentication failed, or the
    /// server asks for TLS (retryable once the database or the URL is fixed).
    #[error("postgres plugin: cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the server or the network answered.
        reason: String,
    },
}

/// The PostgreSQL plugin: its handle is a connection [`Pool`] (see the module docs).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Postgres {}

impl Postgres {
    /// The plugin, reading the section `postgres`.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }

    /// Builds the pool for `config` and checks one connection with `SELECT 1`.
    pub async fn connect(config: &PostgresConfig) -> Result<Pool, PostgresError> {
        let manager = Manager::from_config(
            config.pg_config()?,
            NoTls,
            // Fast: a returned connection is reused unless it is closed; a broken one that
            // still looks open fails its next query once, then is closed and replaced.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(START_TIMEOUT))
            .create_timeout(Some(START_TIMEOUT))
            .recycle_timeout(Some(START_TIMEOUT))
            .build()
            .map_err(|e| PostgresError::Connect {
                url: redact_password(&config.url),
                reason: one_line(&e),
            })?;
        select_one(&pool, START_TIMEOUT)
            .await
            .map_err(|reason| PostgresError::Connect {
                url: redact_password(&config.url),
                reason,
            })?;
        Ok(pool)
    }
}

/// Takes a connection and runs `SELECT 1` within `timeout`; says why not otherwise.
async fn select_one(pool: &Pool, timeout: Duration) -> Result<(), String> {
    let check = async {
        let client = pool.get().await.map_err(|e| match e {
            // What the server or the network said, without deadpool's wrapping.
            PoolError::Backend(e) => one_line(&e),
            e => one_line(&e),
        })?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| format!("SELECT 1 failed: {}", one_line(&e)))
    };
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

impl Plugin for Postgres {
    type Handle = Pool;

    fn name(&self) -> &str {
        SECTION
    }

    async fn start(&self, ctx: &PluginContext) -> Result<Pool, PluginError> {
        let config = PostgresConfig::from_context(ctx)?;
        let pool = Self::connect(&config).await?;
        tracing::info!(
            url = %redact_password(&config.url),
            max_connections = config.max_connections,
            "postgres pool ready"
        );
        Ok(pool)
    }

    async fn stop(&self, pool: &Pool) {
        pool.close();
    }

    async fn health(&self, pool: &Pool) -> Health {
        match select_one(pool, HEALTH_TIMEOUT).await {
            Ok(()) => Health::Up,
            Err(reason) => Health::Down(reason),
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
    fn the_section_is_read_with_a_default_pool_size() {
        let config = PostgresConfig::from_context(&ctx(
            serde_json::json!({"postgres": {"url": "postgres://a:b@h/db"}}),
        ))
        .unwrap();
        assert_eq!(config.url, "postgres://a:b@h/db");
        assert_eq!(config.max_connections, 8);
    }

    #[test]
    fn a_missing_or_bad_section_is_refused_with_a_clear_message() {
        let missing = PostgresConfig::from_context(&ctx(serde_json::json!({"other": 1})));
        assert_eq!(missing, Err(PostgresError::MissingSection));
        let null = PostgresConfig::from_context(&ctx(serde_json::json!({"postgres": null})));
        assert_eq!(null, Err(PostgresError::MissingSection));

        for (section, needle) in [
            (serde_json::json!({}), "missing field `url`"),
            (
                serde_json::json!({"url": "postgres://h/db", "max_conections": 3}),
                "unknown field `max_conections`",
            ),
            (
                serde_json::json!({"url": "postgres://h/db", "max_connections": 0}),
                "at least 1",
            ),
        ] {
            let e = PostgresConfig::from_context(&ctx(serde_json::json!({"postgres": section})))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("postgres plugin: bad `postgres` section"),
                "{e}"
            );
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn only_urls_are_taken_and_their_password_never_shows() {
        for url in [
            "host=h user=a password=s3cret",
            "mysql://a:s3cret@h/db",
            "postgres://a:s3cret@h:notaport/db",
        ] {
            let config = PostgresConfig {
                url: url.into(),
                max_connections: 1,
            };
            let e = config.pg_config().unwrap_err();
            assert!(matches!(e, PostgresError::BadUrl { .. }), "{url}: {e}");
            let text = e.to_string();
            assert!(text.starts_with("postgres plugin: invalid url"), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn the_connect_timeout_defaults_to_the_start_timeout() {
        let config = PostgresConfig {
            url: "postgres://h/db".into(),
            max_connections: 1,
        };
        let pg = config.pg_config().unwrap();
        assert_eq!(pg.get_connect_timeout(), Some(&START_TIMEOUT));
        let config = PostgresConfig {
            url: "postgres://h/db?connect_timeout=1".into(),
            max_connections: 1,
        };
        let pg = config.pg_config().unwrap();
        assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(1)));
    }
}
