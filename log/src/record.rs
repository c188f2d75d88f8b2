//! The log's vocabulary: partition names, offsets, timestamps and records.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::{Error, Result};
pub use crate::offset::Offset;

/// The longest partition name, in bytes (DESIGN.md §2: `[a-z0-9][a-z0-9._-]{0,127}`).
pub const MAX_PARTITION_NAME_LEN: usize = 128;

/// A validated partition name: `[a-z0-9_][a-z0-9._-]{0,127}`.
///
/// Names starting with `_` are reserved for Draft itself (for example the control partition
/// `_draft`); the log stores them like any other, and the services refuse them from users
/// (see [`PartitionName::is_reserved`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionName(String);

impl PartitionName {
    /// Validates `name` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidPartitionName`] when the name is empty, too long or has a character
    /// outside `[a-z0-9._-]` (or starts with `.` or `-`).
    ///
    /// # Examples
    /// ```
    /// use draft_log::PartitionName;
    /// assert!(PartitionName::new("orders.v1").is_ok());
    /// assert!(PartitionName::new("_draft").unwrap().is_reserved());
    /// assert!(PartitionName::new("Orders").is_err());
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match check_name(&name) {
            Ok(()) => Ok(Self(name)),
            Err(reason) => Err(Error::InvalidPartitionName { name, reason }),
        }
    }

    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is reserved for Draft (starts with `_`).
    #[must_use]
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with('_')
    }
}

fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err("a partition name cannot be empty");
    };
    if bytes.len() > MAX_PARTITION_NAME_LEN {
        return Err("a partition name has at most 128 characters");
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit() || first == b'_') {
        return Err("a partition name starts with a lowercase letter, a digit or '_'");
    }
    let valid = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b);
    if !bytes.iter().all(valid) {
        return Err("a partition name has only lowercase letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

impl TryFrom<&str> for PartitionName {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl std::str::FromStr for PartitionName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl fmt::Display for PartitionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PartitionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for PartitionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A point in time as nanoseconds since the Unix epoch (the broker's clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time of this machine's clock.
    #[must_use]
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// A timestamp from nanoseconds since the Unix epoch.
    #[must_use]
    pub fn from_unix_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    #[must_use]
    pub fn as_unix_nanos(self) -> u64 {
        self.0
    }

    /// This timestamp moved back by `d`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        UNIX_EPOCH + Duration::from_nanos(t.0)
    }
}

/// A record to append: an optional key, the payload (for Draft, an encoded CloudEvent) and an
/// optional dedup id.
///
/// An append is made idempotent by giving each of its records a dedup id: an append whose
/// records were all appended before with the same ids, within the backend's duplicate
/// window, stores nothing and is answered with the first append's offsets. So an append whose
/// outcome is unknown (its acknowledgement was lost, its future dropped) can be retried and
/// lands exactly once. The window is two minutes for both backends (fjall keeps it in memory,
/// JetStream as the stream's duplicate window, shared by every node). An append mixing ids
/// seen and unseen is refused ([`Error::DuplicateMismatch`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// An optional key (for example a CloudEvent's `source`/`id`), stored with the record.
    pub key: Option<Bytes>,
    /// The record's bytes.
    pub payload: Bytes,
    /// An optional id that makes appending this record idempotent (not stored as data: a
    /// record read back has its key and payload only). See [`NewRecord`].
    pub dedup_id: Option<Bytes>,
}

impl NewRecord {
    /// A record with a payload and no key.
    #[must_use]
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            key: None,
            payload: payload.into(),
            dedup_id: None,
        }
    }

    /// Sets the record's dedup id (see [`NewRecord`]).
    #[must_use]
    pub fn with_dedup_id(mut self, id: impl Into<Bytes>) -> Self {
        self.dedup_id = Some(id.into());
        self
    }

    /// Sets the record's key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// A record read back from the log, validated against its checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The partition it belongs to.
    pub partition: PartitionName,
    /// Its position in the partition.
    pub offset: Offset,
    /// When the log appended it (monotonic within a partition).
    pub time: Timestamp,
    /// The key it was appended with, if any.
    pub key: Option<Bytes>,
    /// The record's bytes, as appended.
    pub payload: Bytes,
}

/// What an append was assigned: the dense offsets `first..first + count` and the append time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendAck {
    /// The offset of the first record appended.
    pub first: Offset,
    /// How many records were appended.
    pub count: u64,
    /// The append time given to every record of the append.
    pub time: Timestamp,
}

impl AppendAck {
    /// The offset of every record appended, in order.
    pub fn offsets(&self) -> impl Iterator<Item = Offset> + use<> {
        (self.first.0..self.first.0 + self.count).map(Offset)
    }

    /// The offset of the last record appended (`first` for an empty append).
    #[must_use]
    pub fn last(&self) -> Offset {
        Offset(self.first.0 + self.count.saturating_sub(1))
    }
}

/// What the log knows about one partition without reading its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionHead {
    /// The partition.
    pub partition: PartitionName,
    /// The oldest offset still stored (equals `next` when retention removed everything).
    pub first: Offset,
    /// The offset the next append will get.
    pub next: Offset,
    /// Encoded bytes stored for the records `first..next`.
    pub bytes: u64,
    /// When the last record was appended, if any ever was.
    pub last_append: Option<Timestamp>,
}

impl PartitionHead {
    /// How many records are stored.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.next.0 - self.first.0
    }

    /// The offset of the newest record, if any is stored.
    #[must_use]
    pub fn last(&self) -> Option<Offset> {
        (self.count() > 0).then(|| Offset(self.next.0 - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_follow_the_design() {
        for ok in [
            "a",
            "0",
            "orders",
            "orders.v1",
            "a-b_c",
            "_draft",
            &"a".repeat(128),
        ] {
            assert!(PartitionName::new(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "A", "-a", ".a", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(PartitionName::new(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn append_ack_lists_dense_offsets() {
        let ack = AppendAck {
            first: Offset(5),
            count: 3,
            time: Timestamp::from_unix_nanos(1),
        };
        assert_eq!(
            ack.offsets().collect::<Vec<_>>(),
            vec![Offset(5), Offset(6), Offset(7)]
        );
        assert_eq!(ack.last(), Offset(7));
    }
}
