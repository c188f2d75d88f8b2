//! What Draft's server WebSockets share: the limits on what a client may send, the close
//! frames, and [`serve_socket`], the one loop that drives a socket (messages out, pings,
//! an idle limit, the client's close, the process's shutdown).
//!
//! tungstenite's defaults would let one client make the node buffer a 64 MiB message
//! (16 MiB frames) before anything looks at it, so the limits are small: the clients of
//! these sockets mostly receive.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade, close_code};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;

/// The largest message (and frame) a client may send: far above any ping or close.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// How often the server pings a client (RFC 6455 §5.5.2).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A client that answers nothing (no pong, no message) for this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// The upgrade with Draft's limits: small messages from the client, and a small read buffer
/// (tungstenite zero-fills its whole read buffer before every read, so the 128 KiB default
/// cost a memset per event sent).
pub fn limited(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4096)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
}

/// A close frame with this code and reason.
#[must_use]
pub fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// The close frame for a read that failed: 1009 for a message over
/// [`MAX_CLIENT_MESSAGE_BYTES`], 1002 for anything else the client got wrong. (If the
/// connection itself failed, sending it fails too, which is harmless.)
#[must_use]
pub fn close_for_read_error(error: axum::Error) -> Message {
    use tokio_tungstenite::tungstenite::Error;
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(_)) => close(
            close_code::SIZE,
            "messages to the node are limited to 64 KiB; it only expects pings and close",
        ),
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

/// What [`serve_socket`] does with a text or binary message from the client.
#[derive(Debug, Clone)]
pub enum ClientData {
    /// Close the socket with 1008 (policy) and this reason: the client should only receive.
    Refuse(&'static str),
    /// Ignore it.
    Ignore,
    /// Hand each text message to this channel, in order, without waiting: the socket's owner
    /// reads them. A binary message is closed with 1003 (unsupported data); a client that
    /// gets more messages ahead than the channel holds is closed with 1008. Once the receiver
    /// is dropped, text messages are ignored (its owner is closing the socket).
    Forward(mpsc::Sender<Utf8Bytes>),
}

/// How [`serve_socket`] keeps a socket alive.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// How often to ping.
    pub ping_every: Duration,
    /// A client silent this long (no pong, no message) is closed with 1008.
    pub idle_limit: Duration,
    /// What to do with the client's messages.
    pub client_data: ClientData,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            ping_every: PING_EVERY,
            idle_limit: IDLE_LIMIT,
            client_data: ClientData::Ignore,
        }
    }
}

/// The most queued messages written before one flush.
const FLUSH_EVERY: usize = 256;

/// Drives one WebSocket until either side ends it: sends what `outbound` yields (a run of
/// queued messages is written with one flush), pings every `ping_every`, closes a client
/// silent for `idle_limit`, answers the client's close, and closes with 1001 when `shutdown`
/// is triggered. If `outbound` ends without a [`Outbound::Close`], the socket is closed with
/// 1011. Generic over the socket's halves so it can be tested without a network; it holds a
/// [`Shutdown::guard`] until its close frame is sent.
pub async fn serve_socket<W, R>(
    mut sink: W,
    mut stream: R,
    mut outbound: mpsc::Receiver<Outbound>,
    options: SocketOptions,
    shutdown: Shutdown,
) where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _draining = shutdown.guard();
    let mut stopping = std::pin::pin!(shutdown.triggered());
    let mut ping = tokio::time::interval(options.ping_every);
    ping.reset();
    let mut last_heard = tokio::time::Instant::now();
    let goodbye = loop {
        tokio::select! {
            message = outbound.recv() => {
                let text = match message {
                    Some(Outbound::Text(text)) => text,
                    Some(Outbound::Close(code, reason)) => break Some(close(code, &reason)),
                    None => break Some(close(close_code::ERROR, "the node stopped sending")),
                };
                match send_run(&mut sink, &mut outbound, text).await {
                    Ok(None) => {}
                    Ok(Some(goodbye)) => break Some(goodbye),
                    Err(()) => break None,
                }
            },
            incoming = stream.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => break Some(close(close_code::NORMAL, "")),
                Some(Err(e)) => break Some(close_for_read_error(e)),
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    match client_data(&options.client_data, message) {
                        Ok(()) => last_heard = tokio::time::Instant::now(),
                        Err(goodbye) => break Some(goodbye),
                    }
                }
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > options.idle_limit {
                    let reason = format!("no pong within {} s", options.idle_limit.as_secs());
                    break Some(close(close_code::POLICY, &reason));
                }
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    break None;
                }
            }
            () = &mut stopping => break Some(close(close_code::AWAY, "node shutting down")),
        }
    };
    if let Some(frame) = goodbye {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
}

/// Handles a text or binary message from the client as `policy` says; `Err` holds the close
/// frame that ends the socket.
fn client_data(policy: &ClientData, message: Message) -> Result<(), Message> {
    use mpsc::error::TrySendError;
    match (policy, message) {
        (ClientData::Refuse(reason), _) => Err(close(close_code::POLICY, reason)),
        (ClientData::Ignore, _) => Ok(()),
        (ClientData::Forward(to), Message::Text(text)) => match to.try_send(text) {
            Ok(()) | Err(TrySendError::Closed(_)) => Ok(()),
            Err(TrySendError::Full(_)) => Err(close(
                close_code::POLICY,
                &format!(
                    "more than {} messages sent ahead of the node reading them",
                    to.max_capacity()
                ),
            )),
        },
        // Only text and binary messages come here.
        (ClientData::Forward(_), _) => Err(close(
            close_code::UNSUPPORTED,
            "this socket takes text messages only",
        )),
    }
}

/// Writes `first` and whatever else is already queued, then flushes once: one write for a
/// run of messages instead of one per message. A close met in the queue is returned, to be
/// sent after the run. `Err` if the socket failed.
async fn send_run<W: Sink<Message> + Unpin>(
    sink: &mut W,
    outbound: &mut mpsc::Receiver<Outbound>,
    first: Utf8Bytes,
) -> Result<Option<Message>, ()> {
    sink.feed(Message::Text(first)).await.map_err(drop)?;
    let mut goodbye = None;
    for _ in 1..FLUSH_EVERY {
        match outbound.try_recv() {
            Ok(Outbound::Text(text)) => sink.feed(Message::Text(text)).await.map_err(drop)?,
            Ok(Outbound::Close(code, reason)) => {
                goodbye = Some(close(code, &reason));
                break;
            }
            Err(_) => break,
        }
    }
    sink.flush().await.map_err(drop)?;
    Ok(goodbye)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc as fmpsc;

    type Incoming = fmpsc::UnboundedSender<Result<Message, axum::Error>>;

    struct Socket {
        sent: fmpsc::UnboundedReceiver<Message>,
        client: Incoming,
        server: mpsc::Sender<Outbound>,
        shutdown: Shutdown,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(options: SocketOptions) -> Socket {
        let (sink, sent) = fmpsc::unbounded();
        let (client, stream) = fmpsc::unbounded();
        let (server, outbound) = mpsc::channel(16);
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve_socket(
            sink,
            stream,
            outbound,
            options,
            shutdown.clone(),
        ));
        Socket {
            sent,
            client,
            server,
            shutdown,
            task,
        }
    }

    fn close_code_of(message: &Message) -> Option<u16> {
        match message {
            Message::Close(Some(frame)) => Some(frame.code),
            _ => None,
        }
    }

    async fn next_non_ping(socket: &mut Socket) -> Message {
        loop {
            match socket.sent.next().await.expect("a message") {
                Message::Ping(_) => {}
                other => return other,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_in_order_then_closes_as_told() {
        let mut s = start(SocketOptions::default());
        for text in ["a", "b"] {
            s.server
                .send(Outbound::Text(text.into()))
                .await
                .expect("open");
        }
        s.server
            .send(Outbound::Close(close_code::ERROR, "failed".into()))
            .await
            .expect("open");
        assert_eq!(next_non_ping(&mut s).await, Message::Text("a".into()));
        assert_eq!(next_non_ping(&mut s).await, Message::Text("b".into()));
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1011));
        s.task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_closed_after_the_idle_limit_and_a_talking_one_is_not() {
        let options = SocketOptions {
            ping_every: Duration::from_secs(1),
            idle_limit: Duration::from_secs(3),
            client_data: ClientData::Ignore,
        };
        let mut s = start(options);
        for _ in 0..6 {
            // Pongs keep it alive well past the idle limit.
            tokio::time::sleep(Duration::from_secs(1)).await;
            s.client
                .unbounded_send(Ok(Message::Pong(bytes::Bytes::new())))
                .expect("open");
        }
        assert!(!s.task.is_finished());
        let closed = next_non_ping(&mut s).await;
        assert_eq!(close_code_of(&closed), Some(1008), "{closed:?}");
        s.task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn refused_client_data_closes_with_policy_and_shutdown_with_going_away() {
        let mut s = start(SocketOptions {
            client_data: ClientData::Refuse("receive only"),
            ..SocketOptions::default()
        });
        s.client
            .unbounded_send(Ok(Message::Text("hello".into())))
            .expect("open");
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1008));
        s.task.await.expect("ends");

        let mut s = start(SocketOptions::default());
        s.client
            .unbounded_send(Ok(Message::Text("ignored".into())))
            .expect("open");
        s.shutdown.trigger();
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1001));
        (&mut s.task).await.expect("ends");
        assert_eq!(s.shutdown.active(), 0, "the guard is released");
    }

    #[tokio::test(start_paused = true)]
    async fn forwarded_text_reaches_the_owner_in_order_and_binary_or_a_flood_is_closed() {
        let (to, mut forwarded) = mpsc::channel(2);
        let mut s = start(SocketOptions {
            client_data: ClientData::Forward(to.clone()),
            ..SocketOptions::default()
        });
        for text in ["one", "two"] {
            s.client
                .unbounded_send(Ok(Message::Text(text.into())))
                .expect("open");
        }
        assert_eq!(forwarded.recv().await.as_deref(), Some("one"));
        assert_eq!(forwarded.recv().await.as_deref(), Some("two"));
        s.server
            .send(Outbound::Text("reply".into()))
            .await
            .expect("open");
        assert_eq!(next_non_ping(&mut s).await, Message::Text("reply".into()));
        s.client
            .unbounded_send(Ok(Message::Binary(bytes::Bytes::from_static(b"x"))))
            .expect("open");
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1003));
        s.task.await.expect("ends");

        // Nobody reads: the third message ahead of the owner closes the socket.
        let (to, _unread) = mpsc::channel(2);
        let mut s = start(SocketOptions {
            client_data: ClientData::Forward(to),
            ..SocketOptions::default()
        });
        for text in ["a", "b", "c"] {
            s.client
                .unbounded_send(Ok(Message::Text(text.into())))
                .expect("open");
        }
        let closed = next_non_ping(&mut s).await;
        assert_eq!(close_code_of(&closed), Some(1008), "{closed:?}");
        s.task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_producer_that_goes_away_closes_with_1011_and_a_client_close_is_answered() {
        let mut s = start(SocketOptions::default());
        let (replacement, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut s.server, replacement));
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1011));

        let mut s = start(SocketOptions::default());
        s.client
            .unbounded_send(Ok(Message::Close(None)))
            .expect("open");
        assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1000));
    }
}
