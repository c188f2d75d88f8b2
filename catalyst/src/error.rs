//! Catalyst's HTTP error: one type, one `IntoResponse`, the JSON body of DESIGN.md §4.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::cloudevent::EventError;
use crate::wire::ErrorBody;

/// An error answered to an HTTP client: a status, a stable `snake_case` code and a message
/// that says what went wrong and how to fix it. 5xx messages leak no internals.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code.
    pub code: &'static str,
    /// The human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_channel`.
    #[must_use]
    pub fn invalid_channel(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_channel", message)
    }

    /// 404 `channel_not_found`.
    #[must_use]
    pub fn channel_not_found(channel: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "channel_not_found",
            format!("channel {channel:?} does not exist; it is created by its first event"),
        )
    }

    /// 400 `invalid_parameter`.
    #[must_use]
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    /// 413 `too_large`.
    #[must_use]
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 503 or 500 for a failure of the log, logged here and described without internals.
    #[must_use]
    pub fn from_log(e: &draft_log::Error) -> Self {
        tracing::error!(error = %e, "log operation failed");
        match e {
            draft_log::Error::Closed => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down; retry against a running node",
            ),
            draft_log::Error::TooLarge { bytes, limit } => Self::too_large(format!(
                "{bytes} bytes is over the log's limit of {limit} bytes"
            )),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the node could not store or read events; see its log",
            ),
        }
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_event", e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}
