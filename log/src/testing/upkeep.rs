//! Upkeep: retention, heads, and durability on demand (`sync`, `is_healthy`).

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::time::Duration;

use super::{Harness, PATIENCE, p, payloads, payloads_of, read_all, records};
use crate::backend::LogBackend;
use crate::config::Retention;
use crate::record::Offset;

/// Retention removes the oldest records by bytes and by age; offsets stay dense, other
/// partitions are untouched, and reads from a removed offset start at the first kept one.
pub async fn retention_removes_a_prefix_and_keeps_offsets_dense<H: Harness>(h: &H) {
    let (by_bytes, by_age, kept) = (p("by-bytes"), p("by-age"), p("kept"));
    let log = h
        .open(vec![
            (
                by_bytes.clone(),
                Retention {
                    max_age: None,
                    max_bytes: Some(2_000),
                },
            ),
            (
                by_age.clone(),
                Retention {
                    max_age: Some(Duration::from_millis(200)),
                    max_bytes: None,
                },
            ),
        ])
        .await
        .expect("open");
    for _ in 0..10 {
        log.append(&by_bytes, records("b", 10))
            .await
            .expect("append");
        log.append(&by_age, records("a", 10)).await.expect("append");
        log.append(&kept, records("k", 10)).await.expect("append");
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let bytes = log.head(&by_bytes).await.expect("head").expect("exists");
        let age = log.head(&by_age).await.expect("head").expect("exists");
        if bytes.bytes <= 2_000 && age.count() == 0 {
            assert!(bytes.first > Offset(0) && bytes.next == Offset(100));
            assert_eq!(age.next, Offset(100), "retention never rewinds offsets");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention did not apply: {bytes:?} {age:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = log.head(&by_bytes).await.expect("head").expect("exists");
    let rest = log
        .read(&by_bytes, Offset(0), usize::MAX)
        .await
        .expect("read");
    assert_eq!(
        rest.first().map(|r| r.offset),
        Some(head.first),
        "reads start at the first kept"
    );
    assert!(
        rest.windows(2).all(|w| w[1].offset == w[0].offset.next()),
        "dense after retention"
    );
    assert_eq!(rest.last().map(|r| r.offset), Some(Offset(99)));
    assert_eq!(
        log.head(&kept)
            .await
            .expect("head")
            .expect("exists")
            .count(),
        100
    );
    let ack = log
        .append(&by_age, records("again", 1))
        .await
        .expect("append");
    assert_eq!(ack.first, Offset(100));
}

/// `trim_before` removes whole appends that lie before the offset, and nothing else: a batch
/// that reaches the offset stays whole, offsets never change, reads of a removed offset start
/// at the first kept one, and the removal survives a reopen.
pub async fn trim_before_removes_whole_appends_before_an_offset<H: Harness>(h: &H) {
    let (part, other) = (p("trimmed"), p("untouched"));
    {
        let log = h.open(Vec::new()).await.expect("open");
        assert_eq!(
            log.trim_before(&part, Offset(10))
                .await
                .expect("trim unknown"),
            0,
            "an unknown partition loses nothing"
        );
        for i in 0..5 {
            log.append(&part, records(&format!("one{i}"), 1))
                .await
                .expect("append");
        }
        log.append(&part, records("batch", 3))
            .await
            .expect("append");
        log.append(&part, records("last", 1)).await.expect("append");
        log.append(&other, records("o", 4)).await.expect("append");
        assert_eq!(log.trim_before(&part, Offset(0)).await.expect("trim"), 0);
        assert_eq!(log.trim_before(&part, Offset(3)).await.expect("trim"), 3);
        let head = log.head(&part).await.expect("head").expect("exists");
        assert_eq!((head.first, head.next), (Offset(3), Offset(9)));
        // Offsets 5..=7 were appended together: trimming before 6 keeps all three.
        assert_eq!(log.trim_before(&part, Offset(6)).await.expect("trim"), 2);
        let rest = log.read(&part, Offset(0), usize::MAX).await.expect("read");
        assert_eq!(
            rest.iter().map(|r| r.offset.0).collect::<Vec<_>>(),
            vec![5, 6, 7, 8],
            "reads start at the first kept record"
        );
        assert_eq!(payloads(&rest), ["batch-0", "batch-1", "batch-2", "last-0"]);
        let ack = log
            .append(&part, records("after", 1))
            .await
            .expect("append");
        assert_eq!(ack.first, Offset(9), "offsets never rewind");
    }
    let log = h.open(Vec::new()).await.expect("reopen");
    let head = log.head(&part).await.expect("head").expect("exists");
    assert_eq!((head.first, head.next), (Offset(5), Offset(10)), "durable");
    assert_eq!(
        read_all(&log, &other).await.len(),
        4,
        "other partitions untouched"
    );
    assert_eq!(log.trim_before(&part, Offset(100)).await.expect("trim"), 5);
    let head = log.head(&part).await.expect("head").expect("exists");
    assert_eq!((head.count(), head.next), (0, Offset(10)));
}

/// Heads report first/next offsets, counts, bytes and the last append time.
pub async fn heads_report_counts_bytes_and_times<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("heads");
    assert!(
        log.head(&part).await.expect("head").is_none(),
        "unknown partition has no head"
    );
    let ack = log.append(&part, records("h", 7)).await.expect("append");
    let head = log.head(&part).await.expect("head").expect("exists");
    assert_eq!(
        (head.first, head.next, head.count(), head.last()),
        (Offset(0), Offset(7), 7, Some(Offset(6)))
    );
    assert!(head.bytes >= 7 * 3, "bytes count at least the payloads");
    assert_eq!(head.last_append, Some(ack.time));
    let listed = log.partitions().await.expect("partitions");
    assert!(listed.iter().any(|h| h.partition == part && h.count() == 7));
}

/// `sync` makes what was appended durable and a fresh backend is healthy: after a sync and a
/// reopen every record is there.
pub async fn sync_succeeds_and_a_fresh_backend_is_healthy<H: Harness>(h: &H) {
    let part = p("synced");
    {
        let log = h.open(Vec::new()).await.expect("open");
        assert!(log.is_healthy(), "a freshly opened backend is healthy");
        log.append(&part, records("s", 3)).await.expect("append");
        log.sync().await.expect("sync");
        assert!(log.is_healthy(), "still healthy after a sync");
        assert_eq!(log.storage_failure(), None, "no storage failure to report");
    }
    let log = h.open(Vec::new()).await.expect("reopen");
    assert_eq!(payloads(&read_all(&log, &part).await), payloads_of("s", 3));
}
