//! `dctl` as a library: [`node`], a whole Draft node (Catalyst, Blueprint and Fuse over one
//! `LogBackend`, the operations endpoints, two listeners, one shutdown), which `dctl up`
//! runs and tests can start in-process; and [`run`], the supervisor behind `dctl run` (a
//! manifest's services beside a node, each in its own process group).
//!
//! ```no_run
//! # async fn run() -> dctl::Result<()> {
//! use dctl::node::{Layer, Node, Settings};
//!
//! let settings = Settings::resolve(Layer::load(None)?, dctl::node::host_name)?;
//! let node = Node::open(settings).await?;
//! println!("api on {:?}", node.api_addr());
//! node.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod error;
pub mod node;
pub mod run;

pub use crate::error::{Error, Result};
