//! The writing half of [`serve_socket`](super::serve_socket), polled beside everything else
//! the loop waits for, so that a send the client does not take never stops the loop from
//! pinging, noticing the deadlines, or shutting down.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::{Message, close_code};
use futures::Sink;
use tokio::time::{Instant, Sleep};

use super::close;
use super::outbox::Outbox;
use super::{FLUSH_EVERY, Outbound};

/// What one socket is writing: at most one message taken from the outbox and not yet
/// accepted by the sink, a ping to send at the next message boundary, and whether what the
/// sink took still needs a flush.
pub(super) struct Writer {
    in_hand: Option<Message>,
    ping_due: bool,
    unflushed: bool,
    /// Messages written since the last flush.
    run: usize,
    /// When the sink last accepted something (or, if it was idle then, when it was handed
    /// something to write).
    since: Instant,
    /// How long the sink may hold it waiting.
    limit: Duration,
    /// Fires `limit` after `since` (re-armed whenever `since` moves).
    deadline: Pin<Box<Sleep>>,
    armed_for: Instant,
}

impl Writer {
    /// A writer that ends the socket once the sink has held it waiting for `limit`.
    pub(super) fn new(limit: Duration) -> Self {
        let now = Instant::now();
        Self {
            in_hand: None,
            ping_due: false,
            unflushed: false,
            run: 0,
            since: now,
            limit,
            deadline: Box::pin(tokio::time::sleep_until(now + limit)),
            armed_for: now,
        }
    }

    /// Whether it has something the sink has not taken (or flushed) yet.
    pub(super) fn busy(&self) -> bool {
        self.in_hand.is_some() || self.ping_due || self.unflushed
    }

    /// Sends a ping once the message in hand is written.
    pub(super) fn ping(&mut self) {
        self.handed_something();
        self.ping_due = true;
    }

    fn handed_something(&mut self) {
        if !self.busy() {
            self.since = Instant::now();
        }
    }

    /// Writes what `outbox` has (a run of queued messages is flushed once) until the sink or
    /// the outbox has to wait. Ready only to end the socket: with the close frame to send
    /// (the server's side sent it or stopped sending, or the sink has taken nothing for the
    /// limit: 1008), or `Err` if the sink failed.
    pub(super) fn poll_write<W>(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut W,
        outbox: &mut Outbox,
    ) -> Poll<Result<Message, ()>>
    where
        W: Sink<Message> + Unpin,
    {
        loop {
            if self.in_hand.is_none() && self.ping_due {
                self.ping_due = false;
                self.in_hand = Some(Message::Ping(bytes::Bytes::new()));
            }
            if let Some(message) = self.in_hand.take() {
                match Pin::new(&mut *sink).poll_ready(cx) {
                    Poll::Pending => {
                        self.in_hand = Some(message);
                        return self.wait(cx);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                    Poll::Ready(Ok(())) => {}
                }
                if Pin::new(&mut *sink).start_send(message).is_err() {
                    return Poll::Ready(Err(()));
                }
                self.since = Instant::now();
                self.unflushed = true;
                self.run += 1;
                continue;
            }
            if self.run < FLUSH_EVERY
                && let Poll::Ready(next) = outbox.poll_recv(cx)
            {
                match next {
                    Some(Outbound::Text(text)) => {
                        self.handed_something();
                        self.in_hand = Some(Message::Text(text));
                        continue;
                    }
                    Some(Outbound::Close(code, reason)) => {
                        return Poll::Ready(Ok(close(code, &reason)));
                    }
                    None => {
                        let reason = "the node stopped sending";
                        return Poll::Ready(Ok(close(close_code::ERROR, reason)));
                    }
                }
            }
            if !self.unflushed {
                return Poll::Pending;
            }
            match Pin::new(&mut *sink).poll_flush(cx) {
                Poll::Pending => return self.wait(cx),
                Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                Poll::Ready(Ok(())) => {}
            }
            self.unflushed = false;
            self.run = 0;
            self.since = Instant::now();
        }
    }

    /// The sink holds it waiting: pending until the deadline, then the close frame.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, ()>> {
        if self.armed_for != self.since {
            self.armed_for = self.since;
            self.deadline.as_mut().reset(self.since + self.limit);
        }
        ready!(self.deadline.as_mut().poll(cx));
        let reason = not_reading(self.limit);
        Poll::Ready(Ok(close(close_code::POLICY, &reason)))
    }
}

/// The close reason for a client that took no write for `limit`.
fn not_reading(limit: Duration) -> String {
    let ms = limit.as_millis();
    if ms.is_multiple_of(1000) {
        format!("not reading: no write accepted for {} s", ms / 1000)
    } else {
        format!("not reading: no write accepted for {ms} ms")
    }
}
