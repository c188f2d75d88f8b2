//! Chassis: the library a Draft service embeds.
//!
//! A service declares its routes, lease, typed configuration, event hooks and plugins, builds,
//! and serves an axum router; the chassis registers it with the node, keeps its lease alive,
//! follows its configuration in Blueprint KV, runs its hooks on durable consumer groups,
//! produces its events over a pipelined WebSocket, serves `/healthz`, `/readyz` and
//! `/metrics`, and shuts it down in order on SIGTERM.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use draft_chassis::{Chassis, Hook, HookError, NewEvent};
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! #[serde(default)]
//! struct Settings {
//!     greeting: String,
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let chassis = Chassis::builder("hello")
//!         .route("/hello")
//!         .config::<Settings>()
//!         .hook(Hook::on("greetings").group("hello-greetings"), |event, ctx| async move {
//!             let reply = NewEvent::new("com.example.greeted", event.data().clone())
//!                 .id(format!("greeted-{}", event.id()));
//!             let producer = ctx.producer("replies").await?;
//!             producer.send(&reply).await.map_err(HookError::retry)?;
//!             Ok(())
//!         })
//!         .build()
//!         .await
//!         .unwrap_or_else(|e| e.exit());
//!     let config = chassis.config::<Settings>().expect("declared above");
//!     let router = Router::new().route("/hello", get(move || async move { config.get().greeting.clone() }));
//!     chassis.serve(router).await.unwrap_or_else(|e| e.exit());
//! }
//! ```
//!
//! Environment: `DRAFT_URL` (the node, default `http://127.0.0.1:7070`), `DRAFT_TOKEN`,
//! `DRAFT_SERVICE_ADDR` (listen, default `127.0.0.1:0`), `DRAFT_ADVERTISE`, `DRAFT_INSTANCE`,
//! `DRAFT_CONFIG`, `DRAFT_TTL_MS`, `DRAFT_DRAIN_DELAY_MS`, `DRAFT_SHUTDOWN_TIMEOUT_MS`,
//! `DRAFT_LOG_FORMAT=json`, and `RUST_LOG`; with the feature `otel`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (spans exported over OTLP/HTTP).
//!
//! Features: `postgres` and `nats` (the plugins in [`plugins`]), `otel` (OpenTelemetry).

mod backoff;
mod builder;
mod chassis;
pub mod config;
mod env;
mod error;
mod event;
pub mod hook;
mod metrics;
mod node;
mod ops;
pub mod plugin;
pub mod plugins;
mod producer;
mod registration;
mod shared;
mod shutdown;
mod signals;
mod telemetry;

pub use crate::builder::Builder;
pub use crate::chassis::Chassis;
pub use crate::config::Config;
pub use crate::env::Environment;
pub use crate::error::Error;
pub use crate::event::{Event, NewEvent};
pub use crate::hook::{Hook, HookContext, HookError, HookResult, Retry};
pub use crate::producer::Producer;
pub use crate::telemetry::{TraceContext, init_logging};
pub use draft_blueprint::wire::Route;
pub use draft_http::{ApiError, Code};
