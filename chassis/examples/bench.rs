//! Load for Chassis's benchmarks (`scripts/bench-chassis.sh` runs it against a release node):
//!
//! - `bench hook CHANNEL COUNT`: a service with one no-op hook in a new consumer group on
//!   CHANNEL (which must hold COUNT events); prints the rate from the first event handled to
//!   the group's acknowledgement of the last one.
//! - `bench produce CHANNEL COUNT [IN_FLIGHT]`: sends COUNT events through the chassis
//!   producer (pipelined WebSocket, `sync` durability on the node), `IN_FLIGHT` at a time
//!   (default 1,024); prints the rate.
//!
//! `DRAFT_URL` points at the node, as for any service.

// A load generator measures wall time: the standard clock is the right one here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
// Rates are printed to a few digits.
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use draft_chassis::{Chassis, Hook, NewEvent};
use tokio::sync::{Notify, Semaphore};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let count: u64 = arg(2).parse().unwrap_or(0);
    if count == 0 {
        eprintln!("usage: bench hook|produce CHANNEL COUNT [IN_FLIGHT]");
        std::process::exit(2);
    }
    match arg(0).as_str() {
        "hook" => hook(&arg(1), count).await,
        "produce" => produce(&arg(1), count, arg(3).parse().unwrap_or(1024)).await,
        other => {
            eprintln!("unknown benchmark {other:?}");
            std::process::exit(2);
        }
    }
}

async fn hook(channel: &str, count: u64) {
    let group = format!("bench-{}", std::process::id());
    let handled = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let done = Arc::new(Notify::new());
    let (h, f, d) = (Arc::clone(&handled), Arc::clone(&first), Arc::clone(&done));
    let chassis = Chassis::builder("bench-hook")
        .hook(Hook::on(channel).group(&group), move |_event, _ctx| {
            let (h, f, d) = (Arc::clone(&h), Arc::clone(&f), Arc::clone(&d));
            async move {
                f.get_or_init(Instant::now);
                if h.fetch_add(1, Ordering::Relaxed) + 1 == count {
                    d.notify_one();
                }
                Ok(())
            }
        })
        .build()
        .await
        .unwrap_or_else(|e| e.exit());
    let url = std::env::var("DRAFT_URL").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let client = draft_catalyst::client::Client::new(&url);
    let channel = channel.to_owned();
    let stop = async move {
        done.notified().await;
        // Until the group acknowledged the last event.
        loop {
            if let Ok(info) = client.group(&channel, &group).await
                && info.acked_offset.is_some_and(|o| o + 1 >= count)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let start = first.get().copied().unwrap_or_else(Instant::now);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "hook: {count} events handled and acknowledged in {secs:.3} s: {:.0} events/s",
            count as f64 / secs
        );
    };
    chassis
        .serve_until(axum::Router::new(), stop)
        .await
        .unwrap_or_else(|e| e.exit());
}

async fn produce(channel: &str, count: u64, in_flight: usize) {
    let chassis = Chassis::builder("bench-producer")
        .build()
        .await
        .unwrap_or_else(|e| e.exit());
    let producer = chassis.producer(channel).await.unwrap_or_else(|e| e.exit());
    let window = Arc::new(Semaphore::new(in_flight));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for i in 0..count {
        let permit = Arc::clone(&window)
            .acquire_owned()
            .await
            .expect("open semaphore");
        let event = NewEvent::new("bench.event", serde_json::json!({"n": i}));
        let sent = producer.send(&event);
        let failed = Arc::clone(&failed);
        tokio::spawn(async move {
            if sent.await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    // Every permit back: every send answered.
    let _all = window
        .acquire_many(u32::try_from(in_flight).unwrap_or(u32::MAX))
        .await
        .expect("open semaphore");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "produce: {count} events durable in {secs:.3} s: {:.0} events/s ({} failed, {in_flight} in flight)",
        count as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
}
