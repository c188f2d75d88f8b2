//! Produce over a WebSocket: `GET /v1/channels/{channel}/produce` (subprotocol
//! `cloudevents.json`).
//!
//! Each text frame is one structured-mode event, or a JSON array of events appended
//! atomically like an HTTP batch, validated, deduplicated and stored by the same
//! [`produce::store`] as HTTP produce. The node answers every frame, in the order they came,
//! with a [`ProduceAck`](crate::wire::ProduceAck): the offsets once the events are durable,
//! or the error HTTP produce would answer with (the connection stays open). A binary frame is
//! answered with `unsupported_media_type`. A frame over the largest batch is refused with
//! close code 1009 before it is buffered.
//!
//! Frames are stored concurrently (see `pipeline.rs`) up to a window of unanswered frames and
//! bytes ([`CatalystConfig`](crate::CatalystConfig)'s `produce_window_*`); then the node stops
//! reading the socket (once the few frames read ahead of the pipeline, [`HANDOFF_BYTES`] at
//! most, are taken), so a fast producer waits on TCP. At shutdown the node stops reading,
//! answers what is in flight, and closes with 1001.

mod pipeline;

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use draft_http::auth::{Caller, Validity};
use draft_http::ws::{ClientData, IDLE_LIMIT, Inbound, Outbound, PING_EVERY, SocketOptions};
use draft_http::{Actor, ApiError, Code};
use futures::StreamExt;

use crate::broker::Catalyst;
use crate::channel_name::ChannelName;
use crate::produce::{self, Payload};
use crate::wire::SUBPROTOCOL;
use pipeline::Window;

/// Frames the socket may have read ahead of the pipeline, and their bytes (then it reads the
/// next only as the pipeline takes them): so the node holds for a producer its window and at
/// most these 256 KiB (and one frame) more. Several frames waiting let the pipeline take them
/// in runs: with one frame at a time, every frame cost both tasks a wake-up (measured with the
/// node on one core, 8 s runs: 64 producers 139-141k events/s with one, 196-203k with 64; one
/// producer 189-218k and 219-223k).
const HANDOFF_FRAMES: usize = 64;
const HANDOFF_BYTES: usize = 256 * 1024;
/// Acknowledgements queued for the socket (one of a large batch lists thousands of offsets).
const ACK_QUEUE: usize = 64;
/// tungstenite's read buffer for producers: their reads are full of frames, so it is larger
/// than the 4 KiB of the sockets whose clients only receive.
const READ_BUFFER: usize = 64 * 1024;

/// `GET /v1/channels/{channel}/produce`: checks the channel before the upgrade (a reserved or
/// invalid one is the 400 HTTP produce answers), then serves the producer.
pub(crate) async fn produce_socket(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    actor: Actor,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let channel = ChannelName::parse(&name)?;
    let credential = caller.validity();
    let upgrade = upgrade.map_err(|e| {
        ApiError::websocket_required(&format!("produce (subprotocol {SUBPROTOCOL})"), e)
    })?;
    let max_frame = state.config().max_batch_bytes;
    Ok(draft_http::ws::limited_to(upgrade, max_frame)
        .read_buffer_size(READ_BUFFER)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| serve(state, channel, (actor, credential), socket)))
}

/// One producer's connection: the socket loop forwards frames to the pipeline and sends its
/// acknowledgements. Its events name the actor the upgrade was let through as; it is closed
/// when that actor's token lapses (frames already read are still stored and answered if the
/// socket is still there).
async fn serve(
    state: Catalyst,
    channel: ChannelName,
    (actor, credential): (Actor, Option<Validity>),
    socket: WebSocket,
) {
    let config = state.config();
    let window = Window::new(config.produce_window_frames, config.produce_window_bytes);
    let (to_pipeline, frames) = draft_http::ws::inbox(HANDOFF_FRAMES, HANDOFF_BYTES);
    let (acks_tx, acks) = draft_http::ws::outbox(ACK_QUEUE, draft_http::ws::OUTBOX_BYTES);
    let target = Arc::new((state.clone(), channel, actor));
    let goodbye = Outbound::Close(close_code::AWAY, "node shutting down".into());
    let pipeline = tokio::spawn(pipeline::run(
        frames,
        acks_tx,
        window,
        move |frames| store_frames(Arc::clone(&target), frames),
        goodbye,
    ));
    let options = SocketOptions {
        ping_every: PING_EVERY,
        idle_limit: IDLE_LIMIT,
        write_timeout: config.ws_write_timeout,
        client_data: ClientData::Forward(to_pipeline),
        credential,
    };
    state.metrics().producer_connected();
    let (sink, stream) = socket.split();
    draft_http::ws::serve_socket(sink, stream, acks, options, state.shutdown()).await;
    // The pipeline stores what it took even when the client is gone: wait for it.
    let _ = pipeline.await;
    state.metrics().producer_disconnected();
}

/// Stores a group of frames' events with one append; answers one result per frame. A server
/// error is logged here (no HTTP layer sees it).
async fn store_frames(
    target: Arc<(Catalyst, ChannelName, Actor)>,
    frames: Vec<Inbound>,
) -> Vec<Result<Vec<u64>, ApiError>> {
    let (state, channel, actor) = &*target;
    let payloads = frames
        .into_iter()
        .map(|frame| match frame {
            Inbound::Text(text) => Ok(Payload::of_frame(Bytes::from(text))),
            Inbound::Binary(_) => Err(ApiError::new(
                Code::UnsupportedMediaType,
                "binary frames are not taken: send each event, or a JSON array of events, as a \
                 text frame",
            )),
        })
        .collect();
    let results = produce::store_many(state, channel, payloads, actor).await;
    if let Some(e) = results
        .iter()
        .find_map(|r| r.as_ref().err().filter(|e| e.is_logged()))
    {
        let detail = e.detail().unwrap_or(e.message());
        tracing::error!(channel = %channel, code = %e.code(), error = %detail,
            "produce over WebSocket failed");
    }
    results
}
