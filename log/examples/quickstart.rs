//! Appends a few records to a log in `./.draft/example`, reads them back, reopens the log and
//! tails it: the log's guarantees in thirty lines.
//!
//! `cargo run --release -p draft-log --example quickstart`

use draft_log::{Log, LogConfig, NewRecord, Offset, PartitionName};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), draft_log::Error> {
    let dir = std::path::Path::new(".draft/example");
    let orders = PartitionName::new("orders")?;
    let log = Log::open(LogConfig::new(dir))?;
    let before = log.head(&orders).map_or(0, |h| h.next.0);
    let batch = (0..3)
        .map(|i| NewRecord::new(format!("order #{}", before + i)))
        .collect();
    let ack = log.append(&orders, batch).await?;
    println!("appended offsets {}..={} (fsync'ed)", ack.first, ack.last());
    drop(log);

    let log = Log::open(LogConfig::new(dir))?;
    let head = log
        .head(&orders)
        .expect("the partition survived the reopen");
    println!("reopened: {} records, {} bytes", head.count(), head.bytes);
    let mut tail = log.tail(&orders, Offset(0));
    for _ in 0..head.count() {
        let record = tail.next().await.expect("tail is endless")?;
        println!(
            "{:>4}  {}",
            record.offset,
            String::from_utf8_lossy(&record.payload)
        );
    }
    Ok(())
}
