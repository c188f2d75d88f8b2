//! The log's one error type.

use std::path::PathBuf;
use std::sync::Arc;

use crate::failure::StorageFailure;
use crate::offset::Offset;

/// A `Result` whose error defaults to the log's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log.
///
/// Each variant says whether it is *fatal* (the log must be reopened, and perhaps repaired),
/// *bad input* (the caller must change the request) or *retryable*.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: the partition name breaks `[a-z0-9_][a-z0-9._-]{0,127}`.
    #[error("invalid partition name {name:?}: {reason}")]
    InvalidPartitionName {
        /// The name that was given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// Fatal: the storage engine failed during `op` (opening the log, or reading). A failed
    /// *write* is [`Error::ReadOnly`].
    #[error("storage error during {op}: {source}")]
    Storage {
        /// What the log was doing.
        op: &'static str,
        /// The engine's error, shared because one failed group commit fails every waiter.
        source: Arc<fjall::Error>,
    },

    /// Bad input (or a second node on the same folder): another process holds the data
    /// directory's lock.
    #[error("the log at {path} is in use by another process (one process per data directory)")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },

    /// Fatal: a stored record failed validation (rkyv layout or checksum). It is never
    /// returned as data.
    #[error("corrupt record in partition {partition} at offset {offset}: {reason}")]
    Corrupt {
        /// The partition the record is in.
        partition: String,
        /// Its offset.
        offset: Offset,
        /// What failed.
        reason: String,
    },

    /// Fatal: the log's metadata disagrees with its records, found when opening.
    #[error("inconsistent log metadata for partition {partition}: {reason}")]
    Inconsistent {
        /// The partition concerned.
        partition: String,
        /// What disagrees.
        reason: String,
    },

    /// Fatal: the data directory was written in a storage format this version does not know
    /// (by a newer version of Draft).
    #[error(
        "the data directory holds storage format {found}; this version reads up to {supported}"
    )]
    UnsupportedFormat {
        /// The format the directory says it holds.
        found: u32,
        /// The newest format this version reads.
        supported: u32,
    },

    /// Bad input: one append is larger than the log accepts in one batch.
    #[error("append of {bytes} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The size of the append.
        bytes: u64,
        /// The configured limit.
        limit: u64,
    },

    /// Bad input: one append has more records than the backend takes in one atomic append
    /// (see [`AppendLimits`](crate::AppendLimits)).
    #[error("append of {count} records is more than the limit of {limit} records in one append")]
    TooMany {
        /// How many records the append has.
        count: usize,
        /// The backend's limit.
        limit: usize,
    },

    /// Retryable: an append made with `append_expecting` found the partition at another next
    /// offset than the caller expected (someone else appended meanwhile). Nothing was
    /// appended; the caller may re-read from `expected` and retry at `next`.
    #[error("partition {partition} is at offset {next}, not at the expected {expected}")]
    Conflict {
        /// The partition.
        partition: String,
        /// The next offset the caller expected.
        expected: Offset,
        /// The partition's actual next offset.
        next: Offset,
    },

    /// Bad input: an append mixes records whose dedup ids were appended before (the first at
    /// `offset`) with others, or repeats them out of their order, so it is neither new nor a
    /// retry. Nothing was appended.
    #[error(
        "append to {partition} repeats some dedup ids of an earlier append (at offset {offset}) but not all of it, in order"
    )]
    DuplicateMismatch {
        /// The partition.
        partition: String,
        /// Where the first repeated id was appended.
        offset: Offset,
    },

    /// Retryable: the backend cannot be reached or has no leader for the partition right now
    /// (a clustered engine during an election), and stayed so until the backend's deadline.
    /// An append that reports it may or may not have landed: retry it with the same dedup ids
    /// to land it exactly once.
    #[error("the log is unavailable: {0}")]
    Unavailable(String),

    /// Fatal until the log is reopened: a write to disk failed (the disk is full, or a write
    /// or an fsync failed), in this call or an earlier one, and the log is read-only from the
    /// first such failure on (see [`StorageFailure`] for why it stays so). Reads go on. The
    /// failure is always the first one, whatever call reports it.
    #[error("the log is read-only: {0}")]
    ReadOnly(StorageFailure),

    /// Retryable by reopening: the log has been closed, or its writer stopped.
    #[error("the log is closed")]
    Closed,

    /// Depends on the backend: an error from a backend other than fjall (for example a
    /// clustered engine), described by that backend.
    #[error("log backend error: {0}")]
    Backend(String),
}

impl Error {
    /// Wraps a fjall error with the operation that failed, turning a held lock into
    /// [`Error::Locked`].
    pub(crate) fn storage(op: &'static str, source: fjall::Error) -> Self {
        Self::Storage {
            op,
            source: Arc::new(source),
        }
    }

    /// Whether retrying the same call later, without reopening, may succeed: a
    /// [`Error::Conflict`] (after re-reading) or [`Error::Unavailable`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Unavailable(_))
    }

    /// Whether the log must be reopened (or repaired) before it can be used again.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Storage { .. }
                | Self::ReadOnly(_)
                | Self::Corrupt { .. }
                | Self::Inconsistent { .. }
                | Self::UnsupportedFormat { .. }
        )
    }

    /// The storage failure that made the log read-only, if this error reports one: the node
    /// must stop taking writes (and answer them with 503) until it is restarted.
    #[must_use]
    pub fn storage_failure(&self) -> Option<&StorageFailure> {
        match self {
            Self::ReadOnly(failure) => Some(failure),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failed_write_is_a_storage_failure() {
        let full = StorageFailure::new(
            "append",
            &fjall::Error::Io(std::io::ErrorKind::StorageFull.into()),
        );
        let read_only = Error::ReadOnly(full.clone());
        assert_eq!(read_only.storage_failure(), Some(&full));
        assert!(read_only.is_fatal());
        let read = Error::storage(
            "read records",
            fjall::Error::Io(std::io::ErrorKind::Other.into()),
        );
        assert_eq!(
            read.storage_failure(),
            None,
            "a failed read leaves the log writable"
        );
        assert_eq!(Error::Closed.storage_failure(), None);
        let too_large = Error::TooLarge { bytes: 2, limit: 1 };
        assert_eq!(too_large.storage_failure(), None);
    }
}
