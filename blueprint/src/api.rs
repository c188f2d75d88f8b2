//! Blueprint's HTTP routes, and what every read shares: `?at=` and the revision header.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use draft_catalyst::ApiError;
use draft_log::Timestamp;

use crate::blueprint::Blueprint;
use crate::error::{OpenError, WriteError};
use crate::projection::Projection;
use crate::{kv, registry, watch};

/// The response header that says which revision an answer is as of.
pub const REVISION_HEADER: &str = "draft-revision";

/// Blueprint's routes, under `/v1`.
pub fn router(blueprint: Blueprint) -> Router {
    Router::new()
        .route("/v1/services", get(registry::list))
        .route("/v1/services/{service}", get(registry::get))
        .route(
            "/v1/services/{service}/instances/{instance}",
            put(registry::register).delete(registry::deregister),
        )
        .route(
            "/v1/services/{service}/instances/{instance}/heartbeat",
            post(registry::heartbeat),
        )
        .route("/v1/kv", get(kv::list))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/watch", get(watch::watch))
        .with_state(blueprint)
}

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
    pub(crate) fn revision(&self) -> Option<u64> {
        self.with(Projection::revision)
    }
}

/// Resolves `at` (a revision, or an RFC 3339 time) to the revision in force then (`None`:
/// before the first control event). A revision in the future is bad input.
///
/// # Errors
/// 400 for an unparsable or future `at`; the log's error if it cannot be read.
pub async fn resolve_at(blueprint: &Blueprint, at: &str) -> Result<Option<u64>, ApiError> {
    let current = blueprint.revision();
    if !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) {
        let rev: u64 = at
            .parse()
            .map_err(|_| ApiError::invalid_parameter(format!("revision {at:?} is too large")))?;
        if current.is_none_or(|c| rev > c) {
            return Err(ApiError::invalid_parameter(format!(
                "revision {rev} is in the future; the current revision is {}",
                current.map_or("none".to_owned(), |c| c.to_string())
            )));
        }
        return Ok(Some(rev));
    }
    let time = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| {
        ApiError::invalid_parameter(format!(
            "at must be a revision or an RFC 3339 time, not {at:?}"
        ))
    })?;
    let nanos = u64::try_from(time.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
    blueprint
        .revision_at_time(Timestamp::from_unix_nanos(nanos))
        .await
        .map_err(|e| ApiError::from_log(&e))
}

/// The state to answer from for `?at=` (absent: now).
pub(crate) async fn view(blueprint: &Blueprint, at: Option<&str>) -> Result<View, ApiError> {
    let Some(at) = at else {
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

/// The API error for a failure to rebuild past state.
#[must_use]
pub fn open_error(e: &OpenError) -> ApiError {
    match e {
        OpenError::Log(e) => ApiError::from_log(e),
        other => {
            tracing::error!(error = %other, "reading past state failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the node could not rebuild that state; see its log",
            )
        }
    }
}

pub(crate) fn write_error(e: WriteError, what: &str) -> ApiError {
    match e {
        WriteError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist"),
        ),
        WriteError::PreconditionFailed { current } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!(
                "{what} is at revision {}; re-read it and retry with If-Match set to that",
                current.map_or("none (absent)".to_owned(), |c| c.to_string())
            ),
        ),
        WriteError::Log(e) => ApiError::from_log(&e),
    }
}

/// Adds the revision header to a response.
pub(crate) fn with_revision(mut response: Response, revision: Option<u64>) -> Response {
    if let Some(rev) = revision {
        response
            .headers_mut()
            .insert(REVISION_HEADER, HeaderValue::from(rev));
    }
    response
}

/// Each query parameter's single value; refuses unknown and repeated parameters.
///
/// # Errors
/// 400 `invalid_parameter`.
pub fn query(
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::invalid_parameter(format!(
                "unknown query parameter {k:?}; allowed: {}",
                allowed.join(", ")
            )));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(ApiError::invalid_parameter(format!(
                "{k} may be given once"
            )));
        }
    }
    Ok(out)
}

/// The actor of a request: token-based identities come with auth; until then, `anonymous`.
pub(crate) fn actor(_headers: &HeaderMap) -> &'static str {
    "anonymous"
}

/// A JSON answer with a status.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}
