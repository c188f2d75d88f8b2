//! The pipeline of one WebSocket producer: its frames are stored concurrently (so their
//! appends share the log's group commits with each other and with every other producer),
//! their acknowledgements leave strictly in the order the frames came, and no more than a
//! [`Window`] of frames is taken before they are answered.

use axum::extract::ws::Utf8Bytes;
use draft_http::ApiError;
use draft_http::ws::{Inbound, Inbox, Outbound, OutboxSender};
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::wire::{ErrorDetail, ProduceAck};

/// How much a producer may have sent and not yet had answered: frames and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    max_frames: usize,
    max_bytes: usize,
    frames: usize,
    bytes: usize,
}

impl Window {
    /// An empty window of at most `max_frames` frames and `max_bytes` bytes.
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            max_frames,
            max_bytes,
            frames: 0,
            bytes: 0,
        }
    }

    /// Whether another frame may be taken: always when nothing is in flight (so that one
    /// frame of any size gets through), else while both bounds hold.
    pub(crate) fn has_room(&self) -> bool {
        self.frames == 0 || (self.frames < self.max_frames && self.bytes < self.max_bytes)
    }

    /// A frame of `bytes` was taken.
    pub(crate) fn take(&mut self, bytes: usize) {
        self.frames += 1;
        self.bytes += bytes;
    }

    /// A frame of `bytes` was answered.
    pub(crate) fn answered(&mut self, bytes: usize) {
        self.frames = self.frames.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// The acknowledgement of frame `seq`: its offsets, or the error HTTP would answer with.
pub(crate) fn ack_text(seq: u64, result: Result<Vec<u64>, ApiError>) -> Utf8Bytes {
    let ack = match result {
        Ok(offsets) => ProduceAck {
            seq,
            offsets: Some(offsets),
            error: None,
        },
        Err(e) => ProduceAck {
            seq,
            offsets: None,
            error: Some(ErrorDetail {
                code: e.code().as_str().to_owned(),
                message: e.message().to_owned(),
            }),
        },
    };
    // A struct of numbers and strings always serializes.
    serde_json::to_string(&ack).unwrap_or_default().into()
}

/// How many groups of frames one producer has being stored at once. Frames that arrive
/// meanwhile gather into the next group, which is stored with one append: a connection that
/// pipelines single events pays one append per group, not one per event, as the log's
/// writer pays one fsync per group of appends.
const GROUPS_IN_FLIGHT: usize = 2;
/// A second group goes out while the first is still being stored only once it has gathered
/// this many frames. A busy connection so overlaps validating one group with storing the
/// other; a connection among many, whose frames come slowly, waits and sends larger groups,
/// so 64 connections do not make 128 small appends per commit. (Measured with the node on
/// one core, 8 s runs: one group at a time, two of any size, and this rule all gave 160-240k
/// events/s on one connection and 100-190k on 64, within the day's run-to-run spread; storing
/// frames in groups at all took one connection from 106k to 224k.)
const SECOND_GROUP_FRAMES: usize = 32;

/// A group of frames being gathered: their sequence numbers start at `first`.
struct Gathering {
    first: u64,
    frames: Vec<Inbound>,
    bytes: Vec<usize>,
}

impl Gathering {
    /// Adds `frame` to the group, and its bytes to `window`.
    fn push(&mut self, frame: Inbound, window: &mut Window) {
        let bytes = frame.len();
        window.take(bytes);
        self.frames.push(frame);
        self.bytes.push(bytes);
    }
}

/// Runs one producer: takes frames from `frames` while `window` has room, stores them in
/// groups with `store` (which answers one result per frame, in order; at most
/// [`GROUPS_IN_FLIGHT`] groups at once, the next gathering meanwhile), and sends each frame's
/// acknowledgement to `acks`, in frame order. A full `acks` (a client that does not read)
/// stops the taking of frames too.
///
/// Once `frames` ends (the client left, or the shutdown stopped the reading), answers what is
/// in flight, then sends `goodbye`.
///
/// Every frame taken is stored to the end even if the client is gone, so that the duplicate
/// window remembers its events: a retry on a new connection is answered with their offsets
/// instead of storing them twice.
pub(crate) async fn run<S, F>(
    mut frames: Inbox,
    acks: OutboxSender,
    mut window: Window,
    mut store: S,
    goodbye: Outbound,
) where
    S: FnMut(Vec<Inbound>) -> F,
    F: Future<Output = Vec<Result<Vec<u64>, ApiError>>>,
{
    let mut in_flight = FuturesOrdered::new();
    let mut next = Gathering {
        first: 0,
        frames: Vec::new(),
        bytes: Vec::new(),
    };
    let mut reading = true;
    let mut answering = true;
    loop {
        let ready = match in_flight.len() {
            0 => !next.frames.is_empty(),
            n => n < GROUPS_IN_FLIGHT && next.frames.len() >= SECOND_GROUP_FRAMES,
        };
        if ready {
            let first = next.first + next.frames.len() as u64;
            let group = std::mem::replace(
                &mut next,
                Gathering {
                    first,
                    frames: Vec::new(),
                    bytes: Vec::new(),
                },
            );
            let stored = store(group.frames);
            in_flight.push_back(async move { (group.first, group.bytes, stored.await) });
        }
        tokio::select! {
            biased;
            Some((first, bytes, results)) = in_flight.next() => {
                for (i, (bytes, result)) in bytes.into_iter().zip(results).enumerate() {
                    window.answered(bytes);
                    let ack = Outbound::Text(ack_text(first + i as u64, result));
                    if answering && acks.send(ack).await.is_err() {
                        answering = false;
                    }
                }
            }
            frame = frames.recv(), if reading && window.has_room() => match frame {
                Some(frame) => {
                    next.push(frame, &mut window);
                    // Take what else is queued now in the same turn.
                    while window.has_room() {
                        let Some(frame) = frames.try_recv() else { break };
                        next.push(frame, &mut window);
                    }
                }
                None => reading = false,
            },
            else => break,
        }
    }
    if answering {
        let _ = acks.send(goodbye).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::ws::close_code;
    use draft_http::Code;
    use draft_http::ws::{OUTBOX_BYTES, inbox, outbox};
    use tokio::sync::Semaphore;

    use super::*;

    fn text(s: &str) -> Inbound {
        Inbound::Text(s.into())
    }

    fn ack(message: Outbound) -> ProduceAck {
        match message {
            Outbound::Text(t) => serde_json::from_str(t.as_str()).expect("an ack"),
            Outbound::Close(code, reason) => panic!("closed {code}: {reason}"),
        }
    }

    #[test]
    fn the_window_bounds_frames_and_bytes_but_always_takes_one() {
        let mut w = Window::new(3, 100);
        assert!(w.has_room());
        w.take(500);
        assert!(!w.has_room(), "over the bytes");
        w.answered(500);
        assert!(w.has_room(), "empty again");
        for _ in 0..3 {
            assert!(w.has_room());
            w.take(10);
        }
        assert!(!w.has_room(), "three frames");
        w.answered(10);
        assert!(w.has_room());
        w.take(60);
        assert!(!w.has_room(), "80 bytes of frames + 60 is over 100");
        w.answered(60);
        w.answered(10);
        w.answered(10);
        assert_eq!(w, Window::new(3, 100));
    }

    #[test]
    fn an_ack_carries_the_offsets_or_the_http_error() {
        assert_eq!(
            ack_text(4, Ok(vec![7, 8])).as_str(),
            r#"{"seq":4,"offsets":[7,8]}"#
        );
        let e = ApiError::new(Code::InvalidEvent, "id is missing");
        assert_eq!(
            ack_text(5, Err(e)).as_str(),
            r#"{"seq":5,"error":{"code":"invalid_event","message":"id is missing"}}"#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acks_leave_in_frame_order_though_stores_finish_out_of_order() {
        let (tx, frames) = inbox(8, 1 << 20);
        let (acks_tx, mut acks) = outbox(8, OUTBOX_BYTES);
        // Frame "n" takes n ms to store and is stored at offset n; "bad" fails. A group
        // takes as long as its slowest frame.
        let store = |frames: Vec<Inbound>| async move {
            let parsed: Vec<Option<u64>> = frames
                .iter()
                .map(|f| match f {
                    Inbound::Text(t) => t.as_str().parse::<u64>().ok(),
                    Inbound::Binary(_) => None,
                })
                .collect();
            let ms = parsed.iter().flatten().max().copied().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            parsed
                .into_iter()
                .map(|n| {
                    n.map(|n| vec![n])
                        .ok_or_else(|| ApiError::new(Code::InvalidEvent, "not a number"))
                })
                .collect::<Vec<_>>()
        };
        let started = tokio::time::Instant::now();
        let goodbye = Outbound::Close(close_code::AWAY, "bye".into());
        let task = tokio::spawn(run(
            frames,
            acks_tx,
            Window::new(8, 1 << 20),
            store,
            goodbye,
        ));
        for frame in ["30", "10", "bad", "20"] {
            tx.send(text(frame)).await.expect("open");
        }
        drop(tx);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(ack(acks.recv().await.expect("an ack")));
        }
        let seqs: Vec<u64> = got.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3]);
        assert_eq!(got[0].offsets, Some(vec![30]));
        assert_eq!(got[1].offsets, Some(vec![10]));
        assert_eq!(
            got[2].error.as_ref().map(|e| e.code.as_str()),
            Some("invalid_event")
        );
        assert_eq!(got[3].offsets, Some(vec![20]));
        assert!(
            started.elapsed() < Duration::from_millis(60),
            "stored concurrently, not one after another: {:?}",
            started.elapsed()
        );
        assert!(matches!(acks.recv().await, Some(Outbound::Close(1001, _))));
        task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_stops_taking_frames_until_one_is_answered() {
        let (tx, frames) = inbox(16, 1 << 20);
        let (acks_tx, mut acks) = outbox(16, OUTBOX_BYTES);
        let gate = Arc::new(Semaphore::new(0));
        let stores = Arc::clone(&gate);
        let store = move |frames: Vec<Inbound>| {
            let gate = Arc::clone(&stores);
            async move {
                gate.acquire().await.expect("open").forget();
                frames.iter().map(|_| Ok(vec![0])).collect::<Vec<_>>()
            }
        };
        let goodbye = Outbound::Close(close_code::AWAY, "bye".into());
        let task = tokio::spawn(run(
            frames,
            acks_tx,
            Window::new(2, 1 << 20),
            store,
            goodbye,
        ));
        for _ in 0..5 {
            tx.send(text("{}")).await.expect("open");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            tx.capacity(),
            16 - 3,
            "two taken (as one group), three wait"
        );
        gate.add_permits(1);
        assert_eq!(ack(acks.recv().await.expect("ack")).seq, 0);
        assert_eq!(ack(acks.recv().await.expect("ack")).seq, 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(tx.capacity(), 16 - 1, "two more taken, one waits");
        gate.add_permits(4);
        drop(tx);
        for seq in 2..5 {
            assert_eq!(ack(acks.recv().await.expect("ack")).seq, seq);
        }
        task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_taken_are_stored_even_when_the_client_is_gone() {
        let (tx, frames) = inbox(4, 1 << 20);
        let (acks_tx, acks) = outbox(1, OUTBOX_BYTES);
        let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = Arc::clone(&stored);
        let store = move |frames: Vec<Inbound>| {
            let count = Arc::clone(&count);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                count.fetch_add(frames.len() as u64, std::sync::atomic::Ordering::SeqCst);
                frames.iter().map(|_| Ok(vec![0])).collect::<Vec<_>>()
            }
        };
        let goodbye = Outbound::Close(close_code::AWAY, "bye".into());
        let task = tokio::spawn(run(
            frames,
            acks_tx,
            Window::new(8, 1 << 20),
            store,
            goodbye,
        ));
        for _ in 0..3 {
            tx.send(text("{}")).await.expect("open");
        }
        drop(acks);
        drop(tx);
        task.await.expect("ends");
        assert_eq!(stored.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn frames_that_arrive_while_groups_are_stored_gather_into_one_group() {
        let (tx, frames) = inbox(64, 1 << 20);
        let (acks_tx, mut acks) = outbox(64, OUTBOX_BYTES);
        let gate = Arc::new(Semaphore::new(0));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stores, seen) = (Arc::clone(&gate), Arc::clone(&sizes));
        let store = move |frames: Vec<Inbound>| {
            let gate = Arc::clone(&stores);
            seen.lock().expect("lock").push(frames.len());
            async move {
                gate.acquire().await.expect("open").forget();
                frames.iter().map(|_| Ok(vec![0])).collect::<Vec<_>>()
            }
        };
        let goodbye = Outbound::Close(close_code::AWAY, "bye".into());
        let task = tokio::spawn(run(
            frames,
            acks_tx,
            Window::new(64, 1 << 20),
            store,
            goodbye,
        ));
        let settle = || tokio::time::sleep(Duration::from_millis(10));
        // The first frame goes alone; while it is stored, the next ones gather, and a second
        // group goes out beside it only once it has SECOND_GROUP_FRAMES.
        tx.send(text("{}")).await.expect("open");
        settle().await;
        for _ in 1..SECOND_GROUP_FRAMES {
            tx.send(text("{}")).await.expect("open");
        }
        settle().await;
        assert_eq!(
            *sizes.lock().expect("lock"),
            vec![1],
            "one short of a group"
        );
        for _ in 0..9 {
            tx.send(text("{}")).await.expect("open");
        }
        settle().await;
        assert_eq!(
            *sizes.lock().expect("lock"),
            vec![1, 40],
            "the frames queued together went as one group"
        );
        for _ in 0..8 {
            tx.send(text("{}")).await.expect("open");
        }
        settle().await;
        assert_eq!(sizes.lock().expect("lock").len(), 2, "both slots are busy");
        gate.add_permits(3);
        drop(tx);
        for seq in 0..49 {
            assert_eq!(ack(acks.recv().await.expect("ack")).seq, seq);
        }
        task.await.expect("ends");
        // The eight that came while both groups were stored waited for a slot, as one group.
        assert_eq!(*sizes.lock().expect("lock"), vec![1, 40, 8]);
    }
}
