//! What the log keeps in memory about each partition.

use crate::codec::Stats;
use crate::record::{Offset, PartitionHead, PartitionName, Timestamp};

/// A partition's id (the prefix of its record keys) and its statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartState {
    pub(crate) pid: u32,
    pub(crate) stats: Stats,
}

impl PartState {
    /// A partition that was just created: nothing appended yet.
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            pid,
            stats: Stats::default(),
        }
    }

    pub(crate) fn first(&self) -> Offset {
        Offset(self.stats.first)
    }

    pub(crate) fn next(&self) -> Offset {
        Offset(self.stats.next)
    }

    /// The public view of this partition.
    pub(crate) fn head(&self, partition: &PartitionName) -> PartitionHead {
        PartitionHead {
            partition: partition.clone(),
            first: self.first(),
            next: self.next(),
            bytes: self.stats.bytes,
            last_append: (self.stats.last_time > 0)
                .then(|| Timestamp::from_unix_nanos(self.stats.last_time)),
        }
    }
}
