//! Runs one hook: connects its consumer (a group member, or a plain consumer), hands each
//! event to the handler with retries, dead-letters what cannot be handled, acknowledges, and
//! reconnects with back-off whenever the connection drops, until the intake is stopped.
//!
//! Acknowledgements are cumulative, so while more events are already waiting on the socket
//! the runner acknowledges every 128 handled events instead of each one; it acknowledges at
//! once whenever it is about to wait, and before it stops. An event is never acknowledged
//! before its handler returned `Ok` or it was stored in the dead-letter channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use draft_catalyst::client::{GroupConsumer, ReadOptions};
use draft_http::{ClientError, Shutdown};
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde_json::json;
use tokio::time::Instant;
use tracing::{Instrument as _, info, info_span, warn};

use super::acks::Acks;
use super::{Handler, Hook, HookContext, HookError};
use crate::backoff::{Backoff, jitter_fraction, jittered, nth_delay};
use crate::event::{Event, NewEvent};
use crate::metrics::HookLabels;
use crate::shared::Shared;
use crate::telemetry::TraceContext;

/// The node's default group timeout, assumed for a hook that does not set its own.
const DEFAULT_GROUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a group hook's lag is read from the node.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// One hook's runner.
pub(crate) struct Runner {
    pub(crate) hook: Hook,
    pub(crate) handler: Handler,
    pub(crate) shared: Arc<Shared>,
    /// Whether its consumer is connected (for `/readyz`).
    pub(crate) connected: Arc<AtomicBool>,
    /// Stops the intake (the running handler finishes first).
    pub(crate) stop: Shutdown,
}

/// Where the events come from.
enum Intake {
    Group(Box<GroupConsumer>),
    Plain(BoxStream<'static, Result<String, ClientError>>),
}

impl Intake {
    async fn next(&mut self) -> Option<Result<String, ClientError>> {
        match self {
            Self::Group(g) => g.next().await,
            Self::Plain(s) => s.next().await,
        }
    }

    async fn ack(&mut self, offset: u64) -> Result<(), ClientError> {
        match self {
            Self::Group(g) => g.ack(offset).await,
            Self::Plain(_) => Ok(()),
        }
    }

    async fn close(self) {
        if let Self::Group(g) = self {
            (*g).close().await;
        }
    }
}

/// How consuming from one connection ended.
enum End {
    /// The intake was stopped; everything handled is acknowledged.
    Stopped,
    /// The connection was lost (or an event could not be handled nor dead-lettered).
    Lost(String),
}

/// What became of one event.
enum Outcome {
    /// Handled (or dead-lettered): acknowledge it.
    Done,
    /// Neither: it must be delivered again (the intake stopped during a retry delay, or the
    /// dead-letter channel could not be reached).
    Again(String),
}

impl Runner {
    fn labels(&self) -> HookLabels {
        HookLabels {
            channel: self.hook.channel.clone(),
            group: self.hook.group.clone().unwrap_or_default(),
        }
    }

    /// Runs until the intake is stopped.
    pub(crate) async fn run(self) {
        let lag = self
            .hook
            .group
            .is_some()
            .then(|| tokio::spawn(self.watch_lag()));
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        // For a hook without a group: the next offset to ask for after a reconnect.
        let mut resume_from: Option<u64> = None;
        let name = self.hook.name();
        let mut last_failure: Option<String> = None;
        if self.hook.group.is_none() {
            info!(hook = %name, "hook without a group: every replica reads the whole channel, nothing is acknowledged");
        }
        loop {
            let connected = tokio::select! {
                () = self.stop.triggered() => break,
                connected = self.connect(resume_from) => connected,
            };
            let mut intake = match connected {
                Ok(intake) => intake,
                Err(e) => {
                    // Said once per kind of failure, not on every retry.
                    let reason = e.to_string();
                    if last_failure.as_deref() != Some(reason.as_str()) {
                        warn!(hook = %name, error = %reason, "hook cannot connect; retrying with back-off");
                        last_failure = Some(reason);
                    }
                    tokio::select! {
                        () = self.stop.triggered() => break,
                        () = tokio::time::sleep(backoff.next_delay()) => continue,
                    }
                }
            };
            info!(hook = %name, "hook connected");
            last_failure = None;
            self.set_connected(true);
            backoff.reset();
            let end = self.consume(&mut intake, &mut resume_from).await;
            self.set_connected(false);
            match end {
                End::Stopped => {
                    intake.close().await;
                    break;
                }
                End::Lost(reason) => {
                    warn!(hook = %name, %reason, "hook disconnected; reconnecting");
                    tokio::select! {
                        () = self.stop.triggered() => break,
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
        if let Some(lag) = lag {
            lag.abort();
        }
        info!(hook = %name, "hook stopped");
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
        self.shared
            .metrics
            .hook_connected
            .get_or_create(&self.labels())
            .set(i64::from(connected));
    }

    async fn connect(&self, resume_from: Option<u64>) -> Result<Intake, ClientError> {
        let hook = &self.hook;
        let catalyst = &self.shared.node.catalyst;
        let mut options = ReadOptions {
            from: hook.from.clone().or_else(|| Some("earliest".to_owned())),
            types: hook.types.clone(),
            sources: hook.sources.clone(),
        };
        if let Some(group) = &hook.group {
            let timeout = hook.timeout.map(|t| t.as_millis() as u64);
            return catalyst
                .consume_group(&hook.channel, group, &options, timeout)
                .await
                .map(|g| Intake::Group(Box::new(g)));
        }
        if let Some(next) = resume_from {
            options.from = Some(next.to_string());
        }
        catalyst
            .consume(&hook.channel, &options)
            .await
            .map(Intake::Plain)
    }

    async fn consume(&self, intake: &mut Intake, resume_from: &mut Option<u64>) -> End {
        let timeout = self.hook.timeout.unwrap_or(DEFAULT_GROUP_TIMEOUT);
        let mut acks = Acks::new(Acks::max_wait_for(timeout));
        let mut ahead: Option<String> = None;
        loop {
            let text = if let Some(text) = ahead.take() {
                text
            } else {
                if let Err(e) = flush(intake, &mut acks).await {
                    return End::Lost(e.to_string());
                }
                tokio::select! {
                    biased;
                    () = self.stop.triggered() => return End::Stopped,
                    next = intake.next() => match next {
                        None => return End::Lost("closed by the node".to_owned()),
                        Some(Err(e)) => return End::Lost(e.to_string()),
                        Some(Ok(text)) => text,
                    },
                }
            };
            let event = match Event::parse(&text) {
                Ok(event) => event,
                Err(e) => return End::Lost(format!("unreadable delivery: {e}")),
            };
            let offset = event.offset;
            let (outcome, lost) = self.handle_reading_ahead(event, intake, &mut ahead).await;
            if let Some(reason) = lost {
                // The acknowledgement cannot reach the node: what is pending comes again to
                // whoever holds the group next (at least once).
                return End::Lost(reason);
            }
            if let Outcome::Again(reason) = outcome {
                // This event is not done, but those before it are.
                let flushed = flush(intake, &mut acks).await;
                return match (self.stop.is_triggered(), flushed) {
                    (true, Ok(())) => End::Stopped,
                    _ => End::Lost(reason),
                };
            }
            *resume_from = Some(offset + 1);
            acks.handled(offset, Instant::now());
            if self.stop.is_triggered() {
                return match flush(intake, &mut acks).await {
                    Ok(()) => End::Stopped,
                    Err(e) => End::Lost(e.to_string()),
                };
            }
            // Read ahead without waiting, to know whether more events are waiting.
            if ahead.is_none() {
                match intake.next().now_or_never() {
                    None => {}
                    Some(Some(Ok(text))) => ahead = Some(text),
                    Some(None) => return End::Lost("closed by the node".to_owned()),
                    Some(Some(Err(e))) => return End::Lost(e.to_string()),
                }
            }
            if acks.due(ahead.is_some(), Instant::now())
                && let Err(e) = flush(intake, &mut acks).await
            {
                return End::Lost(e.to_string());
            }
        }
    }

    /// Handles `event` while reading the socket one event ahead, so a connection that drops
    /// meanwhile shows in `/readyz` at once. Returns the outcome, and why the connection was
    /// lost meanwhile (if it was).
    async fn handle_reading_ahead(
        &self,
        event: Event,
        intake: &mut Intake,
        ahead: &mut Option<String>,
    ) -> (Outcome, Option<String>) {
        let mut lost = None;
        let handling = self.handle(event);
        let mut handling = std::pin::pin!(handling);
        loop {
            if ahead.is_some() || lost.is_some() {
                return (handling.await, lost);
            }
            tokio::select! {
                outcome = &mut handling => return (outcome, lost),
                next = intake.next() => match next {
                    Some(Ok(text)) => *ahead = Some(text),
                    None => lost = Some("closed by the node".to_owned()),
                    Some(Err(e)) => lost = Some(e.to_string()),
                },
            }
            if lost.is_some() {
                self.set_connected(false);
            }
        }
    }

    /// Runs the handler on `event` with retries; dead-letters it when they are used up.
    async fn handle(&self, event: Event) -> Outcome {
        let labels = self.labels();
        let metrics = &self.shared.metrics;
        let span = info_span!(
            "hook",
            channel = %self.hook.channel,
            group = self.hook.group.as_deref().unwrap_or(""),
            offset = event.offset,
            event_id = event.id(),
            trace_id = tracing::field::Empty,
        );
        let trace = crate::telemetry::enter(&span, event.trace());
        span.record("trace_id", trace.trace_id_hex());
        let retry = self.hook.retry;
        let attempts = retry.attempts.max(1);
        let mut last = HookError::retry("not run");
        let mut used = 0;
        for attempt in 1..=attempts {
            used = attempt;
            let context = HookContext {
                attempt,
                shared: Arc::clone(&self.shared),
            };
            let work = trace
                .scope((self.handler)(event.clone(), context))
                .instrument(span.clone());
            // A task of its own, so a panicking handler is an error, not a dead runner.
            let result = tokio::spawn(work)
                .await
                .unwrap_or_else(|e| Err(HookError::retry(format!("the handler panicked: {e}"))));
            match result {
                Ok(()) => {
                    metrics.hook_handled.get_or_create(&labels).inc();
                    return Outcome::Done;
                }
                Err(e) => {
                    metrics.hook_failed.get_or_create(&labels).inc();
                    let permanent = matches!(e, HookError::Permanent(_));
                    span.in_scope(
                        || warn!(attempt, attempts, error = %e, permanent, "handler failed"),
                    );
                    last = e;
                    if permanent || attempt == attempts {
                        break;
                    }
                    let delay = jittered(
                        nth_delay(retry.first_delay, retry.max_delay, attempt - 1),
                        jitter_fraction(),
                    );
                    tokio::select! {
                        () = self.stop.triggered() => return Outcome::Again("stopping during a retry".to_owned()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.dead_letter(&event, &last, used, trace)
            .instrument(span)
            .await
    }

    async fn dead_letter(
        &self,
        event: &Event,
        error: &HookError,
        attempts: u32,
        trace: TraceContext,
    ) -> Outcome {
        let channel = self.hook.dead_letter_channel();
        let who = self.hook.group.as_deref().unwrap_or(&self.shared.service);
        let letter = NewEvent::new(
            "io.draft.deadletter",
            json!({
                "channel": self.hook.channel,
                "group": self.hook.group,
                "offset": event.offset,
                "reason": error.to_string(),
                "permanent": matches!(error, HookError::Permanent(_)),
                "attempts": attempts,
                "event": event.json(),
            }),
        )
        // The same id for the same event, so a dead letter sent again after a crash is
        // stored once.
        .id(format!("{who}-{}-{}", self.hook.channel, event.offset));
        let sent = async {
            let producer = self.shared.producer(&channel).await?;
            trace.scope(async { producer.send(&letter).await }).await
        };
        match sent.await {
            Ok(offset) => {
                self.shared
                    .metrics
                    .hook_dead_lettered
                    .get_or_create(&self.labels())
                    .inc();
                warn!(dead_letter = %channel, dead_letter_offset = offset, reason = %error, "event dead-lettered");
                Outcome::Done
            }
            Err(e) => Outcome::Again(format!("cannot dead-letter to {channel}: {e}")),
        }
    }

    /// Keeps the lag gauge of a group hook current.
    fn watch_lag(&self) -> impl Future<Output = ()> + Send + 'static {
        let (shared, labels) = (Arc::clone(&self.shared), self.labels());
        let (channel, group) = (
            self.hook.channel.clone(),
            self.hook.group.clone().unwrap_or_default(),
        );
        async move {
            loop {
                if let Ok(info) = shared.node.catalyst.group(&channel, &group).await {
                    let lag = i64::try_from(info.lag).unwrap_or(i64::MAX);
                    shared.metrics.hook_lag.get_or_create(&labels).set(lag);
                }
                tokio::time::sleep(LAG_EVERY).await;
            }
        }
    }
}

/// Sends the pending acknowledgement, if any.
async fn flush(intake: &mut Intake, acks: &mut Acks) -> Result<(), ClientError> {
    match acks.take() {
        Some(offset) => intake.ack(offset).await,
        None => Ok(()),
    }
}
