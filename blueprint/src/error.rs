//! Blueprint's errors: why it could not open (or rebuild a past state), why a write to the
//! control plane was refused, why a key's value could not be read from the log, and why a
//! name or key was refused.
//!
//! Each variant says whether it is *fatal* (the node must be mended and Blueprint opened
//! again), *bad input* (the caller must change the request) or *retryable*.

use std::path::PathBuf;

/// Errors opening Blueprint, or rebuilding its state as of a past revision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Fatal or retryable, as the log error says: reading the control partition failed.
    #[error("cannot replay the control log: {0}")]
    Log(#[from] draft_log::Error),
    /// Fatal: the checkpoint folder cannot be used (created, listed or read).
    #[error("checkpoints in {path}: {source}")]
    Checkpoints {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Fatal: a stored control event does not decode, so replay cannot go past it.
    #[error("control event at revision {revision} is not valid: {reason}")]
    BadEvent {
        /// Its revision.
        revision: u64,
        /// Why.
        reason: String,
    },
}

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
    /// Conflict: the registration lists a route that another service owns (see
    /// [`ownership`](crate::ownership)).
    #[error("route {route} is owned by service {owner}")]
    RouteOwned {
        /// The route, as `host/prefix` or `/prefix (any host)`.
        route: String,
        /// The service that owns it.
        owner: String,
    },
    /// Conflict: a live token already has this name (or this secret).
    #[error("already exists")]
    Exists,
    /// Fatal or retryable, as the log error says: the append failed.
    #[error("log error: {0}")]
    Log(#[from] draft_log::Error),
    /// Fatal for the request, and for the node if it lasts: the operating system gave no
    /// randomness for a token's secret.
    #[error("no randomness for a secret: {0}")]
    NoRandomness(String),
    /// Bad input for the store's state: a put would take the KV store over its most keys or
    /// bytes (the message says which). Not fatal: deletes make room.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A caller's mistake: an event that Blueprint does not record for another part of the
    /// node (its type is not `io.draft.*`, or is in one of Blueprint's own families).
    #[error("not recorded: {0}")]
    NotRecorded(String),
}

/// A key's value could not be read from the control log, where it is the put at the key's
/// revision (see [`KvMeta`](crate::KvMeta)). Never answered with a wrong value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Fatal or retryable, as the log error says: reading the record failed.
    #[error("cannot read the value of key {key:?} (revision {revision}): {source}")]
    Log {
        /// The key.
        key: String,
        /// The revision of its put.
        revision: u64,
        /// Why.
        source: draft_log::Error,
    },
    /// Fatal: the control log no longer holds the put (its start was trimmed, or the log
    /// lost it). `_draft` keeps everything unless something trimmed it outside the API.
    #[error(
        "the control log no longer holds revision {revision}, the put of key {key:?}: its value is lost"
    )]
    Missing {
        /// The key.
        key: String,
        /// The revision of its put.
        revision: u64,
    },
    /// Fatal: the record at the revision is not that key's put of that many bytes, so the
    /// log and the projection disagree.
    #[error("revision {revision} of the control log is not the put of key {key:?}: {found}")]
    Mismatch {
        /// The key.
        key: String,
        /// The revision of its put.
        revision: u64,
        /// What the record is instead.
        found: String,
    },
}

/// Which kind of name a [`NameError`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A service name.
    Service,
    /// An instance id.
    Instance,
    /// A KV key.
    Key,
    /// A token's name.
    Token,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Service => "service name",
            Self::Instance => "instance name",
            Self::Key => "key",
            Self::Token => "token name",
        })
    }
}

/// Bad input: a service name, instance id or KV key that breaks its rule. The message is the
/// one the HTTP API answers with, for example
/// `service name "a b" must be 1-128 of [A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} must be {rule}")]
pub struct NameError {
    kind: NameKind,
    value: String,
    rule: &'static str,
}

impl NameError {
    /// `value`, refused as a `kind` for breaking `rule`.
    pub(crate) fn new(kind: NameKind, value: impl Into<String>, rule: &'static str) -> Self {
        Self {
            kind,
            value: value.into(),
            rule,
        }
    }

    /// Which kind of name was refused.
    #[must_use]
    pub fn kind(&self) -> NameKind {
        self.kind
    }

    /// The refused text.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The rule it breaks, in words.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}
