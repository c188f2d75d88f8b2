//! Consumers: `GET /v1/channels/{channel}/consume`; replay from any position, then follow the
//! live feed (`reader.rs`); and the WebSocket loop that delivers to one client (CloudEvents
//! WebSocket binding, `cloudevents.json`). With `group=`, the connection is a member of a
//! durable consumer group instead (`group_api.rs`, `groups/`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::Response;
use draft_http::auth::{Caller, Validity};
use draft_http::ws::{
    ClientData, OUTBOX_BYTES, Outbound, OutboxSender, SocketOptions, outbox, serve_socket,
};
use draft_http::{Actor, ApiError, Code, Query};
use draft_log::{LogBackend, Offset, PartitionName};
use futures::StreamExt;

use crate::broker::Catalyst;
use crate::channel;
use crate::cloudevent::Filter;
use crate::feed::Feeds;
use crate::group_api::{self, Connect};
use crate::query::{filter, resolve_start};
use crate::reader::{Stop, read_channel};
use crate::wire::SUBPROTOCOL;

/// Events queued between a consumer's reader and its socket (and at most [`OUTBOX_BYTES`]
/// of them).
const SOCKET_QUEUE: usize = 256;

/// Consumers only receive (the CloudEvents WebSocket binding's consumer side); closed when
/// their token lapses.
fn options(state: &Catalyst, credential: Option<Validity>) -> SocketOptions {
    SocketOptions {
        ping_every: draft_http::ws::PING_EVERY,
        idle_limit: draft_http::ws::IDLE_LIMIT,
        write_timeout: state.config().ws_write_timeout,
        client_data: ClientData::Refuse("consumers only receive; send nothing but pings and close"),
        credential,
    }
}

/// `GET /v1/channels/{channel}/consume`: checks every parameter before the upgrade (a bad one
/// is a 400 with the JSON error), then serves the WebSocket.
pub(crate) async fn consume(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    actor: Actor,
    caller: Caller,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let channel = channel::channel(&name)?;
    let query = Query::parse(
        raw.as_deref(),
        &["from", "type", "source", "group", "timeout_ms"],
    )?;
    let filter = filter(&query)?;
    if let Some(group) = query.one("group")? {
        let connect = Connect {
            channel,
            group,
            query: &query,
            actor,
            address,
            credential: caller.validity(),
        };
        return group_api::consume(state, connect, upgrade).await;
    }
    if query.one("timeout_ms")?.is_some() {
        return Err(ApiError::invalid_parameter(
            "timeout_ms is a consumer group's setting: give it with group",
        ));
    }
    let from = query.one("from")?.unwrap_or("latest");
    let from = resolve_start(state.log(), &channel, from).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            Code::WebsocketRequired,
            format!("consume is a WebSocket endpoint (subprotocol {SUBPROTOCOL}): {e}"),
        )
    })?;
    let consumer = Consumer {
        log: state.shared_log(),
        feeds: state.feeds(),
        channel,
        from,
        filter,
    };
    let credential = caller.validity();
    Ok(draft_http::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            state.metrics().consumer_connected();
            let (tx, rx) = outbox(SOCKET_QUEUE, OUTBOX_BYTES);
            let reader = tokio::spawn(consumer.read(tx));
            let (sink, stream) = socket.split();
            let options = options(&state, credential);
            serve_socket(sink, stream, rx, options, state.shutdown()).await;
            reader.abort();
            state.metrics().consumer_disconnected();
        }))
}

/// Everything a consumer connection needs.
struct Consumer {
    log: Arc<dyn LogBackend>,
    feeds: Arc<Feeds>,
    channel: PartitionName,
    from: Offset,
    filter: Filter,
}

impl Consumer {
    /// Reads the channel into `out` until the socket goes away; a failure to read is logged
    /// here and ends the socket with 1011.
    async fn read(self, out: OutboxSender) {
        let channel = self.channel.clone();
        let stop = read_channel(
            self.log,
            self.feeds,
            self.channel,
            self.from,
            self.filter,
            out.clone(),
        )
        .await;
        if let Stop::Failed(e) = stop {
            tracing::error!(channel = %channel, error = %e, "consumer stopped");
            let reason = "the node could not read the channel".into();
            let _ = out.send(Outbound::Close(close_code::ERROR, reason)).await;
        }
    }
}
