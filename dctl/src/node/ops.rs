//! The operations endpoints: `/healthz`, `/readyz`, `/metrics`, `/v1/status`,
//! `/v1/openapi.json`, and a JSON 404 for any other path.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draft_blueprint::{Blueprint, Revision};
use draft_catalyst::Catalyst;
use draft_fuse::Fuse;
use draft_http::{ApiError, Code, LabelValue, Shutdown};
use draft_log::{LogBackend, PartitionHead, StorageFailure};
use tokio::time::Instant;

/// The API described for tools (`GET /v1/openapi.json`).
const OPENAPI: &str = include_str!("../openapi.json");

/// What the operations endpoints report on.
#[derive(Clone)]
pub(super) struct Parts {
    pub(super) name: String,
    pub(super) log: Arc<dyn LogBackend>,
    pub(super) catalyst: Catalyst,
    pub(super) blueprint: Blueprint,
    pub(super) fuse: Fuse,
    pub(super) started: Instant,
    /// The control partition's last revision when the node opened: the registry is caught
    /// up once it has applied at least that.
    pub(super) control_at_open: Option<Revision>,
    pub(super) shutdown: Shutdown,
    /// What `/v1/status` says of the log's backend ([`BackendSettings::status`]).
    pub(super) backend: serde_json::Value,
    /// This node's place among the nodes sharing its log, if it shares it.
    pub(super) cluster: Option<Arc<super::cluster::Cluster>>,
}

/// The operations routes.
pub(super) fn router(parts: Parts) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/status", get(status))
        .fallback(|| async {
            ApiError::new(
                Code::UnknownEndpoint,
                "no such endpoint; see /v1/openapi.json",
            )
        })
        .with_state(parts)
}

/// Why the node should not be sent traffic now, if it should not.
pub(super) fn not_ready(parts: &Parts) -> Option<ApiError> {
    if parts.shutdown.is_triggered() {
        return Some(ApiError::shutting_down());
    }
    if let Some(failure) = parts.log.storage_failure() {
        return Some(ApiError::storage_failed(failure.reason()));
    }
    let applied = parts.blueprint.revision();
    if applied < parts.control_at_open {
        return Some(ApiError::new(
            Code::NotReady,
            format!(
                "the registry is still catching up: at revision {applied:?} of {:?}",
                parts.control_at_open
            ),
        ));
    }
    None
}

/// `GET /readyz`: 200 once the projections have caught up with the log; 503 with the reason
/// while they have not (`not_ready`), once a write to disk failed (`storage_failed`, until
/// the node is restarted), and while the node shuts down (`shutting_down`).
async fn ready(State(parts): State<Parts>) -> Response {
    match not_ready(&parts) {
        None => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Some(e) => e.into_response(),
    }
}

async fn heads(parts: &Parts) -> Result<Vec<PartitionHead>, ApiError> {
    parts
        .log
        .partitions()
        .await
        .map_err(|e| ApiError::storage(&e))
}

/// `GET /v1/status`.
async fn status(State(parts): State<Parts>) -> Result<Response, ApiError> {
    let channels = heads(&parts)
        .await?
        .iter()
        .filter(|h| !h.partition.is_reserved())
        .count();
    let (revision, services, instances) = parts
        .blueprint
        .read(|p| (p.revision(), p.services().count(), p.instances().count()));
    let body = serde_json::json!({
        "node": parts.name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": parts.started.elapsed().as_millis() as u64,
        "revision": revision,
        "channels": channels,
        "services": services,
        "instances": instances,
        "routes": parts.fuse.table().routes.len(),
        "storage": storage(parts.log.storage_failure().as_ref()),
        "backend": parts.backend,
        "cluster": match &parts.cluster {
            Some(c) => c.status().await,
            None => serde_json::Value::Null,
        },
    });
    Ok(axum::Json(body).into_response())
}

/// The storage state in `/v1/status`: `{"state":"writable"}`, or once a write to disk failed
/// `{"state":"read_only","cause":..,"reason":..}` (sticky until the node restarts).
fn storage(failure: Option<&StorageFailure>) -> serde_json::Value {
    match failure {
        None => serde_json::json!({"state": "writable"}),
        Some(f) => serde_json::json!({
            "state": "read_only",
            "cause": f.cause().as_str(),
            "reason": f.reason(),
        }),
    }
}

/// `GET /metrics`: Prometheus text format. Every label value is escaped (`LabelValue`).
async fn metrics(State(parts): State<Parts>) -> Result<Response, ApiError> {
    let mut out = String::new();
    parts.catalyst.metrics().render(&mut out);
    parts.fuse.metrics().render(&mut out);
    out.push_str(
        "# HELP draft_channel_events Events stored per channel.\n\
         # TYPE draft_channel_events gauge\n",
    );
    for head in heads(&parts).await? {
        let _ = writeln!(
            out,
            "draft_channel_events{{channel=\"{}\"}} {}",
            LabelValue(head.partition.as_ref()),
            head.count()
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
