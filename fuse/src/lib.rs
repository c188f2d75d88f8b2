//! Fuse: Draft's ingress router.
//!
//! The route table is a pure function of Blueprint's registry ([`RouteTable::build`]), rebuilt
//! whenever the registry changes, so a registration, deregistration or lease expiry changes
//! routing within milliseconds and without a restart. The proxy forwards HTTP and WebSocket
//! requests to passing instances by host and longest path prefix, round robin. See DESIGN.md §4.

mod api;
mod metrics;
mod proxy;
mod route;
mod table;

pub use crate::api::router;
pub use crate::metrics::Metrics;
pub use crate::proxy::{Fuse, ingress};
pub use crate::route::{normalize_host, prefix_matches, upstream_path};
pub use crate::table::{Backend, DEFAULT_TIMEOUT, Explanation, RouteEntry, RouteTable};
