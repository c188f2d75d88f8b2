//! `dctl bench produce`: closed-loop producers, one task per connection: a keep-alive HTTP
//! connection sending one request at a time, or a WebSocket producer keeping its window of
//! frames in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::bail;
use draft_catalyst::client::{Producer, ProducerOptions};
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use super::args::{BenchProduceArgs, Transport};
use super::conn::Conn;
use super::histogram::Histogram;
use super::report::{Progress, Summary, mb_per_sec, per_sec, thousands};
use super::{Events, Target, api_message, run_time};

/// Shared by the connections.
struct Plan {
    events: Events,
    batch: u64,
    /// Events to send at most.
    limit: u64,
    deadline: Instant,
    started: Instant,
    /// The next event's sequence number (claimed a request at a time).
    next: AtomicU64,
    /// Events acknowledged, for progress.
    acked: AtomicU64,
}

impl Plan {
    /// Claims the next request's events: the first one's sequence number and how many, or
    /// `None` once the count is reached.
    fn claim(&self) -> Option<(u64, u64)> {
        let first = self.next.fetch_add(self.batch, Ordering::Relaxed);
        (first < self.limit).then(|| (first, self.batch.min(self.limit - first)))
    }
}

/// One connection's tally.
#[derive(Default)]
struct Tally {
    requests: u64,
    events: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram,
}

impl Tally {
    fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        self.events += other.events;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.merge(&other.latency);
    }
}

pub(super) async fn run(args: BenchProduceArgs) -> anyhow::Result<()> {
    let target = Target::new(&args.common)?;
    target.preflight().await?;
    let connections = args.connections as usize;
    let started = Instant::now();
    let plan = Arc::new(Plan {
        events: Events::new(&target),
        batch: args.batch,
        limit: args.common.count.unwrap_or(u64::MAX),
        deadline: started + run_time(&args.common, 10.0),
        started,
        next: AtomicU64::new(0),
        acked: AtomicU64::new(0),
    });
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let plan = Arc::clone(&plan);
        tasks.push(match args.transport {
            Transport::Http => tokio::spawn(connection(
                plan,
                Conn::new(&target.events_url(), target.token.as_deref())?,
            )),
            Transport::Ws => {
                let producer = open_producer(&target, args.window as usize).await?;
                tokio::spawn(pipelined(plan, producer, args.window as usize))
            }
        });
    }
    let progress = Progress::new(started);
    let reporter = {
        let plan = Arc::clone(&plan);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last = 0;
            loop {
                tick.tick().await;
                let acked = plan.acked.load(Ordering::Relaxed);
                progress.line(&format!("{} events/s", thousands(acked - last)));
                last = acked;
            }
        })
    };
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await?);
    }
    let elapsed = started.elapsed();
    reporter.abort();
    Progress::new(started).done();

    report(&args, &target, &total, elapsed)
}

/// Prints the summary; fails if any request or frame failed.
fn report(
    args: &BenchProduceArgs,
    target: &Target,
    total: &Tally,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let connections = args.connections;
    let mode = if args.batch == 1 {
        "single events".to_owned()
    } else {
        format!("batches of {}", args.batch)
    };
    let (transport, unit) = match args.transport {
        Transport::Http => ("HTTP connections".to_owned(), "requests"),
        Transport::Ws => (
            format!("WebSocket connections of {} frames in flight", args.window),
            "frames",
        ),
    };
    let mut summary = Summary::new(format!(
        "dctl bench produce: {connections} {transport}, {mode}, {}-byte data, channel {} at {}",
        target.size, target.channel, target.base
    ));
    summary
        .row("duration", format!("{:.2} s", elapsed.as_secs_f64()))
        .row("events", thousands(total.events))
        .row("events/s", per_sec(total.events, elapsed))
        .row(unit, thousands(total.requests))
        .row(&format!("{unit}/s"), per_sec(total.requests, elapsed))
        .row("sent", mb_per_sec(total.bytes, elapsed))
        .latencies(
            &format!("{} latency", &unit[..unit.len() - 1]),
            &total.latency,
        )
        .row("errors", thousands(total.errors));
    summary.print();
    if total.errors > 0 {
        bail!(
            "{} of {} {unit} failed; the first: {}",
            total.errors,
            total.requests,
            total.first_error.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// One connection: a request at a time until the deadline or the count.
async fn connection(plan: Arc<Plan>, mut conn: Conn) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < plan.deadline {
        let Some((first, n)) = plan.claim() else {
            break;
        };
        let (body, content_type) = plan.events.body(first, n, plan.batch > 1, plan.started);
        let bytes = body.len() as u64;
        let sent = Instant::now();
        let result = conn.post(body, content_type).await;
        tally.requests += 1;
        let (status, answer) = match result {
            Ok(r) => r,
            Err(e) => {
                tally.error(|| format!("{e:#}"));
                // An unreachable node fails fast: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tally.latency.record(sent.elapsed());
        match status {
            hyper::StatusCode::CREATED => {
                tally.events += n;
                tally.bytes += bytes;
                plan.acked.fetch_add(n, Ordering::Relaxed);
            }
            hyper::StatusCode::OK => {
                tally.error(|| "HTTP 200: the node took the events for duplicates".to_owned());
            }
            _ => tally.error(|| {
                format!(
                    "HTTP {status}: {}",
                    api_message(&String::from_utf8_lossy(&answer))
                )
            }),
        }
    }
    tally
}

/// A WebSocket producer for one connection of the run.
async fn open_producer(target: &Target, window: usize) -> anyhow::Result<Producer> {
    let options = ProducerOptions {
        max_in_flight: window,
        reconnect_for: Duration::from_secs(5),
    };
    target
        .client()
        .producer(&target.channel, options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open a WebSocket producer: {e}"))
}

/// One WebSocket connection: keeps up to `window` frames in flight until the deadline or the
/// count, then waits for the last acknowledgements. Latency is from queueing a frame to its
/// acknowledgement.
async fn pipelined(plan: Arc<Plan>, producer: Producer, window: usize) -> Tally {
    let mut tally = Tally::default();
    let mut in_flight = FuturesOrdered::new();
    loop {
        while in_flight.len() < window && Instant::now() < plan.deadline {
            let Some((first, n)) = plan.claim() else {
                break;
            };
            let (body, _) = plan.events.body(first, n, plan.batch > 1, plan.started);
            let bytes = body.len() as u64;
            let sent = Instant::now();
            // One event or an array: either way the frame's acknowledgement lists its offsets.
            let ack = producer.send_batch(body);
            in_flight.push_back(async move { (n, bytes, sent, ack.await) });
        }
        let Some((n, bytes, sent, result)) = in_flight.next().await else {
            break;
        };
        tally.requests += 1;
        tally.latency.record(sent.elapsed());
        match result {
            Ok(offsets) if offsets.len() as u64 == n => {
                tally.events += n;
                tally.bytes += bytes;
                plan.acked.fetch_add(n, Ordering::Relaxed);
            }
            Ok(offsets) => tally.error(|| format!("{} offsets for {n} events", offsets.len())),
            Err(e) => tally.error(|| e.to_string()),
        }
    }
    producer.close().await;
    tally
}
