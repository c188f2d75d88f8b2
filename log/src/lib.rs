//! `draft-log`: Draft's durable, partitioned, append-only log.
//!
//! Every registration, configuration change and CloudEvent in Draft is a record in this log
//! (DESIGN.md §2). A **partition** is a named, ordered sequence of records whose offsets
//! start at 0 and are dense, across crashes too. Records are stored in fjall, encoded with
//! rkyv and checksummed (the records of one append share fjall entries: frames of up to
//! 256 KiB); an append is acknowledged only once it is fsync'ed, and concurrent appends share
//! one fsync (group commit).
//!
//! The crate is synchronous at its core, like fjall: one writer thread owns the write path,
//! readers read directly. Async code appends with [`Log::append`] (a future that resolves
//! once the records are durable), follows a partition with [`Log::tail`], and reaches
//! everything through the [`LogBackend`] trait, the seam for other engines.
//!
//! CloudEvents are stored under the record key [`event_key`] makes (`type \0 source \0 id`),
//! the one format that the broker and the registry both read.
//!
//! ```
//! # fn main() -> Result<(), draft_log::Error> {
//! use draft_log::{Log, LogConfig, NewRecord, Offset, PartitionName};
//!
//! let dir = tempfile::tempdir().expect("temp dir");
//! let log = Log::open(LogConfig::new(dir.path()))?;
//! let events = PartitionName::new("events")?;
//! let ack = log.append_blocking(&events, vec![NewRecord::new("hello")])?;
//! assert_eq!(ack.first, Offset(0));
//! let head = log.head(&events).expect("exists");
//! assert_eq!(head.count(), 1);
//! # Ok(()) }
//! ```

// The core is synchronous, like fjall: its writer thread times group commits with the
// standard clock, which is right there (`clippy.toml` bans it only for async code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod backend;
mod background;
mod codec;
mod config;
mod dedup;
mod error;
mod event_key;
mod failure;
mod frame;
mod limits;
mod log;
mod offset;
mod partition;
mod record;
mod store;
mod tail;
mod writer;

#[cfg(feature = "testing")]
pub mod testing;

pub use crate::backend::LogBackend;
pub use crate::config::{Durability, LogConfig, Retention};
pub use crate::error::{Error, Result};
pub use crate::event_key::{event_key, event_key_source_and_id, split_event_key};
pub use crate::failure::{FailureCause, StorageFailure};
pub use crate::limits::AppendLimits;
pub use crate::log::Log;
pub use crate::record::{
    AppendAck, MAX_PARTITION_NAME_LEN, NewRecord, Offset, PartitionHead, PartitionName, Record,
    Timestamp,
};
pub use crate::tail::RecordStream;
