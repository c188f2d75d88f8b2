//! What Draft's server WebSockets share: the limits on what a client may send, the close
//! frames, and [`serve_socket`], the one loop that drives a socket (messages out, pings,
//! an idle limit, a write deadline, the client's close, the process's shutdown, and, for
//! sockets that take data, the client's messages forwarded with backpressure), fed by an
//! [`outbox`] bounded in messages and bytes.
//!
//! tungstenite's defaults would let one client make the node buffer a 64 MiB message
//! (16 MiB frames) before anything looks at it, so the limits are small: the clients of
//! most of these sockets only receive. A socket that takes data (produce) raises the limit to
//! what it accepts with [`limited_to`].

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade, close_code};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};

use crate::auth::Validity;
use crate::shutdown::Shutdown;

mod inbox;
mod outbox;
mod writer;

pub use inbox::{Inbox, InboxClosed, InboxPermit, InboxSender, inbox};
pub use outbox::{OUTBOX_BYTES, Outbox, OutboxClosed, OutboxSender, cost, outbox};
use writer::Writer;

/// The largest message (and frame) a client may send: far above any ping or close.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// How often the server pings a client (RFC 6455 §5.5.2).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A client that answers nothing (no pong, no message) for this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// A client that takes no write for this long (its TCP window stays shut: it does not read)
/// is closed with 1008; it can connect again and resume from its last offset.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The upgrade with Draft's limits: small messages from the client, and a small read buffer
/// (tungstenite zero-fills its whole read buffer before every read, so the 128 KiB default
/// cost a memset per event sent).
pub fn limited(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    limited_to(upgrade, MAX_CLIENT_MESSAGE_BYTES)
}

/// [`limited`], but taking messages (and frames) of up to `max_message_bytes` from the client:
/// for a socket whose clients send data. A larger message is refused with 1009 as its header
/// arrives, before the node buffers it.
pub fn limited_to(upgrade: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4096)
        .max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
}

/// A close frame with this code and reason.
#[must_use]
pub fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// The close frame for a read that failed: 1009 for a message over the socket's limit
/// ([`MAX_CLIENT_MESSAGE_BYTES`] unless raised by [`limited_to`]), 1002 for anything else the
/// client got wrong. (If the connection itself failed, sending it fails too, which is
/// harmless.)
#[must_use]
pub fn close_for_read_error(error: axum::Error) -> Message {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(CapacityError::MessageTooLong { size, max_size })) => close(
            close_code::SIZE,
            &format!("a message of {size} bytes is over this socket's limit of {max_size} bytes"),
        ),
        Some(Error::Capacity(_)) => {
            close(close_code::SIZE, "the message is over this socket's limits")
        }
        _ => close(close_code::PROTOCOL, "unreadable WebSocket frame"),
    }
}

/// What the server's side of a socket sends through [`serve_socket`].
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A text message.
    Text(Utf8Bytes),
    /// Close with this code and reason, and end the loop.
    Close(u16, Cow<'static, str>),
}

/// A data message from the client, as [`ClientData::Forward`] hands it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(bytes::Bytes),
}

impl Inbound {
    /// The message's bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(data) => data.len(),
        }
    }

    /// Whether the message is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`serve_socket`] does with a text or binary message from the client.
#[derive(Debug, Clone)]
pub enum ClientData {
    /// Close the socket with 1008 (policy) and this reason: the client should only receive.
    Refuse(&'static str),
    /// Ignore it.
    Ignore,
    /// Hand each message on, in order, through this [`inbox`], with backpressure: the socket
    /// reads the next message only once the inbox has room for it (a free slot, and less than
    /// its byte budget held), so a client can be ahead of its receiver by the inbox's bounds
    /// and no more (then it waits on TCP). While the socket holds a client back it does not
    /// count the client as idle. When the shutdown is triggered the socket stops reading and
    /// drops the sender (the receiver sees the end), but it stays open until the server's side
    /// sends its [`Outbound::Close`] (or ends), so what the client sent before can still be
    /// answered.
    Forward(InboxSender),
}

/// How [`serve_socket`] keeps a socket alive.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// How often to ping.
    pub ping_every: Duration,
    /// A client silent this long (no pong, no message) is closed with 1008.
    pub idle_limit: Duration,
    /// A client that takes no write for this long is closed with 1008 ("not reading").
    pub write_timeout: Duration,
    /// What to do with the client's messages.
    pub client_data: ClientData,
    /// How long the token the socket was opened with stays good: once it is revoked or
    /// expires, the socket is closed with 1008 (`None`: no token to lapse).
    pub credential: Option<Validity>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            ping_every: PING_EVERY,
            idle_limit: IDLE_LIMIT,
            write_timeout: WRITE_TIMEOUT,
            client_data: ClientData::Ignore,
            credential: None,
        }
    }
}

/// What one read of the client's side gave.
enum Incoming {
    /// A message or the end of the stream, with the slot to forward data through (when
    /// forwarding).
    Read(Option<Result<Message, axum::Error>>, Option<InboxPermit>),
    /// The receiver of forwarded messages is gone.
    ReceiverGone,
}

/// The client's side of a socket: what to do with its messages, and when it was last heard.
struct ClientSide {
    data: ClientData,
    /// Whether the socket still reads from the client.
    reading: bool,
    last_heard: tokio::time::Instant,
}

impl ClientSide {
    fn new(data: ClientData) -> Self {
        Self {
            data,
            reading: true,
            last_heard: tokio::time::Instant::now(),
        }
    }

    /// The next message, once there is room to forward it (cancel safe).
    async fn next<R>(&self, stream: &mut R) -> Incoming
    where
        R: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let permit = match &self.data {
            ClientData::Forward(to) => match to.reserve().await {
                Ok(permit) => Some(permit),
                Err(_) => return Incoming::ReceiverGone,
            },
            ClientData::Refuse(_) | ClientData::Ignore => None,
        };
        Incoming::Read(stream.next().await, permit)
    }

    /// Handles what [`Self::next`] gave; `Some` is the close frame that ends the socket.
    fn take(&mut self, incoming: Incoming) -> Option<Message> {
        let (message, permit) = match incoming {
            Incoming::Read(message, permit) => (message, permit),
            Incoming::ReceiverGone => {
                self.stop_reading();
                return None;
            }
        };
        let data = match message {
            None | Some(Ok(Message::Close(_))) => return Some(close(close_code::NORMAL, "")),
            Some(Err(e)) => return Some(close_for_read_error(e)),
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Binary(data))) => Inbound::Binary(data),
            Some(Ok(_)) => {
                self.last_heard = tokio::time::Instant::now();
                return None;
            }
        };
        match &self.data {
            ClientData::Refuse(reason) => return Some(close(close_code::POLICY, reason)),
            ClientData::Ignore => {}
            ClientData::Forward(_) => {
                if let Some(permit) = permit {
                    permit.send(data);
                }
            }
        }
        self.last_heard = tokio::time::Instant::now();
        None
    }

    /// After a forwarded message, takes the client's next ones too while they are read
    /// already and the inbox has room, up to [`READ_RUN`]: a producer's read buffer holds many
    /// frames, and one loop turn each cost a wake-up of every branch. `Some` is the close
    /// frame that ends the socket.
    fn take_ready<R>(&mut self, stream: &mut R) -> Option<Message>
    where
        R: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        for _ in 0..READ_RUN {
            let ClientData::Forward(to) = &self.data else {
                return None;
            };
            if !self.reading {
                return None;
            }
            let permit = to.try_reserve()?;
            let message = stream.next().now_or_never()?;
            if let Some(goodbye) = self.take(Incoming::Read(message, Some(permit))) {
                return Some(goodbye);
            }
        }
        None
    }

    /// Whether the server's side answers the shutdown itself (it forwards the client's data).
    fn forwards(&self) -> bool {
        matches!(self.data, ClientData::Forward(_))
    }

    /// Reads no more, and lets the receiver of forwarded messages see their end.
    fn stop_reading(&mut self) {
        self.reading = false;
        self.data = ClientData::Ignore;
    }

    /// How long the client has been silent. A client the socket holds back (no room to
    /// forward its next message, or no longer read at all) is not silent: it is waiting.
    fn silent_for(&mut self) -> Duration {
        let held_back = match &self.data {
            ClientData::Forward(to) => to.is_full(),
            ClientData::Refuse(_) | ClientData::Ignore => !self.reading,
        };
        if held_back {
            self.last_heard = tokio::time::Instant::now();
        }
        self.last_heard.elapsed()
    }
}

/// The most client messages one turn of the loop forwards (see [`ClientSide::take_ready`]).
/// Measured with the node on one core, 8 s runs, with the pipeline taking queued frames in runs
/// as well: 64 producers 201-214k → 218-234k events/s; one producer unchanged (223-239k).
const READ_RUN: usize = 32;
/// The most queued messages written before one flush.
const FLUSH_EVERY: usize = 256;
/// The longest the loop waits for its close frame to be taken once it has decided to end
/// (shorter if the write deadline is): a client that reads gets it at once, and one that does
/// not must not hold the socket (or the process's shutdown) any longer.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Drives one WebSocket until either side ends it: sends what `outbound` yields (a run of
/// queued messages is written with one flush), pings every `ping_every`, closes a client
/// silent for `idle_limit`, closes with 1008 a client that has not taken a write for
/// `write_timeout`, closes with 1008 once the token it was opened with is revoked or expires
/// ([`SocketOptions::credential`]), answers the client's close, and closes with 1001 when `shutdown` is
/// triggered (with [`ClientData::Forward`], the server's side closes instead, once it has
/// answered). If `outbound` ends without a [`Outbound::Close`], the socket is closed with
/// 1011. A write the client does not take never blocks the rest: the pings, the deadlines
/// and the shutdown are watched while it waits, and the close frame is given at most
/// [`CLOSE_GRACE`] (0.5 s). Generic over the socket's halves so it can be tested without a
/// network; it holds a [`Shutdown::guard`] until it ends.
pub async fn serve_socket<W, R>(
    mut sink: W,
    mut stream: R,
    mut outbound: Outbox,
    options: SocketOptions,
    shutdown: Shutdown,
) where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _draining = shutdown.guard();
    let mut stopping = std::pin::pin!(shutdown.triggered());
    let mut stopped = false;
    let mut ping = tokio::time::interval(options.ping_every);
    ping.reset();
    let mut client = ClientSide::new(options.client_data);
    let mut writer = Writer::new(options.write_timeout);
    let checks_credential = options.credential.is_some();
    let mut credential = options.credential;
    let lapsed = async {
        match credential.as_mut() {
            Some(c) => c.lapsed().await,
            None => std::future::pending().await,
        }
    };
    let mut lapsed = std::pin::pin!(lapsed);
    let goodbye = loop {
        tokio::select! {
            written = std::future::poll_fn(|cx| writer.poll_write(cx, &mut sink, &mut outbound)) => {
                match written {
                    Ok(goodbye) => break Some(goodbye),
                    Err(()) => break None,
                }
            },
            incoming = client.next(&mut stream), if client.reading => {
                if let Some(goodbye) = client
                    .take(incoming)
                    .or_else(|| client.take_ready(&mut stream))
                {
                    break Some(goodbye);
                }
            },
            _ = ping.tick() => {
                if client.silent_for() > options.idle_limit {
                    let reason = format!("no pong within {} s", options.idle_limit.as_secs());
                    break Some(close(close_code::POLICY, &reason));
                }
                writer.ping();
            }
            lapse = &mut lapsed, if checks_credential => {
                break Some(close(close_code::POLICY, lapse.reason()));
            }
            () = &mut stopping, if !stopped => {
                stopped = true;
                if !client.forwards() {
                    break Some(close(close_code::AWAY, "node shutting down"));
                }
                client.stop_reading();
            }
        }
    };
    let grace = options.write_timeout.min(CLOSE_GRACE);
    let _ = tokio::time::timeout(grace, async {
        if let Some(frame) = goodbye {
            let _ = sink.send(frame).await;
        }
        let _ = sink.close().await;
    })
    .await;
}

#[cfg(test)]
mod tests;
