//! What every Blueprint endpoint answers with: the state `?at=` selects, the revision header,
//! and Blueprint's errors as [`ApiError`]s.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use draft_http::{ApiError, At, Code, Query};
use draft_log::Timestamp;

use crate::blueprint::Blueprint;
use crate::error::{NameError, NameKind, OpenError, ValueError, WriteError};
use crate::follower::Reached;
use crate::names::Revision;
use crate::projection::Projection;

/// The response header that says which revision an answer is as of.
pub const REVISION_HEADER: &str = "draft-revision";

/// The state a read answers from: now, or as of a past revision.
pub(crate) enum View {
    Now(Blueprint),
    At(Box<Projection>),
}

impl View {
    /// Reads the state.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Projection) -> T) -> T {
        match self {
            Self::Now(b) => b.read(f),
            Self::At(p) => f(p),
        }
    }

    /// The revision of the state.
    pub(crate) fn revision(&self) -> Option<Revision> {
        self.with(Projection::revision).map(Revision::new)
    }
}

/// Resolves `at` to the revision in force then (`None`: before the first control event). A
/// revision in the future is bad input.
///
/// # Errors
/// 400 for a future revision; the log's error if it cannot be read.
pub async fn resolve_at(blueprint: &Blueprint, at: At) -> Result<Option<Revision>, ApiError> {
    match at {
        At::Revision(rev) => {
            let current = blueprint.revision();
            if current.is_none_or(|c| rev > c.get()) {
                return Err(ApiError::invalid_parameter(format!(
                    "revision {rev} is in the future; the current revision is {}",
                    current.map_or("none".to_owned(), |c| c.to_string())
                )));
            }
            Ok(Some(Revision::new(rev)))
        }
        At::Time(nanos) => blueprint
            .revision_at_time(Timestamp::from_unix_nanos(nanos))
            .await
            .map_err(|e| log_error(&e)),
    }
}

/// The state to answer from for `?at=` (absent: now), once `?min_revision=` is reached.
pub(crate) async fn view(blueprint: &Blueprint, query: &Query) -> Result<View, ApiError> {
    min_revision(blueprint, query).await?;
    let Some(at) = query.at()? else {
        return Ok(View::Now(blueprint.clone()));
    };
    let revision = resolve_at(blueprint, at).await?;
    if revision == blueprint.revision() {
        return Ok(View::Now(blueprint.clone()));
    }
    let state = blueprint
        .state_at(revision)
        .await
        .map_err(|e| open_error(&e))?;
    Ok(View::At(Box::new(state)))
}

/// How long a read waits for its `?min_revision=` before it answers 503 `not_ready`.
pub const MIN_REVISION_WAIT: Duration = Duration::from_secs(10);

/// Waits for the read's `?min_revision=R`, if given: a read on one node of a write made on
/// another (which answered with its revision) sees that write. A revision the log does not
/// hold yet is bad input.
///
/// # Errors
/// 400 `invalid_parameter` for a malformed or future revision; 503 `not_ready` if this node
/// had not applied it within [`MIN_REVISION_WAIT`]; the log's error if its head cannot be
/// read.
pub async fn min_revision(blueprint: &Blueprint, query: &Query) -> Result<(), ApiError> {
    let Some(raw) = query.one("min_revision")? else {
        return Ok(());
    };
    let wanted: u64 = raw.parse().map_err(|_| {
        ApiError::invalid_parameter(format!(
            "min_revision must be a revision (digits), not {raw:?}"
        ))
    })?;
    match blueprint
        .reach(Revision::new(wanted), MIN_REVISION_WAIT)
        .await
        .map_err(|e| log_error(&e))?
    {
        Reached::Yes => Ok(()),
        Reached::Future { next } => Err(ApiError::invalid_parameter(format!(
            "min_revision {wanted} is in the future; the control log's next revision is {next}"
        ))),
        Reached::NotYet { applied } => Err(ApiError::new(
            Code::NotReady,
            format!(
                "this node has applied revision {}, not yet {wanted}; retry",
                applied.map_or("none".to_owned(), |a| a.to_string())
            ),
        )),
    }
}

/// The answer for a failure of the log: 503 `shutting_down` while the node stops, 503
/// `storage_failed` once a write to disk failed (the node is read-only), 503
/// `log_unavailable` while a clustered log cannot answer, 413 for an append over the log's
/// limits, otherwise a 500 that names no internals (the error goes to the
/// node's log, once, through `draft_http::log_server_errors`).
#[must_use]
pub fn log_error(e: &draft_log::Error) -> ApiError {
    match e {
        draft_log::Error::Closed => ApiError::shutting_down(),
        draft_log::Error::ReadOnly(failure) => ApiError::storage_failed(failure.reason()),
        draft_log::Error::TooLarge { bytes, limit } => ApiError::too_large(format!(
            "{bytes} bytes is over the log's limit of {limit} bytes"
        )),
        draft_log::Error::TooMany { count, limit } => ApiError::too_large(format!(
            "{count} records is over the log's limit of {limit} records in one append"
        )),
        draft_log::Error::Unavailable(reason) => ApiError::log_unavailable(reason),
        _ => ApiError::storage(e),
    }
}

/// The API error for a failure to rebuild past state.
#[must_use]
pub fn open_error(e: &OpenError) -> ApiError {
    match e {
        OpenError::Log(e) => log_error(e),
        other => ApiError::internal(
            Code::StorageError,
            "the node could not rebuild that state; see its log",
            other,
        ),
    }
}

/// The answer for a value that could not be read from the control log: as [`log_error`] if
/// reading failed; a 500 `storage_error` if the log does not hold the key's put at its
/// revision (trimmed or lost: `_draft` keeps everything unless trimmed outside the API) or
/// holds something else there. A server fault either way, never a wrong value; the details
/// go to the node's log.
#[must_use]
pub fn value_error(e: &ValueError) -> ApiError {
    match e {
        ValueError::Log { source, .. } => log_error(source),
        ValueError::Missing { key, revision } | ValueError::Mismatch { key, revision, .. } => {
            ApiError::internal(
                Code::StorageError,
                format!(
                    "the value of key {key:?} (revision {revision}) could not be read from the \
                     control log; see the node's log"
                ),
                e,
            )
        }
    }
}

/// The answer for a refused name in a request's path: 400 `invalid_key` for a key, 400
/// `invalid_parameter` for a service or instance name, with the rule it breaks.
pub(crate) fn name_error(e: &NameError) -> ApiError {
    match e.kind() {
        NameKind::Key => ApiError::new(Code::InvalidKey, e.to_string()),
        NameKind::Service | NameKind::Instance | NameKind::Token => {
            ApiError::invalid_parameter(e.to_string())
        }
    }
}

pub(crate) fn write_error(e: WriteError, what: &str) -> ApiError {
    match e {
        WriteError::NotFound => ApiError::new(Code::NotFound, format!("{what} does not exist")),
        WriteError::Exists => ApiError::new(Code::Conflict, format!("{what} already exists")),
        WriteError::QuotaExceeded(reason) => ApiError::new(Code::QuotaExceeded, reason),
        WriteError::PreconditionFailed { current } => ApiError::new(
            Code::PreconditionFailed,
            format!(
                "{what} is at revision {}; re-read it and retry with If-Match set to that",
                current.map_or("none (absent)".to_owned(), |c| c.to_string())
            ),
        ),
        WriteError::RouteOwned { route, owner } => ApiError::new(
            Code::Conflict,
            format!(
                "route {route} is owned by service {owner}; another service cannot claim it \
                 while an instance of {owner} lists it (deregistered, or registered again \
                 without it, releases it)"
            ),
        ),
        WriteError::Log(e) => log_error(&e),
        WriteError::NoRandomness(reason) => ApiError::internal(
            Code::Internal,
            format!("{what} could not be made: the node has no randomness; see its log"),
            reason,
        ),
        WriteError::NotRecorded(reason) => ApiError::internal(
            Code::Internal,
            format!("{what} could not be recorded"),
            reason,
        ),
    }
}

/// Adds the revision header to a response.
pub(crate) fn with_revision(mut response: Response, revision: Option<Revision>) -> Response {
    if let Some(rev) = revision {
        response
            .headers_mut()
            .insert(REVISION_HEADER, HeaderValue::from(rev.get()));
    }
    response
}

/// A JSON answer with a status.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

#[cfg(test)]
mod tests {
    use draft_log::StorageFailure;

    use super::*;

    #[test]
    fn a_write_refused_by_a_read_only_log_is_a_503_storage_failed() {
        let eio = StorageFailure::from_io("fsync", &std::io::Error::from_raw_os_error(5));
        let e = write_error(
            WriteError::Log(draft_log::Error::ReadOnly(eio)),
            "the instance",
        );
        assert_eq!((e.code(), e.status().as_u16()), (Code::StorageFailed, 503));
        assert!(
            e.message()
                .contains("the disk failed a write or an fsync (during fsync)"),
            "{}",
            e.message()
        );
    }
}
