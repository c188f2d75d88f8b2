//! `GET /v1/watch?prefix=&from=`: a WebSocket of control changes. Without `from`: the current
//! state, a `caught-up` marker, then every change in order. With `from=R`: every change after
//! revision R from the log (so a client that resumes from the last revision it saw misses
//! nothing), the marker, then live changes. `prefix` filters on the key, or on
//! `services/<service>/<instance>` for registry changes.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use draft_http::auth::{Caller, Validity};
use draft_http::ws::{
    ClientData, OUTBOX_BYTES, Outbound, OutboxSender, SocketOptions, outbox, serve_socket,
};
use draft_http::{ApiError, Code, Query};
use draft_log::Record;
use futures::StreamExt;

use crate::blueprint::Blueprint;
use crate::event::ControlEvent;
use crate::names::Revision;
use crate::projection::{KvMeta, Projection};
use crate::wire::{Health, WatchMessage, base64_encode};

/// The message for a logged control event (`None` for tokens, which a watch never shows, and
/// for one of another part of the node).
fn message(revision: u64, event: ControlEvent) -> Option<WatchMessage> {
    Some(match event {
        ControlEvent::KvPut { key, value } => WatchMessage::Put {
            revision,
            key,
            value_base64: base64_encode(&value),
        },
        ControlEvent::KvDeleted { key } => WatchMessage::Deleted { revision, key },
        ControlEvent::Registered {
            service,
            instance,
            registration,
        } => WatchMessage::Registered {
            revision,
            service,
            instance,
            registration,
        },
        // A removal is a departure, as watchers see it.
        ControlEvent::Deregistered { service, instance }
        | ControlEvent::Removed { service, instance } => WatchMessage::Deregistered {
            revision,
            service,
            instance,
        },
        ControlEvent::Expired {
            service, instance, ..
        } => WatchMessage::Expired {
            revision,
            service,
            instance,
        },
        ControlEvent::TokenCreated { .. }
        | ControlEvent::TokenRevoked { .. }
        | ControlEvent::Other { .. } => return None,
    })
}

/// The current state under `prefix`: the keys (whose values are read from the log as they
/// are sent), then the registry as messages.
fn snapshot(state: &Projection, prefix: &str) -> (Vec<(String, KvMeta)>, Vec<WatchMessage>) {
    let keys = state
        .range(prefix, None, usize::MAX)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = Vec::new();
    for (service, instance, i) in state.instances() {
        if !format!("services/{service}/{instance}").starts_with(prefix) {
            continue;
        }
        let (service, instance) = (service.clone(), instance.clone());
        out.push(WatchMessage::Registered {
            revision: i.revision,
            service: service.clone(),
            instance: instance.clone(),
            registration: i.registration.clone(),
        });
        if i.health == Health::Critical {
            out.push(WatchMessage::Expired {
                revision: i.revision,
                service,
                instance,
            });
        }
    }
    (keys, out)
}

/// Sends the snapshot: each key's value read from the log as it goes, so one value at a
/// time is held; `false` once the socket is gone or a value cannot be read (the socket is
/// then closed with 1011).
async fn send_snapshot(
    bp: &Blueprint,
    out: &OutboxSender,
    (keys, registry): (Vec<(String, KvMeta)>, Vec<WatchMessage>),
) -> bool {
    for (key, meta) in keys {
        let value = match bp.shared.values().scan_value(&key, &meta).await {
            Ok(value) => value,
            Err(e) => {
                tracing::error!(error = %e, "a watch could not read a value");
                let reason = "the node could not read a value from the control log".into();
                let _ = out.send(Outbound::Close(close_code::ERROR, reason)).await;
                return false;
            }
        };
        let message = WatchMessage::Put {
            revision: meta.revision,
            key,
            value_base64: base64_encode(&value),
        };
        if !send(out, &message).await {
            return false;
        }
    }
    for m in &registry {
        if !send(out, m).await {
            return false;
        }
    }
    true
}

/// The message for a logged control event under `prefix`.
fn decode(record: &Record, prefix: &str) -> Option<WatchMessage> {
    let (event, _) = ControlEvent::from_cloudevent(&record.payload).ok()?;
    event
        .path()?
        .starts_with(prefix)
        .then(|| message(record.offset.0, event))
        .flatten()
}

/// The handler: parameters are checked before the upgrade.
pub(crate) async fn watch(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["prefix", "from", "min_revision"])?;
    crate::respond::min_revision(&bp, &q).await?;
    let prefix = q.one("prefix")?.unwrap_or_default().to_owned();
    let current = bp.revision();
    let from = match q.one("from")? {
        None => None,
        Some(f) => {
            let rev: Revision = f.parse().map_err(|_| {
                ApiError::invalid_parameter(format!("from must be a revision, not {f:?}"))
            })?;
            if current.is_none_or(|c| rev > c) {
                return Err(ApiError::invalid_parameter(format!(
                    "revision {rev} is in the future"
                )));
            }
            Some(rev)
        }
    };
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            Code::WebsocketRequired,
            format!("watch is a WebSocket endpoint: {e}"),
        )
    })?;
    let credential = caller.validity();
    Ok(draft_http::ws::limited(upgrade)
        .on_upgrade(move |socket| serve(bp, socket, (prefix, from), credential)))
}

/// Watchers only receive; what they send is ignored. The same keepalive, idle limit and
/// write deadline as every other socket, closed when the watcher's token lapses.
fn options(bp: &Blueprint, credential: Option<Validity>) -> SocketOptions {
    SocketOptions {
        ping_every: draft_http::ws::PING_EVERY,
        idle_limit: draft_http::ws::IDLE_LIMIT,
        write_timeout: bp.config().ws_write_timeout,
        client_data: ClientData::Ignore,
        credential,
    }
}
/// Messages queued between a watch's reader and its socket (and at most [`OUTBOX_BYTES`] of
/// them).
const SOCKET_QUEUE: usize = 256;

async fn serve(
    bp: Blueprint,
    socket: WebSocket,
    (prefix, from): (String, Option<Revision>),
    credential: Option<Validity>,
) {
    let (tx, rx) = outbox(SOCKET_QUEUE, OUTBOX_BYTES);
    let options = options(&bp, credential);
    let shutdown = bp.config().shutdown.clone();
    let reader = tokio::spawn(read(bp, prefix, from, tx));
    let (sink, stream) = socket.split();
    serve_socket(sink, stream, rx, options, shutdown).await;
    reader.abort();
}

/// Queues `message`; `false` once the socket is gone.
async fn send(out: &OutboxSender, message: &WatchMessage) -> bool {
    let Ok(text) = serde_json::to_string(message) else {
        return false;
    };
    out.send(Outbound::Text(Utf8Bytes::from(text)))
        .await
        .is_ok()
}

/// What one watch sends: the state (or the log since `from`), the caught-up marker, then
/// every change, until the socket goes away.
async fn read(bp: Blueprint, prefix: String, from: Option<Revision>, out: OutboxSender) {
    // Where the log replay starts, and the revision to announce as caught up.
    let (start, caught_up) = if let Some(rev) = from {
        (rev.next(), bp.revision())
    } else {
        let (messages, revision) = bp.read(|s| (snapshot(s, &prefix), s.revision()));
        if !send_snapshot(&bp, &out, messages).await {
            return;
        }
        let revision = revision.map(Revision::new);
        (revision.map_or(Revision::new(0), Revision::next), revision)
    };
    let mut pending_marker = Some(caught_up);
    if caught_up.is_none_or(|c| c < start) {
        pending_marker = None;
        if !send(
            &out,
            &WatchMessage::CaughtUp {
                revision: caught_up.map(Revision::get),
            },
        )
        .await
        {
            return;
        }
    }
    let mut tail = bp.log().tail(bp.control(), start.offset());
    loop {
        let Some(Ok(record)) = tail.next().await else {
            let reason = "the node could not read the control log".into();
            let _ = out.send(Outbound::Close(close_code::ERROR, reason)).await;
            return;
        };
        if let Some(m) = decode(&record, &prefix)
            && !send(&out, &m).await
        {
            return;
        }
        if pending_marker.is_some_and(|c| c == Some(Revision::from(record.offset))) {
            pending_marker = None;
            let marker = WatchMessage::CaughtUp {
                revision: Some(record.offset.0),
            };
            if !send(&out, &marker).await {
                return;
            }
        }
    }
}
