//! `GET /v1/watch?prefix=&from=`: a WebSocket of control changes. Without `from`: the current
//! state, a `caught-up` marker, then every change in order. With `from=R`: every change after
//! revision R from the log (so a client that resumes from the last revision it saw misses
//! nothing), the marker, then live changes. `prefix` filters on the key, or on
//! `services/<service>/<instance>` for registry changes.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use draft_http::{ApiError, Code, Query};
use draft_log::{Offset, Record};
use futures::StreamExt;

use crate::blueprint::Blueprint;
use crate::event::ControlEvent;
use crate::projection::Projection;
use crate::wire::{Health, WatchMessage, base64_encode};

const PING_EVERY: Duration = Duration::from_secs(15);

/// The message for a logged control event.
fn message(revision: u64, event: ControlEvent) -> WatchMessage {
    match event {
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
        ControlEvent::Deregistered { service, instance } => WatchMessage::Deregistered {
            revision,
            service,
            instance,
        },
        ControlEvent::Expired { service, instance } => WatchMessage::Expired {
            revision,
            service,
            instance,
        },
    }
}

/// The current state under `prefix`, as messages.
fn snapshot(state: &Projection, prefix: &str) -> Vec<WatchMessage> {
    let mut out: Vec<WatchMessage> = state
        .range(prefix, None, usize::MAX)
        .map(|(k, v)| WatchMessage::Put {
            revision: v.revision,
            key: k.clone(),
            value_base64: base64_encode(&v.value),
        })
        .collect();
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
    out
}

fn decode(record: &Record, prefix: &str) -> Option<WatchMessage> {
    let (event, _) = ControlEvent::from_cloudevent(&record.payload).ok()?;
    event
        .path()
        .starts_with(prefix)
        .then(|| message(record.offset.0, event))
}

/// The handler: parameters are checked before the upgrade.
pub(crate) async fn watch(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["prefix", "from"])?;
    let prefix = q.one("prefix")?.unwrap_or_default().to_owned();
    let current = bp.revision();
    let from = match q.one("from")? {
        None => None,
        Some(f) => {
            let rev: u64 = f.parse().map_err(|_| {
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
    Ok(draft_http::ws::limited(upgrade).on_upgrade(move |socket| serve(bp, socket, prefix, from)))
}

/// Resolves once the node is stopping (the guard `wait_for` returns stays inside, keeping
/// the future `Send`).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.is_ok();
}

async fn send(socket: &mut WebSocket, message: &WatchMessage) -> bool {
    let Ok(text) = serde_json::to_string(message) else {
        return false;
    };
    socket
        .send(Message::Text(Utf8Bytes::from(text)))
        .await
        .is_ok()
}

async fn serve(bp: Blueprint, mut socket: WebSocket, prefix: String, from: Option<u64>) {
    // Where the log replay starts, and the revision to announce as caught up.
    let (start, caught_up) = if let Some(rev) = from {
        (rev + 1, bp.revision())
    } else {
        let (messages, revision) = bp.read(|s| (snapshot(s, &prefix), s.revision()));
        for m in &messages {
            if !send(&mut socket, m).await {
                return;
            }
        }
        (revision.map_or(0, |r| r + 1), revision)
    };
    let mut pending_marker = Some(caught_up);
    if caught_up.is_none_or(|c| c < start) {
        pending_marker = None;
        if !send(
            &mut socket,
            &WatchMessage::CaughtUp {
                revision: caught_up,
            },
        )
        .await
        {
            return;
        }
    }
    let mut tail = bp.log().tail(bp.control(), Offset(start));
    let mut shutdown = bp.shutdown_signal();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let close = loop {
        tokio::select! {
            record = tail.next() => {
                let Some(Ok(record)) = record else {
                    break CloseFrame { code: 1011, reason: Utf8Bytes::from("the node could not read the control log") };
                };
                if let Some(m) = decode(&record, &prefix)
                    && !send(&mut socket, &m).await
                {
                    return;
                }
                if pending_marker.is_some_and(|c| c == Some(record.offset.0)) {
                    pending_marker = None;
                    if !send(&mut socket, &WatchMessage::CaughtUp { revision: Some(record.offset.0) }).await {
                        return;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Message::Close(_))) => return,
                Some(Err(e)) => {
                    let _ = socket.send(draft_http::ws::close_for_read_error(e)).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    return;
                }
            }
            () = stopping(&mut shutdown) => {
                break CloseFrame { code: 1001, reason: Utf8Bytes::from("node shutting down") };
            }
        }
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}
