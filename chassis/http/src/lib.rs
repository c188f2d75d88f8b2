//! `draft-http`: what every Draft process serves HTTP with.
//!
//! The node's services (Catalyst, Blueprint, Fuse) and, from Chassis on, every service built
//! on Draft share one HTTP layer, so that errors, limits, shutdown and query parameters look
//! and behave the same everywhere:
//!
//! - [`ApiError`] with a stable [`Code`], answered as the JSON body of DESIGN.md §4
//!   ([`ErrorBody`], which clients parse; feature `client` needs only serde);
//! - [`serve`]: the accept loop with its [`Limits`] (header, body and request deadlines,
//!   caps on connections, on connections per client address and on WebSockets, back-off when
//!   out of file descriptors);
//! - [`Shutdown`]: one token for a whole process, and a drain with a deadline;
//! - [`Query`], [`At`], [`Start`] and [`rfc3339`]: the query parameters every service takes;
//! - [`ws`]: WebSocket limits, close codes and the one socket loop;
//! - [`Actor`]: who is asking, recorded in the audit trail;
//! - [`auth`]: tokens and policies, and `authorize`, the one decision of what a request may do;
//! - [`Cidr`]: a block of IP addresses, for settings that name networks;
//! - [`LabelValue`]: a Prometheus label value, escaped.
//!
//! ```
//! # #[cfg(feature = "server")] {
//! use draft_http::{ApiError, Code};
//!
//! let e = ApiError::new(Code::InvalidParameter, "limit must be 1..=10000");
//! assert_eq!(e.status().as_u16(), 400);
//! assert_eq!(e.code().as_str(), "invalid_parameter");
//! # }
//! ```

pub mod auth;
mod base64;
mod body;
mod cidr;
mod client_error;
mod prometheus;

#[cfg(feature = "server")]
mod actor;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod listener;
#[cfg(feature = "server")]
mod query;
#[cfg(feature = "server")]
mod shutdown;
#[cfg(feature = "server")]
mod time;
#[cfg(feature = "server")]
mod tls;
#[cfg(feature = "server")]
pub mod ws;

pub use crate::base64::base64_encode;
pub use crate::body::{ErrorBody, ErrorDetail};
pub use crate::cidr::{Cidr, CidrError};
pub use crate::client_error::ClientError;
pub use crate::prometheus::LabelValue;

#[cfg(feature = "server")]
pub use crate::{
    actor::Actor,
    error::{ApiError, Code, log_server_errors},
    listener::{Deadline, Limits, Role, is_websocket_upgrade, serve, serve_tls},
    query::{At, Query, Start},
    shutdown::{DrainGuard, Shutdown},
    time::{parse_rfc3339, rfc3339},
    tls::{Tls, TlsError},
};
