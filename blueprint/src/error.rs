//! Why a write to the control plane was refused.

/// A refused or failed control-plane write.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Bad input: the key, instance or service does not exist.
    #[error("not found")]
    NotFound,
    /// Conflict: `If-Match` / `If-None-Match` did not hold; `current` is the key's revision.
    #[error("precondition failed: the key is at revision {current:?}")]
    PreconditionFailed {
        /// The key's current revision (`None`: absent).
        current: Option<u64>,
    },
    /// Fatal or retryable, as the log error says: the append failed.
    #[error("log error: {0}")]
    Log(#[from] draft_log::Error),
}
