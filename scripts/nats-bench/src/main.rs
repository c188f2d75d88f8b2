//! JetStream load generator mirroring `dctl bench`'s Catalyst scenarios, so both brokers are
//! measured by the same kind of client on the same machine:
//!
//! - `publish <url> <secs>`: 64 publishers, each waiting for its acknowledgement before the next;
//! - `pipelined <url> <secs>`: 64 publishers, each with 100 publishes awaiting acknowledgement;
//! - `async <url> <secs>`: one publisher with 1,024 publishes awaiting acknowledgement (the
//!   asynchronous publish of one connection, as a WebSocket producer of Catalyst pipelines);
//! - `pipelined-ids <url> <secs>`: `pipelined`, each message with its own `Nats-Msg-Id` (as
//!   Draft sends one per record, for dedup across nodes);
//! - `batched <url> <secs>`: 64 publishers, each sending atomic batches of 100 (ADR-50) to the
//!   stream `BENCHB` (`allow_atomic`), one at a time, at most 40 batches in flight in all (the
//!   server takes 50 a stream), each message with its own `Nats-Msg-Id`;
//! - `batched-1000 <url> <secs>`: 8 publishers of batches of 1,000: the publishes Draft's
//!   JetStream backend makes for `dctl bench produce --connections 64 --batch 100`, whose
//!   group commit joins appends that arrive together into batches of up to 1,000, 8 in flight;
//! - `replay <url> <count>`: one ordered consumer reads `count` messages (at most what the stream
//!   holds) from the start.
//!
//! Payloads are 200 bytes (`PAYLOAD_BYTES` from the environment changes it). The stream `BENCH`
//! (subject `bench.>`, file storage, `REPLICAS` replicas from the environment, default 1) is
//! created if missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;

const PUBLISHERS: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, url, n) = match args.as_slice() {
        [_, mode, url, n] => (mode.as_str(), url.as_str(), n.parse::<u64>()?),
        _ => {
            return Err(
                "usage: nats-bench publish|pipelined|pipelined-ids|async|batched|batched-1000|replay URL SECS|COUNT"
                    .into(),
            );
        }
    };
    let client = async_nats::connect(url).await?;
    match mode {
        "batched" => return batched(&client, Duration::from_secs(n), PUBLISHERS, 100).await,
        "batched-1000" => return batched(&client, Duration::from_secs(n), 8, 1000).await,
        _ => {}
    }
    // Room for every publisher's window (64 x 100), so the client library never refuses one.
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(PUBLISHERS * 100 + 1024)
        .backpressure_on_inflight(true)
        .build(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        storage: jetstream::stream::StorageType::File,
        num_replicas: std::env::var("REPLICAS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1),
        ..Default::default()
    })
    .await?;
    match mode {
        "publish" => publish(&js, Duration::from_secs(n), PUBLISHERS, 1, false).await,
        "pipelined" => publish(&js, Duration::from_secs(n), PUBLISHERS, 100, false).await,
        "pipelined-ids" => publish(&js, Duration::from_secs(n), PUBLISHERS, 100, true).await,
        "async" => publish(&js, Duration::from_secs(n), 1, 1024, false).await,
        "replay" => replay(&js, n).await,
        other => Err(format!("unknown mode {other}").into()),
    }
}

async fn publish(
    js: &jetstream::Context,
    duration: Duration,
    publishers: usize,
    window: usize,
    ids: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let payload = payload();
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let (js, payload, acked) = (js.clone(), payload.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut pending = futures::stream::FuturesOrdered::new();
            let mut sent = 0u64;
            while start.elapsed() < duration {
                while pending.len() < window {
                    let ack = if ids {
                        sent += 1;
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert("Nats-Msg-Id", msg_id(publisher, sent).as_str());
                        js.publish_with_headers("bench.events", headers, payload.clone())
                            .await?
                    } else {
                        js.publish("bench.events", payload.clone()).await?
                    };
                    pending.push_back(ack.into_future());
                }
                if let Some(ack) = pending.next().await {
                    ack?;
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            while let Some(ack) = pending.next().await {
                ack?;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    let (n, secs, rate) = finish(tasks, start, &acked).await?;
    println!(
        "{publishers} publishers x {window} in flight{}: {n} acknowledged in {secs:.2} s = {rate:.0} msgs/s",
        if ids { ", each with a Nats-Msg-Id" } else { "" }
    );
    Ok(())
}

/// A payload of `PAYLOAD_BYTES` bytes (from the environment; default 200).
fn payload() -> Bytes {
    let bytes = std::env::var("PAYLOAD_BYTES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(200);
    Bytes::from(vec![b'x'; bytes])
}

/// A message id as long as Draft's (a base64 SHA-256: 44 characters), unique per message of
/// this run (the process id tells runs apart within the stream's duplicate window).
fn msg_id(publisher: usize, n: u64) -> String {
    format!("d{:08x}{publisher:04}-{n:030}", std::process::id())
}

/// The most atomic batches `batched` has in flight: under the server's 50 a stream.
const BATCHES_IN_FLIGHT: usize = 40;

/// `batched`: `publishers`, each sending atomic batches of `size` messages one at a time (at
/// most [`BATCHES_IN_FLIGHT`] in all), as Draft's JetStream backend publishes an append: the
/// first message is a request answered at once, the middle ones plain publishes, the last
/// (`Nats-Batch-Commit`) a request answered with the acknowledgement once the batch is stored.
async fn batched(
    client: &async_nats::Client,
    duration: Duration,
    publishers: usize,
    size: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let replicas: u32 = std::env::var("REPLICAS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let config = format!(
        r#"{{"name":"BENCHB","subjects":["benchb.>"],"storage":"file","num_replicas":{replicas},"allow_atomic":true,"allow_direct":true}}"#
    );
    let reply = client
        .request("$JS.API.STREAM.CREATE.BENCHB", config.into())
        .await?;
    let text = String::from_utf8_lossy(&reply.payload);
    if text.contains("\"error\"") && !text.contains("already in use") {
        return Err(format!("create stream BENCHB: {text}").into());
    }
    let payload = payload();
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    for publisher in 0..publishers {
        let (client, payload, acked) = (client.clone(), payload.clone(), Arc::clone(&acked));
        let slots = Arc::clone(&slots);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let mut batches = 0u64;
            while start.elapsed() < duration {
                let _slot = slots.acquire().await?;
                batches += 1;
                let batch = format!("b{publisher}-{batches}");
                for i in 1..=size {
                    sent += 1;
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", msg_id(publisher, sent).as_str());
                    headers.insert("Nats-Batch-Id", batch.as_str());
                    headers.insert("Nats-Batch-Sequence", i.to_string().as_str());
                    if i == size {
                        headers.insert("Nats-Batch-Commit", "1");
                    }
                    if i != 1 && i != size {
                        client
                            .publish_with_headers("benchb.events", headers, payload.clone())
                            .await?;
                        continue;
                    }
                    let reply = client
                        .request_with_headers("benchb.events", headers, payload.clone())
                        .await?;
                    let text = String::from_utf8_lossy(&reply.payload);
                    if text.contains("\"error\"") {
                        return Err(format!("batch {batch}: {text}").into());
                    }
                }
                acked.fetch_add(size as u64, Ordering::Relaxed);
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    let (n, secs, rate) = finish(tasks, start, &acked).await?;
    println!(
        "{publishers} publishers x atomic batches of {size}: {n} acknowledged in {secs:.2} s = {rate:.0} msgs/s"
    );
    Ok(())
}

/// What the publishers' tasks, started at `start`, got acknowledged: how many, in how many
/// seconds, and the rate; or the first task's error.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>>,
    start: Instant,
    acked: &AtomicU64,
) -> Result<(u64, f64, f64), Box<dyn std::error::Error>> {
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = acked.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / secs;
    Ok((n, secs, rate))
}

async fn replay(js: &jetstream::Context, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut stream = js.get_stream("BENCH").await?;
    let count = count.min(stream.info().await?.state.messages);
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let start = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut n = 0u64;
    while n < count {
        match messages.next().await {
            Some(m) => {
                m?;
                n += 1;
            }
            None => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / secs;
    println!("replay: {n} messages in {secs:.2} s = {rate:.0} msgs/s");
    Ok(())
}
