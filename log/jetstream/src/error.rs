//! The JetStream backend's one error type, and how it reaches Draft as a `draft_log::Error`.

use draft_log::Offset;

/// A `Result` whose error defaults to the backend's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to JetStream.
///
/// Each variant says whether it is *fatal* (the node cannot go on with this backend), *bad
/// input* (the caller must change the request) or *retryable*.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fatal at start: no server of `urls` could be reached, or the credentials were refused
    /// or could not be read.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The servers tried.
        urls: String,
        /// Why.
        reason: String,
    },

    /// Retryable: JetStream did not answer `op` on `stream` (no responders or a timeout, as
    /// during a leader election, or the cluster lost its quorum) until the deadline. An
    /// append that reports it may have landed: retry it with the same dedup ids.
    #[error("JetStream unavailable for {op} on {stream} after {waited_ms} ms: {reason}")]
    Unavailable {
        /// What the backend was doing.
        op: &'static str,
        /// The stream.
        stream: String,
        /// How long it retried.
        waited_ms: u64,
        /// The last failure.
        reason: String,
    },

    /// Bad input or configuration: JetStream refused `op` with an API error.
    #[error("JetStream refused {op} on {stream}: {description} (code {code}, error {err_code})")]
    Refused {
        /// What the backend was doing.
        op: &'static str,
        /// The stream.
        stream: String,
        /// The status-like code (400, 404, 503…).
        code: u16,
        /// JetStream's error code (for example 10071: wrong last sequence).
        err_code: u32,
        /// JetStream's description.
        description: String,
    },

    /// Retryable after re-reading: compare-and-set found the partition at `next`, not
    /// `expected`.
    #[error("partition {partition} is at offset {next}, not at the expected {expected}")]
    Conflict {
        /// The partition.
        partition: String,
        /// What the caller expected.
        expected: Offset,
        /// The partition's next offset.
        next: Offset,
    },

    /// Fatal for the message: a stored message is not a record body this version wrote, or
    /// its checksum does not match. Never returned as data.
    #[error("corrupt record in partition {partition} at offset {offset}: {reason}")]
    Corrupt {
        /// The partition.
        partition: String,
        /// The record's offset.
        offset: Offset,
        /// What is wrong.
        reason: String,
    },

    /// Fatal: a reply from JetStream was not what the protocol says (a server too old, or
    /// something else answering on the subject).
    #[error("unexpected reply from JetStream to {op}: {reason}")]
    Protocol {
        /// What the backend was doing.
        op: &'static str,
        /// What was wrong with the reply.
        reason: String,
    },

    /// Fatal: the stream Draft would use for a partition holds another partition, or was not
    /// made by Draft (its metadata says otherwise).
    #[error("stream {stream} holds {found:?}, not partition {partition}")]
    ForeignStream {
        /// The stream.
        stream: String,
        /// The partition Draft wanted.
        partition: String,
        /// What its metadata names.
        found: Option<String>,
    },

    /// Bad input: the operation is not possible on this partition with this backend (for
    /// example a trim of a stream that denies purges).
    #[error("{op} is not supported on partition {partition}: {reason}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The partition.
        partition: String,
        /// Why.
        reason: &'static str,
    },

    /// Retryable: a NATS operation outside the log's streams failed: `op` on `target` (the
    /// keeper's lock bucket, the heartbeat subject), for example a timeout or a lost
    /// connection. A keeper that sees it on a renewal has stepped down.
    #[error("{op} on {target} failed: {reason}")]
    Coordination {
        /// What was being done.
        op: &'static str,
        /// The bucket or subject.
        target: String,
        /// Why.
        reason: String,
    },

    /// Fatal (a configuration change is needed): `what` cannot be used as configured, for
    /// example a keeper TTL below the minimum, or a lock bucket whose entries expire sooner
    /// than this node's TTL (another node made it with a shorter one).
    #[error("{what} is misconfigured: {reason}")]
    Misconfigured {
        /// The setting or the bucket.
        what: String,
        /// What is wrong.
        reason: String,
    },

    /// Bad input: a message of `size` bytes is larger than the `max` this kind of message
    /// may be (`what`, such as a heartbeat).
    #[error("{what} of {size} bytes is larger than {max} bytes")]
    TooLarge {
        /// The kind of message.
        what: &'static str,
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// A `draft_log` error found by this backend (bad input such as a record too large, a
    /// duplicate mismatch or a tail gap).
    #[error(transparent)]
    Log(#[from] draft_log::Error),
}

impl Error {
    /// Whether the backend cannot go on (a restart or a configuration change is needed).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Corrupt { .. }
            | Self::Protocol { .. }
            | Self::ForeignStream { .. }
            | Self::Misconfigured { .. } => true,
            Self::Log(e) => e.is_fatal(),
            _ => false,
        }
    }

    /// Whether retrying later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Conflict { .. } | Self::Coordination { .. } => true,
            Self::Log(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<Error> for draft_log::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Log(e) => e,
            Error::Conflict {
                partition,
                expected,
                next,
            } => Self::Conflict {
                partition,
                expected,
                next,
            },
            Error::Corrupt {
                partition,
                offset,
                reason,
            } => Self::Corrupt {
                partition,
                offset,
                reason,
            },
            e @ Error::Unavailable { .. } => Self::Unavailable(e.to_string()),
            e => Self::Backend(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailability_and_conflicts_stay_retryable_in_draft_terms() {
        let unavailable = Error::Unavailable {
            op: "append",
            stream: "DRAFT_a".into(),
            waited_ms: 5000,
            reason: "no responders".into(),
        };
        assert!(unavailable.is_retryable() && !unavailable.is_fatal());
        let e = draft_log::Error::from(unavailable);
        assert!(matches!(e, draft_log::Error::Unavailable(_)) && e.is_retryable());
        let conflict = Error::Conflict {
            partition: "a".into(),
            expected: Offset(1),
            next: Offset(2),
        };
        assert!(matches!(
            draft_log::Error::from(conflict),
            draft_log::Error::Conflict {
                next: Offset(2),
                ..
            }
        ));
        let corrupt = Error::Corrupt {
            partition: "a".into(),
            offset: Offset(3),
            reason: "checksum mismatch".into(),
        };
        assert!(draft_log::Error::from(corrupt).is_fatal());
    }
}
