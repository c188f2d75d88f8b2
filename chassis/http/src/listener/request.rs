//! What the listener does around each request: a WebSocket upgrade over the cap is answered
//! 503 before it reaches the router, the body must arrive by the body deadline (else 408 and
//! the connection closes), and the response must start by the request deadline (else 503,
//! or 504 on a gateway). The handler can see and extend that deadline through [`Deadline`].

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::warn;

use super::limits::{Limits, Role};
use super::refusals::Refusals;
use super::timed_body::{RequestState, TimedBody};
use crate::error::{ApiError, Code};

/// The deadline by which a request's response must start, in the request's extensions: a
/// handler that is allowed longer for a reason of its own (the ingress, for a route with a
/// longer upstream timeout) moves it with [`Deadline::extend_to`].
#[derive(Debug, Clone)]
pub struct Deadline {
    state: Arc<RequestState>,
}

impl Deadline {
    /// When the response must have started.
    #[must_use]
    pub fn at(&self) -> Instant {
        self.state.deadline()
    }

    /// Moves the deadline to `at`, if that is later (it is never moved earlier).
    pub fn extend_to(&self, at: Instant) {
        self.state.extend_to(at);
    }
}

/// What the requests of one connection share.
pub(crate) struct Connection {
    pub(crate) remote: SocketAddr,
    pub(crate) limits: Limits,
    pub(crate) websockets: Arc<Semaphore>,
    pub(crate) websocket_refusals: Arc<Refusals>,
    /// Where an upgraded request leaves its WebSocket slot: with the stream (`held.rs`).
    pub(crate) upgraded: Arc<OnceLock<OwnedSemaphorePermit>>,
}

impl Connection {
    /// Serves one request with `app` under the listener's limits.
    pub(crate) async fn handle(&self, app: Router, request: hyper::Request<Incoming>) -> Response {
        let started = Instant::now();
        let limits = &self.limits;
        let websocket = if is_websocket_upgrade(request.headers()) {
            match Arc::clone(&self.websockets).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return self.refuse_websocket(started),
            }
        } else {
            None
        };
        let state = Arc::new(RequestState::new(started, limits.request_timeout));
        let mut request = request.map(|body| {
            axum::body::Body::new(TimedBody::new(
                body,
                started + limits.body_read_timeout,
                Arc::clone(&state),
            ))
        });
        request.extensions_mut().insert(ConnectInfo(self.remote));
        request.extensions_mut().insert(Deadline {
            state: Arc::clone(&state),
        });
        let mut call = std::pin::pin!(app.oneshot(request));
        let response = loop {
            let at = state.deadline();
            match tokio::time::timeout_at(at, &mut call).await {
                Ok(Ok(response)) => break Some(response),
                Ok(Err(never)) => match never {},
                // Unless the handler moved the deadline meanwhile.
                Err(_) if state.deadline() > at => {}
                Err(_) => break None,
            }
        };
        match response {
            _ if state.body_timed_out() => body_timed_out(limits),
            Some(response) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(permit) = websocket
                {
                    // An HTTP/1.1 connection upgrades once: the slot cannot already be set.
                    let _ = self.upgraded.set(permit);
                }
                response
            }
            None => deadline_passed(limits),
        }
    }

    fn refuse_websocket(&self, now: Instant) -> Response {
        let limit = self.limits.max_websockets;
        if let Some(refused) = self.websocket_refusals.record(now) {
            warn!(remote = %self.remote, refused, limit, "refusing WebSockets: max_websockets are open");
        }
        ApiError::new(
            Code::TooManyConnections,
            format!("this listener has its {limit} WebSockets open; retry later"),
        )
        .into_response()
    }
}

/// Whether the request asks for a WebSocket (RFC 6455 §4.1: `Upgrade: websocket` and
/// `Connection: upgrade`, tokens case-insensitive). The listener counts such requests as
/// WebSockets; the ingress passes on no other upgrade.
#[must_use]
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade")
        && has_token(headers, &header::UPGRADE, "websocket")
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// 408 `request_timeout`, and the connection closes: what is left of the body is not read.
fn body_timed_out(limits: &Limits) -> Response {
    let mut response = ApiError::new(
        Code::RequestTimeout,
        format!(
            "the request body did not arrive within {} ms; send it faster or in smaller requests",
            limits.body_read_timeout.as_millis()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to a request whose response did not start by the deadline.
fn deadline_passed(limits: &Limits) -> Response {
    let ms = limits.request_timeout.as_millis();
    let e = match limits.role {
        Role::Origin => ApiError::new(
            Code::DeadlineExceeded,
            format!("the node could not answer within {ms} ms; retry later"),
        ),
        Role::Gateway => ApiError::new(
            Code::UpstreamTimeout,
            format!("the upstream did not answer within the ingress's {ms} ms"),
        ),
    };
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_upgrades_are_recognized_by_their_tokens() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(is_websocket_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ])));
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c"),
        ])));
    }

    #[tokio::test]
    async fn the_deadline_answers_name_the_listeners_role() {
        let mut limits = Limits::default();
        assert_eq!(
            deadline_passed(&limits).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        limits.role = Role::Gateway;
        assert_eq!(
            deadline_passed(&limits).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let response = body_timed_out(&limits);
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()["connection"], "close");
    }
}
