//! One group member's WebSocket: it joins the group, waits as a standby until it is active,
//! then receives the channel from the group's position and sends acknowledgements
//! (`{"ack": OFFSET}` text messages, forwarded by [`serve_socket`]). It leaves the group
//! however the socket ends.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Utf8Bytes, WebSocket, close_code};
use draft_http::auth::Validity;
use draft_http::ws::{
    ClientData, Inbound, Inbox, OUTBOX_BYTES, Outbound, OutboxSender, SocketOptions, inbox, outbox,
    serve_socket,
};
use draft_log::Offset;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::Catalyst;
use crate::cloudevent::Filter;
use crate::group_wire::{Ack, CLOSE_ACK_TIMEOUT, CLOSE_GROUP_DELETED, CLOSE_GROUP_MOVED};
use crate::groups::{GroupKey, Groups, MemberId, Signal};
use crate::reader::{Delivery, Stop, read_channel};

/// Events queued between a member's reader and its socket (and at most [`OUTBOX_BYTES`] of
/// them).
const SOCKET_QUEUE: usize = 256;
/// Acknowledgements a client may send ahead of the node reading them, and their bytes (an
/// acknowledgement is a few dozen; a client may send messages of up to 64 KiB, and the node
/// holds at most this budget and one of them).
const INBOUND_QUEUE: usize = 1024;
const INBOUND_BYTES: usize = 64 * 1024;
/// The longest close reason a WebSocket close frame holds, in bytes.
const MAX_REASON: usize = 123;

/// Serves one member until its socket ends.
pub(crate) async fn run(
    state: Catalyst,
    key: GroupKey,
    filter: Filter,
    (address, credential): (SocketAddr, Option<Validity>),
    socket: WebSocket,
) {
    state.metrics().consumer_connected();
    let (out, outbound) = outbox(SOCKET_QUEUE, OUTBOX_BYTES);
    let (forward, inbound) = inbox(INBOUND_QUEUE, INBOUND_BYTES);
    let options = SocketOptions {
        ping_every: draft_http::ws::PING_EVERY,
        idle_limit: draft_http::ws::IDLE_LIMIT,
        write_timeout: state.config().ws_write_timeout,
        client_data: ClientData::Forward(forward),
        credential,
    };
    let (sink, stream) = socket.split();
    let member = Member::join(&state, key, filter, address);
    let session = async move {
        if let Some((member, signals)) = member {
            member.drive(signals, inbound, out).await;
        } else {
            let reason = "the group was deleted; connect again to create it anew";
            let _ = out
                .send(Outbound::Close(CLOSE_GROUP_DELETED, reason.into()))
                .await;
        }
    };
    tokio::join!(
        serve_socket(sink, stream, outbound, options, state.shutdown()),
        session
    );
    state.metrics().consumer_disconnected();
}

/// A member of a group; leaves it when dropped.
struct Member {
    state: Catalyst,
    groups: Arc<Groups>,
    key: GroupKey,
    id: MemberId,
    filter: Filter,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.groups.leave(&self.key, self.id);
    }
}

/// Where an active member's reader hands each event: noted as delivered, then queued for
/// the socket. It stops as soon as the member is no longer active.
struct ToMember {
    groups: Arc<Groups>,
    key: GroupKey,
    id: MemberId,
    out: OutboxSender,
}

impl Delivery for ToMember {
    async fn deliver(&mut self, offset: u64, text: Utf8Bytes) -> bool {
        self.groups.delivered(&self.key, self.id, offset)
            && self.out.send(Outbound::Text(text)).await.is_ok()
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.out.has_room(bytes)
    }

    fn room(&self) -> usize {
        self.out.room()
    }
}

impl Member {
    fn join(
        state: &Catalyst,
        key: GroupKey,
        filter: Filter,
        address: SocketAddr,
    ) -> Option<(Self, mpsc::UnboundedReceiver<Signal>)> {
        let groups = state.groups();
        let (id, signals) = groups.join(&key, address)?;
        let member = Self {
            state: state.clone(),
            groups,
            key,
            id,
            filter,
        };
        Some((member, signals))
    }

    /// Follows the member's signals and acknowledgements until the socket ends or the member
    /// must be closed.
    async fn drive(
        self,
        mut signals: mpsc::UnboundedReceiver<Signal>,
        mut inbound: Inbox,
        out: OutboxSender,
    ) {
        let mut reader: Option<JoinHandle<Stop>> = None;
        let goodbye = loop {
            tokio::select! {
                signal = signals.recv() => match signal {
                    Some(Signal::Activate { from }) => {
                        if let Some(old) = reader.replace(self.read_from(from, out.clone())) {
                            old.abort();
                        }
                    }
                    Some(Signal::Lost { timeout_ms, resume }) => break Some((
                        CLOSE_ACK_TIMEOUT,
                        format!(
                            "no ack for {timeout_ms} ms: lost its place in the group, which \
                             resumes at offset {resume}"
                        ),
                    )),
                    Some(Signal::Moved) => break Some((
                        CLOSE_GROUP_MOVED,
                        "this node stopped serving the group (its lock was not renewed); \
                         connect again to resume after the last acknowledgement"
                            .to_owned(),
                    )),
                    Some(Signal::Deleted) => break Some((
                        CLOSE_GROUP_DELETED,
                        "the group was deleted on another node".to_owned(),
                    )),
                    None => break None,
                },
                message = inbound.recv() => match message {
                    // The socket stopped reading: the node is shutting down (or the client
                    // left, and then the close goes nowhere).
                    None => break Some((close_code::AWAY, "node shutting down".to_owned())),
                    Some(Inbound::Text(text)) => if let Err(reason) = self.ack(&text) {
                        break Some((close_code::POLICY, reason));
                    },
                    Some(Inbound::Binary(_)) => break Some((
                        close_code::UNSUPPORTED,
                        r#"acknowledgements are text frames: {"ack": OFFSET}"#.to_owned(),
                    )),
                },
                stop = finished(&mut reader) => {
                    reader = None;
                    if let Stop::Failed(e) = stop {
                        tracing::error!(channel = %self.key.channel, group = %self.key.group,
                            error = %e, "group member stopped");
                        let reason = "the node could not read the channel".to_owned();
                        break Some((close_code::ERROR, reason));
                    }
                    // Stop::Disconnected: no longer active; the signal saying why follows.
                }
            }
        };
        if let Some(reader) = reader {
            reader.abort();
        }
        if let Some((code, reason)) = goodbye {
            close(&out, &mut inbound, code, reason).await;
        }
    }

    /// Starts reading the channel from `from` for this member.
    fn read_from(&self, from: u64, out: OutboxSender) -> JoinHandle<Stop> {
        let to = ToMember {
            groups: Arc::clone(&self.groups),
            key: self.key.clone(),
            id: self.id,
            out,
        };
        tokio::spawn(read_channel(
            self.state.shared_log(),
            self.state.feeds(),
            self.key.channel.partition().clone(),
            Offset(from),
            self.filter.clone(),
            to,
        ))
    }

    /// Applies an acknowledgement message; `Err` is why the socket is closed (1008).
    fn ack(&self, text: &str) -> Result<(), String> {
        let Ok(Ack { ack }) = serde_json::from_str(text) else {
            let mut shown: String = text.chars().take(24).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            return Err(format!(r#"expected {{"ack": OFFSET}}, not {shown:?}"#));
        };
        self.groups
            .ack(&self.key, self.id, ack)
            .map_err(|e| e.to_string())
    }
}

/// Resolves when the reader (if any) ends.
async fn finished(reader: &mut Option<JoinHandle<Stop>>) -> Stop {
    match reader {
        Some(task) => task
            .await
            .unwrap_or_else(|e| Stop::Failed(format!("the reader task failed: {e}"))),
        None => std::future::pending().await,
    }
}

/// Queues the close frame, reading (and dropping) what the client still sends meanwhile so
/// that the socket loop never waits on us.
async fn close(out: &OutboxSender, inbound: &mut Inbox, code: u16, mut reason: String) {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    let send = out.send(Outbound::Close(code, reason.into()));
    let mut send = std::pin::pin!(send);
    loop {
        tokio::select! {
            _ = &mut send => return,
            message = inbound.recv() => if message.is_none() {
                return;
            },
        }
    }
}
