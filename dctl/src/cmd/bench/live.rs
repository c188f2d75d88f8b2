//! `dctl bench latency` and `dctl bench fanout`: consumers from `latest`, then a producer at a
//! fixed rate (open loop: a request is started on schedule whether or not the previous ones
//! were acknowledged). Each event carries its sequence number and send time; every consumer
//! marks what it received, so a lost or repeated event is counted, not guessed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::bail;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use super::args::{BENCH_MAX_SECS, BenchCommon};
use super::histogram::Histogram;
use super::report::{Progress, Summary, ms, per_sec, thousands};
use super::{Events, Socket, Target, api_message, close, close_reason, nanos_since, root};

/// Produce requests in flight at most; past this the producer falls behind its schedule.
const MAX_IN_FLIGHT: usize = 512;
/// Consumers connecting at once.
const CONNECT_PARALLEL: usize = 32;
/// Once the producer is done, a consumer that receives nothing for this long stops waiting.
const DRAIN_IDLE: Duration = Duration::from_secs(3);
/// Once the producer is done, consumers wait this long at most.
const DRAIN_MAX: Duration = Duration::from_secs(60);
/// Consumer memory for the seen-set: consumers × events, in bits.
const MAX_TRACKED_BITS: u64 = 8 << 30;

/// A live scenario.
pub(super) struct Live {
    pub(super) name: &'static str,
    pub(super) consumers: usize,
    pub(super) rate: u64,
    pub(super) common: BenchCommon,
}

/// A set of sequence numbers below a bound.
#[derive(Debug, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: u64) -> Self {
        Self(vec![0; len.div_ceil(64) as usize])
    }

    /// Adds `i`; false if it was there.
    fn insert(&mut self, i: u64) -> bool {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }

    /// How many of `self` are not in `other`.
    fn missing_from(&self, other: &Self) -> u64 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| u64::from((a & !b).count_ones()))
            .sum()
    }
}

/// What the producer saw.
struct Produced {
    acked: Bits,
    acked_count: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram,
}

/// What one consumer saw.
struct Consumed {
    seen: Bits,
    unique: u64,
    duplicates: u64,
    /// Events that were not this run's (should not happen: the consumer filters by source).
    stray: u64,
    latency: Histogram,
    failure: Option<String>,
    /// How long after the producer was done this consumer had every event or gave up.
    drained_after: Duration,
}

/// Sent to consumers when the producer is done.
#[derive(Clone, Copy)]
struct Done {
    /// Events the producer tried to send.
    attempted: u64,
    /// When the producer was done.
    ended: tokio::time::Instant,
}

pub(super) async fn run(live: Live) -> anyhow::Result<()> {
    let Live {
        name,
        consumers,
        rate,
        common,
    } = live;
    let target = Target::new(&common)?;
    target.preflight().await?;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_sign_loss,
        reason = "counts and rates well below 2^53"
    )]
    let total = {
        let secs = match (common.duration, common.count) {
            (Some(d), _) => d,
            (None, Some(c)) => (c as f64 / rate as f64).min(BENCH_MAX_SECS),
            (None, None) => 10.0,
        };
        ((rate as f64 * secs).ceil() as u64)
            .min(common.count.unwrap_or(u64::MAX))
            .max(1)
    };
    if total.saturating_mul(consumers as u64 + 1) > MAX_TRACKED_BITS {
        bail!(
            "{total} events to {consumers} consumers is too many to check: lower --rate, \
             --duration or --count"
        );
    }

    // The consumers first, filtered to this run's events.
    let open = connect_consumers(&target, consumers).await?;
    let started = Instant::now();
    let (done_tx, done_rx) = watch::channel(None::<Done>);
    let readers: Vec<_> = open
        .into_iter()
        .map(|socket| tokio::spawn(consume(socket, total, started, done_rx.clone())))
        .collect();
    // Let every consumer's subscription settle before the first event.
    tokio::time::sleep(Duration::from_millis(250)).await;

    let (produced, produce_time, behind) = produce(&target, rate, total, started).await?;
    let _ = done_tx.send(Some(Done {
        attempted: total,
        ended: tokio::time::Instant::now(),
    }));
    let mut consumed = Vec::with_capacity(readers.len());
    for reader in readers {
        consumed.push(reader.await?);
    }

    let title = format!(
        "dctl bench {name}: {consumers} consumer{}, {} events/s, {}-byte data, channel {} at {}",
        if consumers == 1 { "" } else { "s" },
        thousands(rate),
        target.size,
        target.channel,
        target.base
    );
    report(
        title,
        Sent {
            total,
            produced,
            produce_time,
            behind,
        },
        &consumed,
    )
}

/// Opens `consumers` WebSockets from `latest`, filtered to this run's events; all or none.
async fn connect_consumers(target: &Target, consumers: usize) -> anyhow::Result<Vec<Socket>> {
    let query = format!("from=latest&source={}", target.source().replace('/', "%2F"));
    let sockets: Vec<anyhow::Result<Socket>> = futures::stream::iter(0..consumers)
        .map(|_| target.consume(&query, 16 * 1024))
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    let mut open = Vec::with_capacity(consumers);
    let mut refused = None;
    for socket in sockets {
        match socket {
            Ok(s) => open.push(s),
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    if let Some(e) = refused {
        let opened = open.len();
        futures::future::join_all(open.into_iter().map(close)).await;
        bail!("only {opened} of {consumers} consumers could connect: {e:#}");
    }
    Ok(open)
}

/// How the producer did.
struct Sent {
    total: u64,
    produced: Produced,
    produce_time: Duration,
    behind: Duration,
}

/// Checks what every consumer got against what was acknowledged; prints the summary.
fn report(title: String, sent: Sent, consumed: &[Consumed]) -> anyhow::Result<()> {
    let Sent {
        total,
        produced,
        produce_time,
        behind,
    } = sent;
    let consumers = consumed.len();
    let mut latency = Histogram::default();
    let (mut delivered, mut missing, mut duplicates, mut stray) = (0u64, 0u64, 0u64, 0u64);
    let (mut short_consumers, mut min_received) = (0u64, u64::MAX);
    let mut drain = Duration::ZERO;
    let mut failure = None;
    for c in consumed {
        latency.merge(&c.latency);
        let lost = produced.acked.missing_from(&c.seen);
        delivered += c.unique;
        missing += lost;
        duplicates += c.duplicates;
        stray += c.stray;
        short_consumers += u64::from(lost > 0);
        min_received = min_received.min(c.unique);
        drain = drain.max(c.drained_after);
        if failure.is_none() {
            failure.clone_from(&c.failure);
        }
    }

    let mut summary = Summary::new(title);
    summary
        .row(
            "produce time",
            format!("{:.2} s", produce_time.as_secs_f64()),
        )
        .row("events sent", thousands(total))
        .row("events acknowledged", thousands(produced.acked_count))
        .row("send rate", format!("{}/s", per_sec(total, produce_time)))
        .row("most behind schedule", ms(behind.as_nanos() as u64))
        .row("produce errors", thousands(produced.errors))
        .latencies("ack latency", &produced.latency);
    if consumers > 1 {
        summary
            .row("consumers", thousands(consumers as u64))
            .row(
                "deliveries expected",
                thousands(produced.acked_count * consumers as u64),
            )
            .row("deliveries", thousands(delivered))
            .row("deliveries/s", per_sec(delivered, produce_time + drain))
            .row("fewest to one consumer", thousands(min_received))
            .row("consumers missing events", thousands(short_consumers));
    } else {
        summary.row("events received", thousands(delivered));
    }
    summary
        .row("missing", thousands(missing))
        .row("duplicates", thousands(duplicates))
        .row("consumers done after producer", ms(drain.as_nanos() as u64))
        .latencies("latency", &latency);
    if stray > 0 {
        summary.row("other events", thousands(stray));
    }
    summary.print();

    if let Some(failure) = failure {
        bail!(failure);
    }
    if produced.errors > 0 {
        bail!(
            "{} of {total} produce requests failed; the first: {}",
            produced.errors,
            produced.first_error.unwrap_or_default()
        );
    }
    if missing > 0 || duplicates > 0 {
        bail!(
            "{missing} deliveries missing and {duplicates} repeated across {short_consumers} \
             consumers"
        );
    }
    Ok(())
}

/// Sends `total` events at `rate`, one request each; returns the tally, how long sending
/// took, and how far the producer fell behind its schedule at worst.
async fn produce(
    target: &Target,
    rate: u64,
    total: u64,
    started: Instant,
) -> anyhow::Result<(Produced, Duration, Duration)> {
    let http = target.http(MAX_IN_FLIGHT)?;
    let url: Arc<str> = target.events_url().into();
    let events = Arc::new(Events::new(target));
    let tally = Arc::new(Mutex::new(Produced {
        acked: Bits::new(total),
        acked_count: 0,
        errors: 0,
        first_error: None,
        latency: Histogram::default(),
    }));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let progress = Progress::new(started);
    let begin = tokio::time::Instant::now();
    let mut behind = Duration::ZERO;
    for seq in 0..total {
        #[allow(clippy::cast_precision_loss, reason = "sequence numbers below 2^53")]
        let due = begin + Duration::from_secs_f64(seq as f64 / rate as f64);
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let permit = Arc::clone(&slots).acquire_owned().await?;
        behind = behind.max(tokio::time::Instant::now().saturating_duration_since(due));
        if seq % rate == 0 && seq > 0 {
            progress.line(&format!("{} events sent", thousands(seq)));
        }
        let (http, url, events, tally) = (
            http.clone(),
            Arc::clone(&url),
            Arc::clone(&events),
            Arc::clone(&tally),
        );
        tokio::spawn(async move {
            let (body, content_type) = events.body(seq, 1, false, started);
            let sent = Instant::now();
            let result = match http
                .post(&*url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(_) if status == reqwest::StatusCode::CREATED => Ok(()),
                        Ok(body) => Err(format!(
                            "HTTP {status}: {}",
                            api_message(&String::from_utf8_lossy(&body))
                        )),
                        Err(e) => Err(format!("reading the answer: {}", root(&e))),
                    }
                }
                Err(e) => Err(format!("cannot reach the node: {}", root(&e))),
            };
            let took = sent.elapsed();
            let mut t = tally.lock().unwrap_or_else(PoisonError::into_inner);
            t.latency.record(took);
            match result {
                Ok(()) => {
                    t.acked.insert(seq);
                    t.acked_count += 1;
                }
                Err(e) => {
                    t.errors += 1;
                    t.first_error.get_or_insert(e);
                }
            }
            // The tally is free before the slot: the run takes it once every slot is back.
            drop(t);
            drop(tally);
            drop(permit);
        });
    }
    // Every request has finished when every slot is free again.
    let _all = slots.acquire_many(MAX_IN_FLIGHT as u32).await?;
    let produce_time = begin.elapsed();
    progress.done();
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("a produce request outlived the run"))?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    Ok((tally, produce_time, behind))
}

/// One consumer: marks each event's sequence number and records its latency, until it has
/// every event the producer tried to send or the drain time is over.
async fn consume(
    mut socket: Socket,
    total: u64,
    started: Instant,
    mut done: watch::Receiver<Option<Done>>,
) -> Consumed {
    let mut c = Consumed {
        seen: Bits::new(total),
        unique: 0,
        duplicates: 0,
        stray: 0,
        latency: Histogram::default(),
        failure: None,
        drained_after: Duration::ZERO,
    };
    let mut finish: Option<Done> = None;
    let mut last_heard = tokio::time::Instant::now();
    let far = tokio::time::Instant::now() + Duration::from_secs(2 * 3600);
    loop {
        if finish.is_some_and(|f| c.unique >= f.attempted) {
            break;
        }
        let deadline = finish.map_or(far, |f| (f.ended + DRAIN_MAX).min(last_heard + DRAIN_IDLE));
        let message = tokio::select! {
            m = socket.next() => m,
            changed = done.changed(), if finish.is_none() => {
                if changed.is_err() {
                    break;
                }
                finish = *done.borrow_and_update();
                continue;
            }
            () = tokio::time::sleep_until(deadline) => break,
        };
        let now = nanos_since(started);
        last_heard = tokio::time::Instant::now();
        match message {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_str();
                match super::stamp(text) {
                    Some((seq, ns)) if seq < total => {
                        if c.seen.insert(seq) {
                            c.unique += 1;
                        } else {
                            c.duplicates += 1;
                        }
                        c.latency.record_ns(now.saturating_sub(ns));
                    }
                    _ => c.stray += 1,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                c.failure = Some(format!(
                    "the node closed a consumer after {} events: {}",
                    c.unique,
                    close_reason(frame.as_ref())
                ));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                c.failure = Some(format!("a consumer failed after {} events: {e}", c.unique));
                break;
            }
            None => {
                c.failure = Some(format!(
                    "the node ended a consumer after {} events",
                    c.unique
                ));
                break;
            }
        }
    }
    c.drained_after = finish.map_or(Duration::ZERO, |f| f.ended.elapsed());
    close(socket).await;
    c
}
