//! The pipeline of one WebSocket producer: its frames are stored concurrently (so their
//! appends share the log's group commits with each other and with every other producer),
//! their acknowledgements leave strictly in the order the frames came, and no more than a
//! [`Window`] of frames is taken before they are answered.

use axum::extract::ws::Utf8Bytes;
use draft_http::ApiError;
use draft_http::ws::{Inbound, Outbound};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;

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

fn len(frame: &Inbound) -> usize {
    match frame {
        Inbound::Text(text) => text.len(),
        Inbound::Binary(data) => data.len(),
    }
}

/// Runs one producer: takes frames from `frames` while `window` has room, stores each with
/// `store` (those in flight concurrently), and sends each one's acknowledgement to `acks`, in
/// frame order. A full `acks` (a client that does not read) stops the taking of frames too.
/// Once `frames` ends (the client left, or the shutdown stopped the reading), answers what is
/// in flight, then sends `goodbye`.
///
/// Every frame taken is stored to the end even if the client is gone, so that the duplicate
/// window remembers its events: a retry on a new connection is answered with their offsets
/// instead of storing them twice.
pub(crate) async fn run<S, F>(
    mut frames: mpsc::Receiver<Inbound>,
    acks: mpsc::Sender<Outbound>,
    mut window: Window,
    mut store: S,
    goodbye: Outbound,
) where
    S: FnMut(Inbound) -> F,
    F: Future<Output = Result<Vec<u64>, ApiError>>,
{
    let mut in_flight = FuturesOrdered::new();
    let mut next_seq = 0u64;
    let mut reading = true;
    let mut answering = true;
    loop {
        tokio::select! {
            biased;
            Some((seq, bytes, result)) = in_flight.next() => {
                window.answered(bytes);
                let ack = Outbound::Text(ack_text(seq, result));
                if answering && acks.send(ack).await.is_err() {
                    answering = false;
                }
            }
            frame = frames.recv(), if reading && window.has_room() => match frame {
                Some(frame) => {
                    let bytes = len(&frame);
                    window.take(bytes);
                    let (seq, stored) = (next_seq, store(frame));
                    next_seq += 1;
                    in_flight.push_back(async move { (seq, bytes, stored.await) });
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
        let (tx, frames) = mpsc::channel(8);
        let (acks_tx, mut acks) = mpsc::channel(8);
        // Frame "n" takes n ms to store and is stored at offset n; "bad" fails.
        let store = |frame: Inbound| async move {
            let Inbound::Text(t) = frame else {
                unreachable!("text only")
            };
            let Ok(ms) = t.as_str().parse::<u64>() else {
                return Err(ApiError::new(Code::InvalidEvent, "not a number"));
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(vec![ms])
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
        let (tx, frames) = mpsc::channel(16);
        let (acks_tx, mut acks) = mpsc::channel(16);
        let gate = Arc::new(Semaphore::new(0));
        let stores = Arc::clone(&gate);
        let store = move |_| {
            let gate = Arc::clone(&stores);
            async move {
                gate.acquire().await.expect("open").forget();
                Ok(vec![0])
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
        assert_eq!(tx.capacity(), 16 - 3, "two taken, three wait");
        gate.add_permits(1);
        assert_eq!(ack(acks.recv().await.expect("ack")).seq, 0);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(tx.capacity(), 16 - 2, "one more taken");
        gate.add_permits(4);
        drop(tx);
        for seq in 1..5 {
            assert_eq!(ack(acks.recv().await.expect("ack")).seq, seq);
        }
        task.await.expect("ends");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_taken_are_stored_even_when_the_client_is_gone() {
        let (tx, frames) = mpsc::channel(4);
        let (acks_tx, acks) = mpsc::channel(1);
        let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = Arc::clone(&stored);
        let store = move |_| {
            let count = Arc::clone(&count);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(vec![0])
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
}
