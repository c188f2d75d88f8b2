//! Catalyst's HTTP routes.

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use futures::StreamExt;

use crate::broker::Catalyst;
use crate::channel;
use crate::consume::{Consumer, serve_socket};
use crate::error::ApiError;
use crate::produce::produce;
use crate::query::{Query, resolve_from};
use crate::wire::SUBPROTOCOL;

/// Catalyst's routes, under `/v1`.
pub fn router(state: Catalyst) -> Router {
    Router::new()
        .route("/v1/channels", get(channel::list))
        .route("/v1/channels/{channel}", get(channel::get))
        .route(
            "/v1/channels/{channel}/events",
            post(produce).get(channel::events),
        )
        .route("/v1/channels/{channel}/consume", get(consume))
        .with_state(state)
}

/// `GET /v1/channels/{channel}/consume`: checks every parameter before the upgrade (a bad one
/// is a 400 with the JSON error), then serves the WebSocket.
async fn consume(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let channel = channel::channel(&name)?;
    let query = Query::parse(raw.as_deref(), &["from", "type", "source"])?;
    let filter = query.filter()?;
    let log = state.log();
    let head = log
        .head(&channel)
        .await
        .map_err(|e| ApiError::from_log(&e))?
        .unwrap_or_else(|| {
            // Consuming a channel before its first event is allowed: it waits for it.
            draft_log::PartitionHead {
                partition: channel.clone(),
                first: draft_log::Offset(0),
                next: draft_log::Offset(0),
                bytes: 0,
                last_append: None,
            }
        });
    let from = resolve_from(log, &channel, &head, query.one("from")?.unwrap_or("latest")).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            format!("consume is a WebSocket endpoint (subprotocol {SUBPROTOCOL}): {e}"),
        )
    })?;
    let consumer = Consumer {
        log: state.shared_log(),
        feeds: state.feeds(),
        channel,
        from,
        filter,
        shutdown: state.shutdown_signal(),
    };
    Ok(crate::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            state.metrics().consumer_connected();
            let (sink, stream) = socket.split();
            serve_socket(consumer, sink, stream).await;
            state.metrics().consumer_disconnected();
        }))
}
