//! A pipelined producer over a WebSocket (`GET /v1/channels/{channel}/produce`): many frames
//! in flight on one connection, acknowledged in order. When the connection drops it
//! reconnects and sends the frames not yet acknowledged again, unchanged: the node's duplicate
//! window (`source` + `id`) answers those it had already stored with their first offsets, so
//! each event is stored once as long as the retry comes within that window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::{Client, ClientError};
use crate::wire::{ProduceAck, SUBPROTOCOL};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a [`Producer`] behaves.
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// The most frames sent and not yet acknowledged (default 1,024, the node's default
    /// window); further frames wait in the producer until acknowledgements come.
    pub max_in_flight: usize,
    /// How long to keep trying to reconnect once the connection drops before the frames not
    /// acknowledged fail with [`ClientError::Connect`] (default 30 s).
    pub reconnect_for: Duration,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            reconnect_for: Duration::from_secs(30),
        }
    }
}

/// A frame and who waits for its acknowledgement.
struct Pending {
    text: Utf8Bytes,
    reply: oneshot::Sender<Result<Vec<u64>, ClientError>>,
}

/// A pipelined producer to one channel, on one WebSocket (see [`Client::producer`]).
///
/// [`send`](Self::send) queues a frame at once (frames go out in the order of the calls) and
/// returns a future of its acknowledgement; at most `max_in_flight` frames are on the wire
/// unacknowledged. Frames that the caller queues beyond that wait in the producer, so bound
/// how many sends are outstanding. Dropping the producer still sends what is queued;
/// [`close`](Self::close) also waits for it.
#[derive(Debug)]
pub struct Producer {
    queue: mpsc::UnboundedSender<Pending>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Opens a pipelined WebSocket producer to `channel`.
    ///
    /// # Errors
    /// [`ClientError::Api`] if the node refuses the channel (for example a reserved one),
    /// [`ClientError::Connect`] if it cannot be reached.
    pub async fn producer(
        &self,
        channel: &str,
        options: ProducerOptions,
    ) -> Result<Producer, ClientError> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let link = Link {
            url: format!("{ws_base}/v1/channels/{channel}/produce"),
            base: self.base.clone(),
            authorization: self.authorization(),
            connector: self.websocket_connector(),
        };
        let socket = link.connect().await?;
        let (queue, frames) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(link, socket, frames, options));
        Ok(Producer { queue, task })
    }
}

impl Producer {
    /// Sends one structured-mode event (its JSON text); resolves to its offset once the node
    /// has stored it durably (for a duplicate, the offset it was first stored at).
    ///
    /// # Errors
    /// (from the future) [`ClientError::Api`] if the node refused the event (its code and
    /// message, as HTTP produce answers), [`ClientError::Connect`] if the node stayed out of
    /// reach for `reconnect_for`.
    pub fn send<S: Into<String>>(
        &self,
        event_json: S,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send + 'static + use<S> {
        let offsets = self.frame(event_json.into());
        async move {
            match offsets.await?.as_slice() {
                [offset] => Ok(*offset),
                other => Err(ClientError::Protocol(format!(
                    "{} offsets for one event",
                    other.len()
                ))),
            }
        }
    }

    /// Sends a JSON array of events, appended atomically; resolves to their offsets.
    pub fn send_batch<S: Into<String>>(
        &self,
        events_json: S,
    ) -> impl Future<Output = Result<Vec<u64>, ClientError>> + Send + 'static + use<S> {
        self.frame(events_json.into())
    }

    fn frame(
        &self,
        text: String,
    ) -> impl Future<Output = Result<Vec<u64>, ClientError>> + Send + 'static + use<> {
        let (reply, answer) = oneshot::channel();
        let text = Utf8Bytes::from(text);
        let queued = self.queue.send(Pending { text, reply }).is_ok();
        async move {
            if !queued {
                return Err(stopped());
            }
            answer.await.unwrap_or_else(|_| Err(stopped()))
        }
    }

    /// Whether the producer has stopped for good (the node stayed out of reach past
    /// `reconnect_for`): every send fails from then on, so open a new one.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Waits until every frame sent is acknowledged (or has failed), then closes.
    pub async fn close(self) {
        drop(self.queue);
        let _ = self.task.await;
    }
}

fn stopped() -> ClientError {
    ClientError::Protocol("the producer's connection has stopped".into())
}

/// Where the producer connects, and with which token.
struct Link {
    url: String,
    base: String,
    authorization: Option<tungstenite::http::HeaderValue>,
    connector: Option<tokio_tungstenite::Connector>,
}

impl Link {
    async fn connect(&self) -> Result<Socket, ClientError> {
        let connect_error = |e: &dyn std::fmt::Display| ClientError::Connect {
            url: self.base.clone(),
            reason: e.to_string(),
        };
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| connect_error(&e))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Some(value) = &self.authorization {
            request.headers_mut().insert("authorization", value.clone());
        }
        let connector = self.connector.clone();
        match Box::pin(tokio_tungstenite::connect_async_tls_with_config(
            request, None, true, connector,
        ))
        .await
        {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(ClientError::from_answer(response.status().as_u16(), &body))
            }
            Err(e) => Err(connect_error(&e)),
        }
    }

    /// Connects again, backing off, for at most `give_up_after`; a refusal (4xx) is final.
    async fn reconnect(&self, give_up_after: Duration) -> Result<Socket, ClientError> {
        let deadline = tokio::time::Instant::now() + give_up_after;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.connect().await {
                Ok(socket) => return Ok(socket),
                Err(e @ ClientError::Api { status, .. }) if status < 500 => return Err(e),
                Err(e) if tokio::time::Instant::now() + pause > deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// How one connection ended.
enum End {
    /// Every frame is acknowledged and the producer is dropped.
    Done,
    /// The connection dropped (or the node is going away): connect again.
    Broken,
    /// The node closed the connection over what was sent (a frame over its limit): the
    /// frames in flight fail with this reason.
    Refused(String),
}

/// Runs connections one after another until the producer is dropped and everything is
/// acknowledged, or the node stays out of reach.
async fn drive(
    link: Link,
    mut socket: Socket,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    options: ProducerOptions,
) {
    let mut resend = VecDeque::new();
    loop {
        match session(socket, &mut resend, &mut queue, options.max_in_flight).await {
            End::Done => return,
            End::Broken | End::Refused(_) => {}
        }
        socket = match link.reconnect(options.reconnect_for).await {
            Ok(socket) => socket,
            Err(e) => {
                queue.close();
                let waiting = std::iter::from_fn(|| queue.try_recv().ok());
                for pending in resend.drain(..).chain(waiting) {
                    let _ = pending.reply.send(Err(e.clone()));
                }
                return;
            }
        };
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection. On return `resend` holds, in order, the frames to send on the next one.
async fn session(
    socket: Socket,
    resend: &mut VecDeque<Pending>,
    queue: &mut mpsc::UnboundedReceiver<Pending>,
    max_in_flight: usize,
) -> End {
    let (mut sink, mut stream) = socket.split();
    let sent = Mutex::new(VecDeque::new());
    let slots = Semaphore::new(max_in_flight.max(1));
    let finished = AtomicBool::new(false);
    let end = {
        let shared = Shared {
            sent: &sent,
            slots: &slots,
            finished: &finished,
        };
        tokio::select! {
            end = shared.write(&mut sink, resend, queue) => end,
            end = shared.read(&mut stream) => end,
        }
    };
    let mut unacknowledged = sent.into_inner().unwrap_or_else(PoisonError::into_inner);
    match &end {
        End::Done => {
            let _ = sink.close().await;
        }
        End::Broken => {}
        End::Refused(reason) => {
            let e = ClientError::Protocol(format!("the node closed the producer: {reason}"));
            for pending in unacknowledged.drain(..) {
                let _ = pending.reply.send(Err(e.clone()));
            }
        }
    }
    // What was sent and not acknowledged goes first, then what was not sent yet.
    unacknowledged.append(resend);
    *resend = unacknowledged;
    end
}

/// What a connection's writer and reader share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    /// Frames sent and not acknowledged, in order.
    sent: &'a Mutex<VecDeque<Pending>>,
    /// One permit per frame that may still be sent.
    slots: &'a Semaphore,
    /// Whether the producer is dropped and everything queued is sent.
    finished: &'a AtomicBool,
}

impl Shared<'_> {
    /// Sends the frames to resend, then the queue's, while there are slots; one flush for a
    /// run of frames.
    async fn write(
        self,
        sink: &mut SplitSink<Socket, Message>,
        resend: &mut VecDeque<Pending>,
        queue: &mut mpsc::UnboundedReceiver<Pending>,
    ) -> End {
        loop {
            match self.slots.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return End::Broken,
            }
            let next = if let Some(pending) = resend.pop_front() {
                pending
            } else if let Some(pending) = queue.recv().await {
                pending
            } else {
                self.finished.store(true, Ordering::SeqCst);
                if lock(self.sent).is_empty() {
                    return End::Done;
                }
                // The reader ends the connection once the last acknowledgement is in.
                return std::future::pending().await;
            };
            let text = next.text.clone();
            lock(self.sent).push_back(next);
            if sink.feed(Message::Text(text)).await.is_err() {
                return End::Broken;
            }
            let idle = resend.is_empty() && queue.is_empty();
            if (idle || self.slots.available_permits() == 0) && sink.flush().await.is_err() {
                return End::Broken;
            }
        }
    }

    /// Reads acknowledgements and answers the frames, in order.
    async fn read(self, stream: &mut SplitStream<Socket>) -> End {
        let mut expected = 0u64;
        while let Some(message) = stream.next().await {
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(frame)) => return closed(frame.as_ref()),
                Ok(_) => continue,
                Err(_) => return End::Broken,
            };
            let Ok(ack) = serde_json::from_str::<ProduceAck>(text.as_str()) else {
                return End::Refused(format!("an acknowledgement that does not parse: {text}"));
            };
            let Some(pending) = lock(self.sent).pop_front() else {
                return End::Refused(format!("an acknowledgement of an unsent frame: {text}"));
            };
            if ack.seq != expected {
                lock(self.sent).push_front(pending);
                return End::Refused(format!("acknowledgement {} for frame {expected}", ack.seq));
            }
            expected += 1;
            let Some(answer) = answer(ack) else {
                // The node is going away: this frame and the rest go to the next connection.
                lock(self.sent).push_front(pending);
                return End::Broken;
            };
            let _ = pending.reply.send(answer);
            self.slots.add_permits(1);
            if self.finished.load(Ordering::SeqCst) && lock(self.sent).is_empty() {
                return End::Done;
            }
        }
        End::Broken
    }
}

/// How a close from the node ends the connection: going away or failing is worth a new
/// connection; any other close is about what was sent.
fn closed(frame: Option<&tungstenite::protocol::CloseFrame>) -> End {
    match frame {
        Some(f) if !matches!(u16::from(f.code), 1000 | 1001 | 1011) => {
            End::Refused(format!("{} ({})", f.reason, u16::from(f.code)))
        }
        _ => End::Broken,
    }
}

/// A frame's result from its acknowledgement; `None` if it should be sent again (the node
/// is shutting down and did not store it).
fn answer(ack: ProduceAck) -> Option<Result<Vec<u64>, ClientError>> {
    if let Some(e) = ack.error {
        if e.code == "shutting_down" {
            return None;
        }
        return Some(Err(ClientError::Api {
            status: status_of(&e.code),
            code: e.code,
            message: e.message,
        }));
    }
    Some(ack.offsets.ok_or_else(|| {
        ClientError::Protocol("an acknowledgement with neither offsets nor error".into())
    }))
}

/// The HTTP status HTTP produce answers an error code with.
fn status_of(code: &str) -> u16 {
    match code {
        "too_large" => 413,
        "unsupported_media_type" => 415,
        "storage_error" | "internal" => 500,
        "shutting_down" | "not_ready" | "storage_failed" => 503,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorDetail;

    fn error(code: &str) -> ProduceAck {
        ProduceAck {
            seq: 0,
            offsets: None,
            error: Some(ErrorDetail {
                code: code.into(),
                message: "m".into(),
            }),
        }
    }

    #[test]
    fn acks_become_offsets_final_errors_or_a_retry() {
        let ok = ProduceAck {
            seq: 3,
            offsets: Some(vec![9]),
            error: None,
        };
        assert_eq!(answer(ok), Some(Ok(vec![9])));
        assert!(answer(error("shutting_down")).is_none(), "sent again");
        let Some(Err(ClientError::Api { status, code, .. })) = answer(error("too_large")) else {
            panic!("a final error")
        };
        assert_eq!((status, code.as_str()), (413, "too_large"));
        assert!(matches!(
            answer(error("invalid_event")),
            Some(Err(ClientError::Api { status: 400, .. }))
        ));
    }

    #[test]
    fn going_away_reconnects_and_a_refusal_does_not() {
        use tungstenite::protocol::CloseFrame;
        let frame = |code: u16| CloseFrame {
            code: code.into(),
            reason: "r".into(),
        };
        assert!(matches!(closed(None), End::Broken));
        assert!(matches!(closed(Some(&frame(1001))), End::Broken));
        assert!(matches!(closed(Some(&frame(1009))), End::Refused(_)));
    }
}
