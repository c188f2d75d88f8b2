//! [`inbox`]: the queue between [`serve_socket`] and the server's side of a socket that takes
//! the client's data ([`ClientData::Forward`]), bounded in messages **and** in bytes. The
//! socket reads the client's next message only once the inbox has a free slot and holds less
//! than its byte budget, so what waits in it is at most the budget plus one message: a client
//! that sends large messages cannot make the node hold many of them, and one that sends small
//! ones can be many messages ahead, which lets the receiver take them in runs rather than one
//! wake-up each.
//!
//! [`serve_socket`]: super::serve_socket
//! [`ClientData::Forward`]: super::ClientData::Forward

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use super::Inbound;

/// What the two halves share: the bytes queued, and the signal that some were taken.
#[derive(Debug)]
struct Held {
    bytes: AtomicUsize,
    budget: usize,
    taken: Notify,
}

/// A queue of at most `messages` messages, read from the client only while it holds fewer than
/// `bytes` bytes (both at least 1).
#[must_use]
pub fn inbox(messages: usize, bytes: usize) -> (InboxSender, Inbox) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let held = Arc::new(Held {
        bytes: AtomicUsize::new(0),
        budget: bytes.max(1),
        taken: Notify::new(),
    });
    let sender = InboxSender {
        tx,
        held: Arc::clone(&held),
    };
    (sender, Inbox { rx, held })
}

/// The receiver is gone: what [`InboxSender::reserve`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxClosed;

impl std::fmt::Display for InboxClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the receiver of the client's messages is gone")
    }
}

impl std::error::Error for InboxClosed {}

/// The sending half of an [`inbox`], held by [`serve_socket`](super::serve_socket).
#[derive(Debug, Clone)]
pub struct InboxSender {
    tx: mpsc::Sender<Inbound>,
    held: Arc<Held>,
}

impl InboxSender {
    /// Waits until the inbox has a free slot and holds less than its byte budget, and keeps
    /// the slot for the next message (cancel safe: dropping the future loses nothing).
    ///
    /// # Errors
    /// [`InboxClosed`] once the [`Inbox`] is dropped (also while waiting).
    pub async fn reserve(&self) -> Result<InboxPermit, InboxClosed> {
        while self.held.bytes.load(Ordering::Acquire) >= self.held.budget {
            // `notify_one` keeps a wake-up for a taker that came before this wait began.
            tokio::select! {
                () = self.held.taken.notified() => {}
                () = self.tx.closed() => return Err(InboxClosed),
            }
        }
        let permit = self
            .tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| InboxClosed)?;
        Ok(InboxPermit {
            permit,
            held: Arc::clone(&self.held),
        })
    }

    /// A slot for the next message if there is room now: a free slot, and less than the byte
    /// budget held (`None` when full, or once the [`Inbox`] is dropped).
    #[must_use]
    pub fn try_reserve(&self) -> Option<InboxPermit> {
        if self.held.bytes.load(Ordering::Acquire) >= self.held.budget {
            return None;
        }
        let permit = self.tx.clone().try_reserve_owned().ok()?;
        Some(InboxPermit {
            permit,
            held: Arc::clone(&self.held),
        })
    }

    /// Queues `message` once there is room ([`InboxSender::reserve`]).
    ///
    /// # Errors
    /// [`InboxClosed`] once the [`Inbox`] is dropped.
    pub async fn send(&self, message: Inbound) -> Result<(), InboxClosed> {
        self.reserve().await?.send(message);
        Ok(())
    }

    /// Whether the next message would have to wait: no free slot, or the byte budget used.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.tx.capacity() == 0 || self.held.bytes.load(Ordering::Acquire) >= self.held.budget
    }

    /// How many more messages fit, by count alone.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }
}

/// A slot kept in an [`inbox`] for one message.
#[derive(Debug)]
pub struct InboxPermit {
    permit: mpsc::OwnedPermit<Inbound>,
    held: Arc<Held>,
}

impl InboxPermit {
    /// Queues `message` in the slot; its bytes count against the budget until it is taken.
    pub fn send(self, message: Inbound) {
        self.held.bytes.fetch_add(message.len(), Ordering::AcqRel);
        self.permit.send(message);
    }
}

/// The receiving half of an [`inbox`].
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Inbound>,
    held: Arc<Held>,
}

impl Inbox {
    /// The next message; `None` once the sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Inbound> {
        let message = self.rx.recv().await?;
        self.held.bytes.fetch_sub(message.len(), Ordering::AcqRel);
        self.held.taken.notify_one();
        Some(message)
    }

    /// The next message if one is queued now (`None` when empty, or once the sender is gone
    /// and the queue is empty).
    pub fn try_recv(&mut self) -> Option<Inbound> {
        let message = self.rx.try_recv().ok()?;
        self.held.bytes.fetch_sub(message.len(), Ordering::AcqRel);
        self.held.taken.notify_one();
        Some(message)
    }

    /// The bytes of the messages queued now.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.held.bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn text(n: usize) -> Inbound {
        Inbound::Text("x".repeat(n).into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_waits_while_the_bytes_are_used_and_one_message_may_go_over() {
        let (tx, mut rx) = inbox(100, 1000);
        tx.send(text(600)).await.expect("room");
        tx.send(text(600))
            .await
            .expect("under the budget before it: taken");
        assert_eq!(rx.queued_bytes(), 1200);
        assert!(tx.is_full());
        let sender = tx.clone();
        let blocked = tokio::spawn(async move { sender.send(text(1)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!blocked.is_finished(), "over the byte budget: it waits");
        assert_eq!(rx.recv().await.map(|m| m.len()), Some(600));
        blocked
            .await
            .expect("task")
            .expect("sent once under the budget");
        assert_eq!(rx.queued_bytes(), 601);
    }

    #[tokio::test(start_paused = true)]
    async fn the_count_bounds_too_and_a_dropped_inbox_releases_the_sender() {
        let (tx, rx) = inbox(2, 1_000_000);
        tx.send(text(1)).await.expect("room");
        tx.send(text(1)).await.expect("room");
        assert!(tx.is_full());
        assert_eq!(tx.capacity(), 0);
        let sender = tx.clone();
        let by_count = tokio::spawn(async move { sender.send(text(1)).await });
        let (tx2, rx2) = inbox(100, 10);
        tx2.send(text(10)).await.expect("room");
        let by_bytes = tokio::spawn(async move { tx2.send(text(1)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!by_count.is_finished() && !by_bytes.is_finished());
        drop((rx, rx2));
        assert_eq!(by_count.await.expect("task"), Err(InboxClosed));
        assert_eq!(by_bytes.await.expect("task"), Err(InboxClosed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_given_up_loses_nothing() {
        let (tx, mut rx) = inbox(1, 1000);
        tx.send(text(5)).await.expect("room");
        let waited = tokio::time::timeout(Duration::from_millis(10), tx.reserve()).await;
        assert!(waited.is_err(), "no slot: it waits, then gives up");
        assert_eq!(rx.recv().await.map(|m| m.len()), Some(5));
        tx.send(text(7)).await.expect("the slot is free again");
        assert_eq!(rx.recv().await.map(|m| m.len()), Some(7));
        assert_eq!(rx.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn trying_takes_what_fits_now_and_nothing_more() {
        let (tx, mut rx) = inbox(3, 10);
        assert!(rx.try_recv().is_none(), "empty");
        tx.try_reserve().expect("room").send(text(4));
        tx.try_reserve().expect("under the budget").send(text(7));
        assert!(
            tx.try_reserve().is_none(),
            "a slot is free, but 11 of 10 bytes are held"
        );
        assert_eq!(rx.try_recv().map(|m| m.len()), Some(4));
        assert_eq!(rx.queued_bytes(), 7);
        tx.try_reserve()
            .expect("under the budget again")
            .send(text(1));
        tx.try_reserve().expect("one slot left").send(text(1));
        assert!(tx.try_reserve().is_none(), "three messages: no slot");
        drop(rx);
        assert!(tx.try_reserve().is_none(), "the inbox is gone");
    }
}
