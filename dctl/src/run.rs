//! `dctl run`'s supervisor, as a library: a [`Manifest`] of services (and the node's
//! settings), started beside a node and stopped in order, like foreman or docker-compose.
//!
//! The pure core is [`manifest`] (parse and check), [`restart`] (the back-off) and [`prefix`]
//! (labels and lines); [`supervise`] is the I/O edge: processes, process groups, signals and
//! the prefixed output.

mod exit;
mod group;
mod locate;
pub mod manifest;
pub mod node;
mod output;
pub mod prefix;
pub mod restart;
mod signals;
mod supervisor;

pub use crate::run::manifest::{Manifest, Program, Service};
pub use crate::run::restart::{Backoff, Decision, Restart};
pub use crate::run::supervisor::{NodePlan, Outcome, Plan, supervise};
