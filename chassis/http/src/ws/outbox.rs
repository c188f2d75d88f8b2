//! [`outbox`]: the queue between the server's side of a socket and [`serve_socket`], bounded
//! in messages **and** in bytes. A sender waits once either bound is reached, so a client
//! that stops reading holds its reader back (which then waits, or reads from disk later)
//! instead of making the node buffer for it. A message larger than the whole byte budget is
//! still taken, alone.
//!
//! [`serve_socket`]: super::serve_socket

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::Outbound;

/// The bytes of text queued for one socket before its sender waits (default for
/// [`outbox`]): 1 MiB, a few dozen events.
pub const OUTBOX_BYTES: usize = 1024 * 1024;

/// The largest byte budget [`outbox`] takes (a semaphore counts in `u32`).
const MAX_BUDGET: usize = u32::MAX as usize >> 4;

/// A message and the bytes of the budget it holds while queued.
struct Queued {
    message: Outbound,
    _bytes: OwnedSemaphorePermit,
}

/// What a queued `message` costs of a `budget`: its text's length, at most the whole budget
/// (so one oversized message is queued alone); a close costs nothing.
#[must_use]
pub fn cost(message: &Outbound, budget: usize) -> usize {
    match message {
        Outbound::Text(text) => text.len().min(budget),
        Outbound::Close(..) => 0,
    }
}

/// A queue for one socket holding at most `messages` messages and `bytes` bytes of text
/// (both at least 1; `bytes` is capped at 256 MiB).
#[must_use]
pub fn outbox(messages: usize, bytes: usize) -> (OutboxSender, Outbox) {
    let budget = bytes.clamp(1, MAX_BUDGET);
    let (tx, rx) = mpsc::channel(messages.max(1));
    let bytes = Arc::new(Semaphore::new(budget));
    let sender = OutboxSender {
        tx,
        bytes: Arc::clone(&bytes),
        budget,
    };
    (sender, Outbox { rx, bytes, budget })
}

/// The socket is gone: what a send to it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxClosed;

impl std::fmt::Display for OutboxClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the socket is gone")
    }
}

impl std::error::Error for OutboxClosed {}

/// The sending half of an [`outbox`]; cloned for every task that sends to the socket.
#[derive(Debug, Clone)]
pub struct OutboxSender {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    budget: usize,
}

impl OutboxSender {
    /// Queues `message`, waiting until both its slot and its bytes are free.
    ///
    /// # Errors
    /// [`OutboxClosed`] once the [`Outbox`] is dropped (also while waiting).
    pub async fn send(&self, message: Outbound) -> Result<(), OutboxClosed> {
        let cost = u32::try_from(cost(&message, self.budget)).map_err(|_| OutboxClosed)?;
        let bytes = tokio::select! {
            permit = Arc::clone(&self.bytes).acquire_many_owned(cost) => {
                permit.map_err(|_| OutboxClosed)?
            }
            () = self.tx.closed() => return Err(OutboxClosed),
        };
        let queued = Queued {
            message,
            _bytes: bytes,
        };
        self.tx.send(queued).await.map_err(|_| OutboxClosed)
    }

    /// Whether a text of `bytes` would be queued now without waiting (racy by nature: a hint
    /// for a sender that would rather do something else than wait).
    #[must_use]
    pub fn has_room(&self, bytes: usize) -> bool {
        self.tx.capacity() > 0 && self.bytes.available_permits() >= bytes.min(self.budget)
    }

    /// How many bytes of text could be queued now without waiting (0 without a free slot).
    #[must_use]
    pub fn room(&self) -> usize {
        if self.tx.capacity() == 0 {
            0
        } else {
            self.bytes.available_permits()
        }
    }

    /// Whether the [`Outbox`] is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The receiving half of an [`outbox`], read by [`serve_socket`](super::serve_socket). A
/// message's bytes are given back as it is taken out.
#[derive(Debug)]
pub struct Outbox {
    rx: mpsc::Receiver<Queued>,
    bytes: Arc<Semaphore>,
    budget: usize,
}

impl Outbox {
    /// The next message; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Outbound> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message, as [`Outbox::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        self.rx.poll_recv(cx).map(|q| q.map(|q| q.message))
    }

    /// The bytes of text queued now.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.budget - self.bytes.available_permits()
    }
}

impl Drop for Outbox {
    /// Wakes the senders waiting for bytes: the socket is gone.
    fn drop(&mut self) {
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn text(n: usize) -> Outbound {
        Outbound::Text("x".repeat(n).into())
    }

    #[test]
    fn a_message_costs_its_text_capped_at_the_budget_and_a_close_nothing() {
        assert_eq!(cost(&text(10), 100), 10);
        assert_eq!(cost(&text(1000), 100), 100);
        assert_eq!(cost(&Outbound::Close(1000, "".into()), 100), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_waits_once_the_bytes_are_used_and_goes_on_as_they_are_taken() {
        let (tx, mut rx) = outbox(100, 1000);
        for _ in 0..3 {
            tx.send(text(300)).await.expect("room");
        }
        assert_eq!(rx.queued_bytes(), 900);
        assert!(tx.has_room(100) && !tx.has_room(101));
        assert_eq!(tx.room(), 100);
        let sender = tx.clone();
        let blocked = tokio::spawn(async move { sender.send(text(300)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!blocked.is_finished(), "over the byte budget: it waits");
        assert!(matches!(rx.recv().await, Some(Outbound::Text(t)) if t.len() == 300));
        blocked
            .await
            .expect("task")
            .expect("sent once there was room");
        assert_eq!(rx.queued_bytes(), 900);
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_message_goes_alone_and_a_close_always_fits() {
        let (tx, mut rx) = outbox(100, 1000);
        tx.send(text(5000)).await.expect("alone");
        assert_eq!(rx.queued_bytes(), 1000);
        tx.send(Outbound::Close(1000, "".into()))
            .await
            .expect("a close costs nothing");
        let sender = tx.clone();
        let blocked = tokio::spawn(async move { sender.send(text(1)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!blocked.is_finished());
        assert!(matches!(rx.recv().await, Some(Outbound::Text(t)) if t.len() == 5000));
        assert!(matches!(rx.recv().await, Some(Outbound::Close(1000, _))));
        blocked.await.expect("task").expect("sent");
    }

    #[tokio::test(start_paused = true)]
    async fn the_count_bounds_too_and_a_dropped_outbox_releases_waiting_senders() {
        let (tx, rx) = outbox(2, 1_000_000);
        tx.send(text(1)).await.expect("room");
        tx.send(text(1)).await.expect("room");
        let sender = tx.clone();
        let by_count = tokio::spawn(async move { sender.send(text(1)).await });
        let (tx2, rx2) = outbox(100, 10);
        tx2.send(text(10)).await.expect("room");
        let by_bytes = tokio::spawn(async move { tx2.send(text(10)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!by_count.is_finished() && !by_bytes.is_finished());
        drop((rx, rx2));
        assert_eq!(by_count.await.expect("task"), Err(OutboxClosed));
        assert_eq!(by_bytes.await.expect("task"), Err(OutboxClosed));
        assert!(tx.is_closed());
    }
}
