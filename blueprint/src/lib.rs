//! Blueprint: Draft's service registry and key/value configuration store.
//!
//! Every change is a CloudEvent appended to the control partition `_draft`; the registry and
//! the KV store are a [`Projection`] of that log, so nothing is ever forgotten and the state
//! as of any past revision or time can be asked for (`?at=`). Leases are kept in memory; when
//! one lapses the node appends `io.draft.instance.expired`. See DESIGN.md §2-4.
//!
//! Tokens are control events too (`io.draft.token.created` / `revoked`, carrying only the
//! SHA-256 of their secret), so they are part of the projection: they survive restarts and
//! `?at=` shows who could do what then. [`Blueprint::authenticate`] checks a presented
//! secret against them, through a cache the writer clears on every token event.
//!
//! Writes take validated names ([`ServiceName`], [`InstanceId`], [`Key`]) and revisions are
//! [`Revision`]s, so the library refuses what the HTTP API refuses.

pub mod wire;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "server")]
mod api;
#[cfg(feature = "server")]
mod applier;
#[cfg(feature = "server")]
mod blueprint;
#[cfg(feature = "server")]
mod checkpoint;
#[cfg(feature = "server")]
mod config;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
pub mod event;
#[cfg(feature = "server")]
mod expiry;
#[cfg(feature = "server")]
mod follower;
#[cfg(feature = "server")]
mod kv;
#[cfg(feature = "server")]
mod kv_values;
#[cfg(feature = "server")]
mod lease;
#[cfg(feature = "server")]
mod names;
#[cfg(feature = "server")]
pub mod ownership;
#[cfg(feature = "server")]
pub mod peers;
#[cfg(feature = "server")]
pub mod projection;
#[cfg(feature = "server")]
mod reaper;
#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
mod replay;
#[cfg(feature = "server")]
mod respond;
#[cfg(feature = "server")]
mod shared;
#[cfg(feature = "server")]
mod token_api;
#[cfg(feature = "server")]
mod token_cache;
#[cfg(feature = "server")]
mod tokens;
#[cfg(feature = "server")]
pub mod upstream;
#[cfg(feature = "server")]
mod value_cache;
#[cfg(feature = "server")]
mod watch;
#[cfg(feature = "server")]
mod writer;

#[cfg(feature = "server")]
pub use crate::api::router;
#[cfg(feature = "server")]
pub use crate::applier::{Condition, Outcome};
#[cfg(feature = "server")]
pub use crate::blueprint::Blueprint;
#[cfg(feature = "server")]
pub use crate::config::BlueprintConfig;
#[cfg(feature = "server")]
pub use crate::error::{NameError, NameKind, OpenError, ValueError, WriteError};
#[cfg(feature = "server")]
pub use crate::event::{Applied, CONTROL_PARTITION, ControlEvent};
#[cfg(feature = "server")]
pub use crate::follower::Reached;
#[cfg(feature = "server")]
pub use crate::names::{InstanceId, Key, MAX_KEY_BYTES, Revision, ServiceName, TokenName};
#[cfg(feature = "server")]
pub use crate::ownership::{Claim, RouteClaims, RouteKey, normalize_host};
#[cfg(feature = "server")]
pub use crate::peers::{Keeping, PeerHeartbeat, Peers, PeersHandle};
#[cfg(feature = "server")]
pub use crate::projection::{Instance, KvMeta, Projection, Token, Tokens};
#[cfg(feature = "server")]
pub use crate::respond::{
    MIN_REVISION_WAIT, REVISION_HEADER, log_error, min_revision, open_error, resolve_at,
    value_error,
};
#[cfg(feature = "server")]
pub use crate::tokens::NewSecret;
#[cfg(feature = "server")]
pub use crate::upstream::{Refusal, UpstreamPolicy};
