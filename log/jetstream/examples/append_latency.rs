//! How long an append takes to be acknowledged by size, on a fresh three-server loopback
//! cluster (`testing::Cluster`, R3, `sync_interval: always`): the figures behind the ack
//! timeout's allowance per MiB (`ACK_ALLOWANCE_PER_MIB`).
//!
//! ```text
//! cargo run --release -p draft-log-jetstream --example append_latency
//! ```

use draft_log::{LogBackend, NewRecord, PartitionName};
use draft_log_jetstream::JetStream;
use draft_log_jetstream::testing::Cluster;
use tokio::time::Instant;

/// (records, bytes each) of the appends measured, from one small event to 56 MiB.
const SHAPES: [(usize, usize); 5] = [
    (1, 100),
    (100, 1000),
    (1000, 1000),
    (1000, 8000),
    (64, 900_000),
];
/// Appends of each shape.
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() {
    let cluster = Cluster::start();
    let log = JetStream::connect(cluster.config())
        .await
        .expect("connect to the cluster");
    let partition = PartitionName::new("latency").expect("a valid name");
    log.append(&partition, vec![NewRecord::new("warm")])
        .await
        .expect("the first append");
    for (count, size) in SHAPES {
        let mut times = Vec::new();
        for _ in 0..ROUNDS {
            let records: Vec<NewRecord> = (0..count)
                .map(|_| NewRecord::new(vec![7u8; size]))
                .collect();
            let started = Instant::now();
            log.append(&partition, records).await.expect("an append");
            times.push(started.elapsed());
        }
        let kib = count * size / 1024;
        println!("{count} records of {size} B ({kib} KiB): {times:?}");
    }
}
