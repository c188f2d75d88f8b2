//! `draft-log-jetstream`: Draft's log on a NATS JetStream cluster, for running Draft on more
//! than one machine without consensus of its own.
//!
//! [`JetStream`] implements [`draft_log::LogBackend`]:
//!
//! - **Mapping**: one stream per partition (`_draft` included), named by [`stream_name`] with
//!   the partition's name in its metadata; offset = sequence − 1, dense because streams deny
//!   deletes and are never deleted or recreated. Streams are created on first append with
//!   file storage, the configured replicas, `allow_direct` and `allow_atomic`.
//! - **Appends**: the key, the record's place in its append and a CRC32 travel in the
//!   message body ([`body`]). Several records are one atomic batch publish (ADR-50), at most
//!   [`MAX_BATCH`]; appends to one partition that arrive together share one batch (group
//!   commit). Dedup ids become `Nats-Msg-Id`; compare-and-set is
//!   `Nats-Expected-Last-Sequence`. No responders or timeouts (an election) are retried
//!   until the deadline, then answered [`draft_log::Error::Unavailable`].
//! - **Reads**: batch direct get checked against the leader's head, time lookups by message
//!   get with `start_time`, tails by ordered consumers, heads from stream info, retention as
//!   the stream's `max_age`/`max_bytes`.
//!
//! Several nodes on one cluster also share two things outside the log: the lease keeper's
//! election ([`keeper`]: [`KeeperLock`] on a KV bucket, [`Keeper`] to run it) and the
//! instances' heartbeats ([`heartbeats`]: [`HeartbeatBus`] over core NATS).
//!
//! The `testing` feature adds [`testing`]: a real three-server cluster and the harness that
//! runs `draft_log::testing`'s conformance suite on it.

mod api;
mod append;
mod backend;
pub mod body;
mod config;
mod error;
mod group;
pub mod heartbeats;
pub mod keeper;
mod locate;
mod name;
mod read;
mod stream;
mod tail;
mod trim;

#[cfg(feature = "testing")]
pub mod testing;

pub use crate::append::{MAX_APPEND_BYTES, MAX_BATCH};
pub use crate::backend::JetStream;
pub use crate::config::{
    ACK_ALLOWANCE_PER_MIB, DEFAULT_ACK_TIMEOUT, DEFAULT_UNAVAILABLE_AFTER, JetStreamConfig,
};
pub use crate::error::{Error, Result};
pub use crate::group::GroupCommit;
pub use crate::heartbeats::{
    HEARTBEAT_SUBJECT, Heartbeat, HeartbeatBus, Heartbeats, MAX_HEARTBEAT_BYTES, SharedHeartbeat,
};
pub use crate::keeper::{
    KEEPER_BUCKET, KEEPER_KEY, Keeper, KeeperLock, MAX_NODE_NAME, MIN_KEEPER_TTL, Term,
};
pub use crate::name::{
    MAX_STREAM_NAME, PARTITION_KEY, STREAM_PREFIX, SUBJECT_PREFIX, is_valid_stream_name,
    stream_name, subject,
};
