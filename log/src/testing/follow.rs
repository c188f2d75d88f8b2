//! Following and finding: tails that replay then follow, and lookups by time.

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{Harness, PATIENCE, p, payloads, payloads_of, read_all, records};
use crate::backend::LogBackend;
use crate::record::{NewRecord, Offset, Timestamp};

/// A tail from an offset replays what is stored, then delivers new appends, with no gap and
/// no duplicate at the seam.
pub async fn tail_replays_then_follows_live_appends<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("tail");
    // In appends as large as the backend takes (JetStream: 1,000 records an atomic batch).
    let old = records("old", 1500);
    for chunk in old.chunks(log.limits().max_records.unwrap_or(old.len())) {
        log.append(&part, chunk.to_vec()).await.expect("append");
    }
    let mut tail = log.tail(&part, Offset(500));
    let writer = {
        let (log, part) = (Arc::clone(&log), part.clone());
        tokio::spawn(async move {
            for i in 0..50 {
                log.append(&part, vec![NewRecord::new(format!("new-{i}"))])
                    .await
                    .expect("append");
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 1050 {
        let record = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("tail delivers within the deadline")
            .expect("tail does not end")
            .expect("tail record");
        seen.push(record);
    }
    writer.await.expect("writer");
    for (i, record) in seen.iter().enumerate() {
        assert_eq!(
            record.offset,
            Offset(500 + i as u64),
            "offset order, no gap, no duplicate"
        );
    }
    assert_eq!(
        payloads(&seen[..1000]),
        payloads_of("old", 1500)[500..].to_vec()
    );
    assert_eq!(payloads(&seen[1000..]), payloads_of("new", 50));
}

/// Tailing a partition before its first append waits for it.
pub async fn tail_waits_for_a_partition_that_does_not_exist_yet<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("later");
    let mut tail = log.tail(&part, Offset(0));
    log.append(&part, records("first", 2))
        .await
        .expect("append");
    for want in 0..2 {
        let record = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("tail delivers")
            .expect("tail does not end")
            .expect("record");
        assert_eq!(record.offset, Offset(want));
    }
}

/// `offset_at_time` finds the first record appended at or after a time.
pub async fn time_lookup_finds_the_first_record_at_or_after<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("times");
    let before_all = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    log.append(&part, records("early", 10))
        .await
        .expect("append");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = log
        .append(&part, records("late", 10))
        .await
        .expect("append");
    assert_eq!(
        log.offset_at_time(&part, before_all).await.expect("lookup"),
        Some(Offset(0))
    );
    assert_eq!(
        log.offset_at_time(&part, middle).await.expect("lookup"),
        Some(late.first)
    );
    assert_eq!(
        log.offset_at_time(&part, late.time).await.expect("lookup"),
        Some(late.first)
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        log.offset_at_time(&part, Timestamp::now())
            .await
            .expect("lookup"),
        None
    );
    let records = read_all(&log, &part).await;
    assert!(
        records.windows(2).all(|w| w[0].time <= w[1].time),
        "append times never decrease"
    );
}
