//! [`StorageFailure`]: why the log stopped taking writes, and the pure classification of an
//! engine error into a [`FailureCause`].
//!
//! The log turns read-only at the first write to disk that fails (a group commit, a trim, an
//! fsync), and stays read-only until it is reopened. Sticky on purpose: fjall refuses every
//! later write once a write or fsync failed ("poisoned"), and after a failed fsync nobody
//! knows what the file holds (Linux may drop the dirty pages and report the next fsync as a
//! success), so retrying could acknowledge data that is already lost. PostgreSQL makes the
//! same choice and stops at a failed fsync. Reads go on: what was acknowledged before the
//! failure is on disk.

use std::io::ErrorKind;

/// What kind of failure turned the log read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureCause {
    /// The disk (or the user's quota) is full: `ENOSPC`, `EDQUOT`. Free space, then restart.
    DiskFull,
    /// The disk failed a write or an fsync (`EIO` and the like). Check the disk, then restart.
    Io,
    /// The storage engine had already stopped taking writes (a background flush or compaction
    /// failed), or failed in a way that names no I/O error. The node's log has the first error.
    Engine,
}

impl FailureCause {
    /// Classifies an error of the storage engine.
    #[must_use]
    pub(crate) fn of(e: &fjall::Error) -> Self {
        match e {
            fjall::Error::Io(io) | fjall::Error::Storage(fjall::LsmError::Io(io)) => {
                Self::of_io(io.kind())
            }
            _ => Self::Engine,
        }
    }

    /// Classifies an I/O error by its kind.
    #[must_use]
    pub const fn of_io(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Self::DiskFull,
            _ => Self::Io,
        }
    }

    /// The cause as a stable `snake_case` name: `disk_full`, `io` or `engine`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DiskFull => "disk_full",
            Self::Io => "io",
            Self::Engine => "engine",
        }
    }

    /// The cause in words, for people (no paths, no engine internals).
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::DiskFull => "the disk is full",
            Self::Io => "the disk failed a write or an fsync",
            Self::Engine => "the storage engine stopped taking writes",
        }
    }
}

/// The first write to disk that failed: the log is read-only from then on, until reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFailure {
    op: &'static str,
    cause: FailureCause,
    detail: String,
}

impl StorageFailure {
    /// The failure of `op` with the engine's error `e`.
    pub(crate) fn new(op: &'static str, e: &fjall::Error) -> Self {
        Self {
            op,
            cause: FailureCause::of(e),
            detail: format!("{e}"),
        }
    }

    /// The failure of `op` with the I/O error `e`: for another backend's failed writes, and
    /// for tests of what a node answers once its log is read-only.
    #[must_use]
    pub fn from_io(op: &'static str, e: &std::io::Error) -> Self {
        Self {
            op,
            cause: FailureCause::of_io(e.kind()),
            detail: e.to_string(),
        }
    }

    /// What the log was doing (`append`, `trim`, `fsync`).
    #[must_use]
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// What kind of failure it was.
    #[must_use]
    pub fn cause(&self) -> FailureCause {
        self.cause
    }

    /// The engine's own error, for the node's log (it may name files).
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// What a client may be told: the cause and what the operator must do, without the
    /// engine's error. For example `the disk is full (during append): the node is read-only
    /// until it is restarted; free space (or fix the disk), then restart it`.
    #[must_use]
    pub fn reason(&self) -> String {
        format!(
            "{} (during {}): the node is read-only until it is restarted; free space (or fix \
             the disk), then restart it",
            self.cause.describe(),
            self.op
        )
    }
}

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {} ({})",
            self.op,
            self.cause.describe(),
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: ErrorKind) -> fjall::Error {
        fjall::Error::Io(std::io::Error::from(kind))
    }

    #[test]
    fn enospc_and_edquot_are_a_full_disk() {
        // What the kernel returns, as std reads it.
        let enospc = std::io::Error::from_raw_os_error(28);
        assert_eq!(
            FailureCause::of(&fjall::Error::Io(enospc)),
            FailureCause::DiskFull
        );
        assert_eq!(
            FailureCause::of(&io(ErrorKind::QuotaExceeded)),
            FailureCause::DiskFull
        );
        let wrapped = fjall::Error::Storage(fjall::LsmError::Io(ErrorKind::StorageFull.into()));
        assert_eq!(FailureCause::of(&wrapped), FailureCause::DiskFull);
    }

    #[test]
    fn eio_is_a_failed_write_and_poisoned_is_the_engine() {
        let eio = std::io::Error::from_raw_os_error(5);
        assert_eq!(FailureCause::of(&fjall::Error::Io(eio)), FailureCause::Io);
        assert_eq!(
            FailureCause::of(&fjall::Error::Poisoned),
            FailureCause::Engine
        );
        assert_eq!(
            FailureCause::of(&fjall::Error::Unrecoverable),
            FailureCause::Engine
        );
    }

    #[test]
    fn the_reason_names_the_cause_and_the_remedy_but_not_the_engine_error() {
        let failure = StorageFailure::new("append", &io(ErrorKind::StorageFull));
        assert_eq!(failure.op(), "append");
        assert_eq!(failure.cause(), FailureCause::DiskFull);
        let reason = failure.reason();
        assert!(
            reason.starts_with("the disk is full (during append)"),
            "{reason}"
        );
        assert!(reason.contains("restart"), "{reason}");
        assert!(!reason.contains("FjallError"), "{reason}");
        assert!(failure.to_string().contains("FjallError"), "{failure}");
    }
}
