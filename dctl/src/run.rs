//! `dctl run`'s supervisor, as a library: a [`Manifest`] of services (and the node's
//! settings), started beside a node and stopped in order, like foreman or docker-compose.
//!
//! The pure core is [`manifest`] (parse and check), [`restart`] (the back-off) and [`prefix`]
//! (labels and lines).

pub mod manifest;
pub mod prefix;
pub mod restart;

pub use crate::run::manifest::{Manifest, Program, Service};
pub use crate::run::restart::{Backoff, Decision, Restart};
