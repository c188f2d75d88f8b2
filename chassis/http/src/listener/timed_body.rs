//! [`TimedBody`]: a request body that must arrive by a deadline, and [`RequestState`], what
//! the listener and the request's handler share about one request's time.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// What a request's listener and its handler share: when the response must have started by,
/// and whether the body missed its deadline.
#[derive(Debug)]
pub(crate) struct RequestState {
    started: Instant,
    /// The response deadline, in milliseconds after `started` (only ever moved later).
    deadline_ms: AtomicU64,
    body_timed_out: AtomicBool,
}

impl RequestState {
    pub(crate) fn new(started: Instant, timeout: std::time::Duration) -> Self {
        Self {
            started,
            deadline_ms: AtomicU64::new(millis(timeout)),
            body_timed_out: AtomicBool::new(false),
        }
    }

    /// When the response must have started.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + std::time::Duration::from_millis(self.deadline_ms.load(Ordering::Acquire))
    }

    /// Moves the deadline to `at`, if that is later.
    pub(crate) fn extend_to(&self, at: Instant) {
        let ms = millis(at.saturating_duration_since(self.started));
        self.deadline_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Whether the body missed its deadline.
    pub(crate) fn body_timed_out(&self) -> bool {
        self.body_timed_out.load(Ordering::Acquire)
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The error a [`TimedBody`] ends with when its deadline passes.
#[derive(Debug)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body read timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that fails with [`BodyTimedOut`] (and notes it in the [`RequestState`]) if it has
/// not ended by its deadline. The timer is armed only once the body has to wait for the
/// client, so a body that came with its headers costs no timer.
pub(crate) struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
    state: Arc<RequestState>,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, deadline: Instant, state: Arc<RequestState>) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
            ended: false,
            state,
        }
    }

    fn time_out(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.ended = true;
        self.state.body_timed_out.store(true, Ordering::Release);
        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            // A client that trickles bytes is always ready with another one: the clock is
            // checked on every frame once the body has had to wait.
            Poll::Ready(Some(Ok(frame))) => {
                if this.timer.is_some() && Instant::now() >= this.deadline {
                    return this.time_out();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.time_out(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};
    use std::time::Duration;

    fn state() -> Arc<RequestState> {
        Arc::new(RequestState::new(Instant::now(), Duration::from_secs(60)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_is_passed_through() {
        let state = state();
        let inner = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let body = TimedBody::new(
            inner,
            Instant::now() + Duration::from_secs(1),
            state.clone(),
        );
        let bytes = body.collect().await.expect("in time").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert!(!state.body_timed_out());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_waited_for_at_the_deadline_fails_and_says_so() {
        let state = state();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .expect("send");
        let inner = StreamBody::new(tokio_stream_from(rx));
        let started = Instant::now();
        let body = TimedBody::new(inner, started + Duration::from_secs(1), state.clone());
        let e = body.collect().await.expect_err("the rest never comes");
        assert!(e.is::<BodyTimedOut>(), "{e}");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(state.body_timed_out());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_at_the_deadline_even_though_bytes_keep_coming() {
        let state = state();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from_static(b"a"))))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let started = Instant::now();
        let body = TimedBody::new(
            StreamBody::new(tokio_stream_from(rx)),
            started + Duration::from_secs(1),
            state.clone(),
        );
        assert!(body.collect().await.is_err());
        assert!(started.elapsed() <= Duration::from_millis(1100));
        assert!(state.body_timed_out());
        trickle.abort();
    }

    #[test]
    fn the_deadline_only_moves_later() {
        let started = Instant::now();
        let state = RequestState::new(started, Duration::from_secs(60));
        state.extend_to(started + Duration::from_secs(10));
        assert_eq!(state.deadline(), started + Duration::from_secs(60));
        state.extend_to(started + Duration::from_secs(90));
        assert_eq!(state.deadline(), started + Duration::from_secs(90));
    }

    /// The receiver as a stream of frames.
    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, BoxError>> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
