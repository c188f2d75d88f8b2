//! The service's own endpoints on its listener (`/healthz`, `/readyz`, `/metrics`) and the
//! layer every request goes through (trace context in, request metrics out).

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draft_http::{ApiError, Code};
use tracing::Instrument as _;

use crate::metrics::RequestLabels;
use crate::shared::Shared;
use crate::telemetry::TraceContext;

/// `router` with the ops endpoints merged in and the request layer around everything.
pub(crate) fn wrap(router: Router, shared: Arc<Shared>) -> Router {
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&shared));
    router
        .merge(ops)
        .layer(axum::middleware::from_fn_with_state(shared, observe))
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// 200 when serving with every hook connected and every plugin up; 503 `not_ready` naming
/// what is not.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let reasons = shared.not_ready().await;
    if reasons.is_empty() {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(Code::NotReady, reasons.join("; ")).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// Runs the request in its trace (the caller's `traceparent`, or a new trace), and counts it
/// by route and status.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // A known method, or `other`: the label's values stay few whatever clients send.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let parent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let span = tracing::info_span!("request", %method, %route, trace_id = tracing::field::Empty);
    let trace = crate::telemetry::enter(&span, parent);
    span.record("trace_id", trace.trace_id_hex());
    let mut response = trace.scope(next.run(request)).instrument(span).await;
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
        response.headers_mut().insert("traceparent", value);
    }
    if route != "/metrics" {
        shared
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::warn!("request failed with 500");
    }
    response
}
