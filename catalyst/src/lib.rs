//! Catalyst: Draft's CloudEvents broker.
//!
//! Producers `POST` CloudEvents 1.0 over HTTP in structured, binary or batch mode, or pipeline
//! them over a WebSocket; each event is validated, appended to its channel's partition of the
//! log and acknowledged once it is durable. Consumers open a WebSocket (`cloudevents.json`), replay from any offset or time,
//! then follow live events; every consumer of a channel receives every matching event, in
//! offset order, once. See DESIGN.md §2-4.
//!
//! With the `server` feature (default) the crate is the broker: [`router`] and [`Catalyst`].
//! The wire types in [`wire`] are always available to clients.

#[cfg(feature = "server")]
mod api;
#[cfg(feature = "server")]
mod broker;
#[cfg(feature = "server")]
mod channel;
#[cfg(feature = "server")]
mod channel_name;
#[cfg(feature = "server")]
pub mod cloudevent;
#[cfg(feature = "server")]
mod consume;
#[cfg(feature = "server")]
mod dedup;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod feed;
#[cfg(feature = "server")]
mod group_api;
#[cfg(feature = "server")]
mod group_session;
mod group_wire;
#[cfg(feature = "server")]
mod groups;
#[cfg(feature = "server")]
mod metrics;
#[cfg(feature = "server")]
mod produce;
#[cfg(feature = "server")]
mod produce_socket;
#[cfg(feature = "server")]
mod query;
#[cfg(feature = "server")]
mod read_size;
#[cfg(feature = "server")]
mod reader;
#[cfg(feature = "server")]
mod retention;
pub mod wire;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "server")]
pub use crate::api::router;
#[cfg(feature = "server")]
pub use crate::broker::{Catalyst, CatalystConfig};
#[cfg(feature = "server")]
pub use crate::channel::MAX_PAGE;
#[cfg(feature = "server")]
pub use crate::channel_name::{ChannelName, ChannelNameError};
#[cfg(feature = "server")]
pub use crate::groups::{ControlLog, GroupLocks};
#[cfg(feature = "server")]
pub use crate::metrics::Metrics;
