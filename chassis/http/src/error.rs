//! [`ApiError`]: the one error every Draft HTTP API answers with, and its stable [`Code`]s.
//!
//! A handler returns `Result<_, ApiError>`; the conversion to a response is the JSON body of
//! DESIGN.md §4 and never logs. Server errors (5xx) carry a detail for the node's own log
//! that the client never sees, and [`log_server_errors`], a layer on the whole router, logs
//! each of them once, with the request's method and path.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::body::ErrorBody;

/// The stable, machine-readable error codes of Draft's APIs (`snake_case` on the wire).
/// Each code has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 400: a query parameter is unknown, repeated or malformed.
    InvalidParameter,
    /// 400: a channel name is not valid, or is reserved for Draft.
    InvalidChannel,
    /// 400: a CloudEvent is not valid (the message names the attribute).
    InvalidEvent,
    /// 400: a KV key is not valid.
    InvalidKey,
    /// 400: an `If-Match` / `If-None-Match` header is not valid.
    InvalidPrecondition,
    /// 400: a registration body is not valid.
    InvalidRegistration,
    /// 400: a WebSocket endpoint was asked without a WebSocket upgrade.
    WebsocketRequired,
    /// 400: a consumer group name is not valid.
    InvalidGroup,
    /// 400: the ingress refuses a request path that is ambiguous to route: a dot-segment
    /// (`.`, `..`, also percent-encoded), an encoded slash or backslash (`%2F`, `%5C`) or a
    /// backslash.
    InvalidPath,
    /// 400: a token request (its name, role, policy or expiry) is not valid.
    InvalidPolicy,
    /// 400: a channel's settings (`PUT /v1/channels/{channel}`) are not valid.
    InvalidSettings,
    /// 401: the request presented no token, or one that is not valid (unknown, revoked or
    /// expired: the answer does not say which). Answered with `WWW-Authenticate: Bearer`.
    Unauthenticated,
    /// 403: the token's policy does not allow the action on the resource (the message names
    /// both).
    Forbidden,
    /// 404: the channel has no events yet.
    ChannelNotFound,
    /// 404: the key, service or instance does not exist.
    NotFound,
    /// 404: no endpoint has this path.
    UnknownEndpoint,
    /// 404: the ingress has no route for this host and path.
    NoRoute,
    /// 405: the path exists but does not take this method.
    MethodNotAllowed,
    /// 408: the request's body did not arrive within the listener's body read timeout; the
    /// connection is closed.
    RequestTimeout,
    /// 409: the request does not fit the resource's current state (a consumer group with
    /// other settings, or with members still connected; a route another service owns).
    Conflict,
    /// 412: a compare-and-set precondition did not hold.
    PreconditionFailed,
    /// 413: a body or record is over its limit.
    TooLarge,
    /// 415: the content type is not one the endpoint takes.
    UnsupportedMediaType,
    /// 507: the KV store holds its most keys or bytes (the message says which); delete some
    /// first.
    QuotaExceeded,
    /// 500: the node could not store or read; its log says why.
    StorageError,
    /// 500: a broken invariant of the node (a bug); its log says more.
    Internal,
    /// 502: no upstream instance could be reached.
    UpstreamUnavailable,
    /// 502: the upstream's answer could not be forwarded.
    BadUpstream,
    /// 502: the upstream failed while answering.
    UpstreamError,
    /// 503: the node is shutting down.
    ShuttingDown,
    /// 503: the node's storage failed a write (the disk is full, or a write or an fsync
    /// failed): the node is read-only until it is restarted. Reads still work; writes and
    /// heartbeats are refused with this code, and `/readyz` answers it.
    StorageFailed,
    /// 503: the log's engine cannot be reached right now (a JetStream cluster electing a
    /// leader, or without a quorum), and stayed so until the node's deadline. A write that
    /// gets it may or may not have been stored: retry it (produce dedups by `source` + `id`).
    LogUnavailable,
    /// 503: the node is not ready (still catching up, or its storage failed).
    NotReady,
    /// 503: the route's service has no passing instance.
    NoHealthyInstance,
    /// 503: the listener has as many WebSockets open as it allows; retry later.
    TooManyConnections,
    /// 503: the node did not answer within the listener's request timeout.
    DeadlineExceeded,
    /// 504: the upstream did not answer in time.
    UpstreamTimeout,
    /// 508: the request has already passed through this node's ingress (its `Draft-Hop`
    /// header names the node), or through too many ingresses: it is not forwarded again.
    LoopDetected,
}

impl Code {
    /// The code as it is sent: `snake_case`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "invalid_parameter",
            Self::InvalidChannel => "invalid_channel",
            Self::InvalidEvent => "invalid_event",
            Self::InvalidKey => "invalid_key",
            Self::InvalidPrecondition => "invalid_precondition",
            Self::InvalidRegistration => "invalid_registration",
            Self::WebsocketRequired => "websocket_required",
            Self::InvalidGroup => "invalid_group",
            Self::InvalidPath => "invalid_path",
            Self::InvalidPolicy => "invalid_policy",
            Self::InvalidSettings => "invalid_settings",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::ChannelNotFound => "channel_not_found",
            Self::NotFound => "not_found",
            Self::UnknownEndpoint => "unknown_endpoint",
            Self::NoRoute => "no_route",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::QuotaExceeded => "quota_exceeded",
            Self::StorageError => "storage_error",
            Self::Internal => "internal",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::BadUpstream => "bad_upstream",
            Self::UpstreamError => "upstream_error",
            Self::ShuttingDown => "shutting_down",
            Self::StorageFailed => "storage_failed",
            Self::LogUnavailable => "log_unavailable",
            Self::NotReady => "not_ready",
            Self::NoHealthyInstance => "no_healthy_instance",
            Self::TooManyConnections => "too_many_connections",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::LoopDetected => "loop_detected",
        }
    }

    /// The HTTP status this code is answered with.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidParameter
            | Self::InvalidChannel
            | Self::InvalidEvent
            | Self::InvalidKey
            | Self::InvalidPrecondition
            | Self::InvalidRegistration
            | Self::WebsocketRequired
            | Self::InvalidGroup
            | Self::InvalidPath
            | Self::InvalidPolicy
            | Self::InvalidSettings => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::ChannelNotFound | Self::NotFound | Self::UnknownEndpoint | Self::NoRoute => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            Self::StorageError | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UpstreamUnavailable | Self::BadUpstream | Self::UpstreamError => {
                StatusCode::BAD_GATEWAY
            }
            Self::ShuttingDown
            | Self::StorageFailed
            | Self::LogUnavailable
            | Self::NotReady
            | Self::NoHealthyInstance
            | Self::TooManyConnections
            | Self::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::LoopDetected => StatusCode::LOOP_DETECTED,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to an HTTP client: a stable [`Code`] (which fixes the status) and a
/// message that says what went wrong and how to fix it. A server error may also carry a
/// detail for the node's log; it is never sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    message: String,
    detail: Option<String>,
}

impl ApiError {
    /// An error with this code and message.
    #[must_use]
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// A server error whose cause, `detail`, goes to the node's log (by
    /// [`log_server_errors`]) and not to the client, who gets `message`.
    #[must_use]
    pub fn internal(
        code: Code,
        message: impl Into<String>,
        detail: impl std::fmt::Display,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            detail: Some(detail.to_string()),
        }
    }

    /// 400 `invalid_parameter`.
    #[must_use]
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidParameter, message)
    }

    /// 413 `too_large`.
    #[must_use]
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Code::TooLarge, message)
    }

    /// 401 `unauthenticated` (answered with `WWW-Authenticate: Bearer`).
    #[must_use]
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    /// 403 `forbidden`.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    /// 400 `websocket_required`, for an endpoint asked without a valid upgrade.
    #[must_use]
    pub fn websocket_required(what: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            Code::WebsocketRequired,
            format!("{what} is a WebSocket endpoint: {why}"),
        )
    }

    /// 503 `shutting_down`.
    #[must_use]
    pub fn shutting_down() -> Self {
        Self::new(
            Code::ShuttingDown,
            "the node is shutting down; retry against a running node",
        )
    }

    /// 503 `storage_failed`: the node's storage failed a write and the node is read-only;
    /// `reason` says why and what the operator must do (it must name no file or engine
    /// internals). Nothing is logged for it: the failure itself was logged once, where it
    /// happened, and every write after it is refused the same way.
    #[must_use]
    pub fn storage_failed(reason: impl std::fmt::Display) -> Self {
        Self::new(
            Code::StorageFailed,
            format!("the node cannot store anything: {reason}"),
        )
    }

    /// 503 `log_unavailable`: the log's engine did not answer until the deadline; `reason`
    /// goes to the node's log only.
    #[must_use]
    pub fn log_unavailable(reason: impl std::fmt::Display) -> Self {
        Self::internal(
            Code::LogUnavailable,
            "the log cannot be reached right now (its cluster is electing a leader or has lost \
             its quorum); retry later",
            reason,
        )
    }

    /// 500 `storage_error`: the node could not store or read; `detail` (the storage error)
    /// goes to its log only.
    #[must_use]
    pub fn storage(detail: impl std::fmt::Display) -> Self {
        Self::internal(
            Code::StorageError,
            "the node could not store or read events; see its log",
            detail,
        )
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> Code {
        self.code
    }

    /// The HTTP status (the code's).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Whether the node logs this error when it answers it: every server error but
    /// `storage_failed`. A read-only node refuses every write, heartbeat and readiness probe
    /// the same way until it restarts; the failure is logged once where it happened, not
    /// once a request.
    #[must_use]
    pub fn is_logged(&self) -> bool {
        self.status().is_server_error() && self.code != Code::StorageFailed
    }

    /// The message the client gets.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A server error's cause, for the node's log (never sent to the client).
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// What a server error leaves in its response for [`log_server_errors`].
#[derive(Debug, Clone)]
struct ServerError {
    code: Code,
    detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let server_error = self.is_logged().then(|| ServerError {
            code: self.code,
            detail: self.detail.unwrap_or_else(|| self.message.clone()),
        });
        let mut response = (
            status,
            Json(ErrorBody::new(self.code.as_str(), self.message)),
        )
            .into_response();
        if let Some(e) = server_error {
            response.extensions_mut().insert(e);
        }
        if self.code == Code::Unauthenticated {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"draft\""),
            );
        }
        response
    }
}

/// Middleware (`axum::middleware::from_fn(log_server_errors)`) that logs every server error
/// an [`ApiError`] answered, once, with its method, path and detail; all but
/// `storage_failed`, whose cause the log logged once when it happened.
pub async fn log_server_errors(request: Request, next: Next) -> Response {
    // Cheap to keep: the method is an enum, the URI's bytes are shared (no copy).
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    if let Some(e) = response.extensions().get::<ServerError>() {
        let path = uri.path();
        tracing::error!(%method, path, code = %e.code, error = %e.detail, "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn the_response_is_the_json_error_with_the_codes_status() {
        let response = ApiError::new(Code::PreconditionFailed, "key is at 3").into_response();
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            body(response).await,
            serde_json::json!({"error": {"code": "precondition_failed", "message": "key is at 3"}})
        );
    }

    #[tokio::test]
    async fn a_server_errors_detail_is_not_sent() {
        let e = ApiError::internal(Code::StorageError, "see the node's log", "fsync: EIO");
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<ServerError>().is_some());
        let text = body(response).await.to_string();
        assert!(!text.contains("EIO"), "{text}");
    }

    #[tokio::test]
    async fn a_storage_failure_is_a_503_that_leaves_nothing_to_log() {
        let response = ApiError::storage_failed("the disk is full").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.extensions().get::<ServerError>().is_none());
        assert_eq!(
            body(response).await,
            serde_json::json!({"error": {
                "code": "storage_failed",
                "message": "the node cannot store anything: the disk is full"
            }})
        );
    }

    #[tokio::test]
    async fn a_401_names_the_bearer_scheme() {
        let response = ApiError::unauthenticated("send a token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"draft\""
        );
        let response = ApiError::forbidden("no").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get("www-authenticate").is_none());
    }

    #[tokio::test]
    async fn client_errors_leave_nothing_to_log() {
        let response = ApiError::invalid_parameter("bad").into_response();
        assert!(response.extensions().get::<ServerError>().is_none());
    }

    #[tokio::test]
    async fn the_layer_passes_responses_through() {
        let app = Router::new()
            .route(
                "/fail",
                get(|| async { ApiError::internal(Code::StorageError, "m", "d") }),
            )
            .layer(axum::middleware::from_fn(log_server_errors));
        let response = app
            .oneshot(Request::get("/fail").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn every_code_is_snake_case_and_has_an_error_status() {
        use Code::*;
        for code in [
            InvalidParameter,
            InvalidChannel,
            InvalidEvent,
            InvalidKey,
            InvalidPrecondition,
            InvalidRegistration,
            WebsocketRequired,
            InvalidGroup,
            InvalidPath,
            InvalidPolicy,
            InvalidSettings,
            Unauthenticated,
            Forbidden,
            ChannelNotFound,
            NotFound,
            UnknownEndpoint,
            NoRoute,
            MethodNotAllowed,
            RequestTimeout,
            Conflict,
            PreconditionFailed,
            TooLarge,
            UnsupportedMediaType,
            QuotaExceeded,
            StorageError,
            UpstreamUnavailable,
            BadUpstream,
            UpstreamError,
            ShuttingDown,
            StorageFailed,
            NotReady,
            NoHealthyInstance,
            TooManyConnections,
            DeadlineExceeded,
            UpstreamTimeout,
            LoopDetected,
        ] {
            let s = code.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
