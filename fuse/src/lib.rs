//! Fuse: Draft's ingress router.
//!
//! The route table is a pure function of Blueprint's registry ([`RouteTable::build`]), rebuilt
//! whenever the registry changes, so a registration, deregistration or lease expiry changes
//! routing within milliseconds and without a restart. The proxy forwards HTTP and WebSocket
//! requests to passing instances by host and longest path prefix, round robin. See DESIGN.md §4.
//!
//! What keeps the ingress from being turned against its node: the loop guard
//! ([`hop`]: `Draft-Hop`, 508), the path check ([`path`]: 400 for ambiguous paths), the edge
//! headers ([`forwarding`]: hop-by-hop stripped, forwarding headers set by Fuse), and the
//! connector, which dials only what Blueprint's upstream policy allows.

mod api;
mod connector;
pub mod forwarding;
pub mod hop;
mod metrics;
pub mod path;
mod proxy;
mod route;
mod table;

pub use crate::api::router;
pub use crate::metrics::Metrics;
pub use crate::proxy::{Fuse, FuseConfig, ingress};
pub use crate::route::{normalize_host, prefix_matches, upstream_path};
pub use crate::table::{Backend, DEFAULT_TIMEOUT, Explanation, RouteEntry, RouteTable};
