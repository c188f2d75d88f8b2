//! JetStream load generator mirroring `dctl bench`'s Catalyst scenarios, so both brokers are
//! measured by the same kind of client on the same machine:
//!
//! - `publish <url> <secs>`: 64 publishers, each waiting for its acknowledgement before the next;
//! - `pipelined <url> <secs>`: 64 publishers, each with 100 publishes awaiting acknowledgement;
//! - `async <url> <secs>`: one publisher with 1,024 publishes awaiting acknowledgement (the
//!   asynchronous publish of one connection, as a WebSocket producer of Catalyst pipelines);
//! - `replay <url> <count>`: one ordered consumer reads `count` messages (at most what the stream
//!   holds) from the start.
//!
//! Payloads are 200 bytes. The stream `BENCH` (subject `bench.>`, file storage, `REPLICAS`
//! replicas from the environment, default 1) is created if missing.

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
        _ => return Err("usage: nats-bench publish|pipelined|async|replay URL SECS|COUNT".into()),
    };
    let client = async_nats::connect(url).await?;
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
        "publish" => publish(&js, Duration::from_secs(n), PUBLISHERS, 1).await,
        "pipelined" => publish(&js, Duration::from_secs(n), PUBLISHERS, 100).await,
        "async" => publish(&js, Duration::from_secs(n), 1, 1024).await,
        "replay" => replay(&js, n).await,
        other => Err(format!("unknown mode {other}").into()),
    }
}

async fn publish(
    js: &jetstream::Context,
    duration: Duration,
    publishers: usize,
    window: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let payload = Bytes::from(vec![b'x'; 200]);
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (js, payload, acked) = (js.clone(), payload.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut pending = futures::stream::FuturesOrdered::new();
            while start.elapsed() < duration {
                while pending.len() < window {
                    let ack = js.publish("bench.events", payload.clone()).await?;
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
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = acked.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / secs;
    println!(
        "{publishers} publishers x {window} in flight: {n} acknowledged in {secs:.2} s = {rate:.0} msgs/s"
    );
    Ok(())
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
