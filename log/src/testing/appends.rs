//! Appends: dense offsets, exact reads through every window, atomic batches, concurrent
//! appenders, and what survives a reopen.

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Harness, p, payloads, payloads_of, read_all, records};
use crate::backend::LogBackend;
use crate::record::{NewRecord, Offset, PartitionName};

/// Offsets start at 0 in every partition and grow by one per record.
pub async fn appends_get_dense_offsets_per_partition<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let (a, b) = (p("a"), p("b"));
    let ack = log.append(&a, records("x", 3)).await.expect("append");
    assert_eq!((ack.first, ack.count), (Offset(0), 3));
    let ack = log.append(&b, records("y", 1)).await.expect("append");
    assert_eq!(ack.first, Offset(0), "each partition has its own offsets");
    let ack = log.append(&a, records("z", 2)).await.expect("append");
    assert_eq!(
        ack.offsets().collect::<Vec<_>>(),
        vec![Offset(3), Offset(4)]
    );
    let offsets: Vec<u64> = read_all(&log, &a)
        .await
        .iter()
        .map(|r| r.offset.0)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

/// Keys and payloads come back byte for byte; `from` and `limit` select a window.
pub async fn reads_return_exactly_what_was_appended<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("reads");
    let input = vec![
        NewRecord::new(vec![0u8, 255, 1]).with_key("k1"),
        NewRecord::new(Vec::new()),
        NewRecord::new("third").with_key(Vec::new()),
    ];
    log.append(&part, input.clone()).await.expect("append");
    let out = read_all(&log, &part).await;
    assert_eq!(out.len(), 3);
    for (record, sent) in out.iter().zip(&input) {
        assert_eq!(record.payload, sent.payload);
        assert_eq!(record.key, sent.key);
        assert_eq!(record.partition, part);
    }
    let window = log.read(&part, Offset(1), 1).await.expect("read");
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].offset, Offset(1));
    assert!(
        log.read(&part, Offset(3), 10)
            .await
            .expect("read")
            .is_empty(),
        "past the end"
    );
    assert!(
        log.read(&p("nothing-here"), Offset(0), 10)
            .await
            .expect("read")
            .is_empty()
    );
}

/// Appends of many sizes (one record, a few, hundreds, records of 40 KB and one of 300 KB; an
/// engine may store an append as one unit or several) read back through every window
/// `from`/`limit`, before and after a reopen, and time lookups land on the first record of
/// each append.
pub async fn every_window_reads_back_across_append_sizes<H: Harness>(h: &H) {
    let part = p("windows");
    let sizes = [1usize, 2, 1, 3, 7, 1, 300, 2, 1, 40];
    let mut expected = Vec::new();
    let mut acks = Vec::new();
    {
        let log = h.open(vec![]).await.expect("open");
        for (i, n) in sizes.into_iter().enumerate() {
            let batch: Vec<NewRecord> = (0..n)
                .map(|j| {
                    // Every ninth record is large: enough of them fill any sensible unit.
                    let pad = match j {
                        100 => 300_000,
                        _ if j % 9 == 8 => 40_000,
                        _ => j % 5,
                    };
                    NewRecord::new(format!("{i}.{j}:{}", "x".repeat(pad))).with_key(format!("k{j}"))
                })
                .collect();
            expected.extend(batch.iter().map(|r| (r.key.clone(), r.payload.clone())));
            acks.push(log.append(&part, batch).await.expect("append"));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        check_windows(&log, &part, &expected).await;
    }
    let log = h.open(vec![]).await.expect("reopen");
    check_windows(&log, &part, &expected).await;
    for ack in &acks {
        assert_eq!(
            log.offset_at_time(&part, ack.time).await.expect("lookup"),
            Some(ack.first),
            "the first record of the append at {:?}",
            ack.time
        );
    }
}

/// Reads `part` through every `from` and a few limits and compares with `expected`.
async fn check_windows<B: LogBackend>(
    log: &B,
    part: &PartitionName,
    expected: &[(Option<bytes::Bytes>, bytes::Bytes)],
) {
    let total = expected.len();
    for from in 0..=total + 1 {
        // Reading everything from every offset would be quadratic: from some offsets only.
        let limits: &[usize] = if from % 16 == 0 {
            &[1, 2, 5, 64, usize::MAX]
        } else {
            &[1, 2, 5, 64]
        };
        for &limit in limits {
            let got = log
                .read(part, Offset(from as u64), limit)
                .await
                .expect("read");
            let want = &expected[from.min(total)..from.saturating_add(limit).min(total)];
            assert_eq!(got.len(), want.len(), "from {from} limit {limit}");
            for (k, (record, (key, payload))) in got.iter().zip(want).enumerate() {
                assert_eq!(record.offset, Offset((from + k) as u64));
                assert_eq!(
                    (&record.key, &record.payload),
                    (key, payload),
                    "at {}",
                    from + k
                );
            }
        }
    }
}

/// Concurrent batches never interleave: each batch's records are contiguous and in order.
pub async fn batches_are_atomic_and_contiguous<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("batches");
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (log, part) = (Arc::clone(&log), part.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for b in 0..10 {
                let ack = log
                    .append(&part, records(&format!("{t}.{b}"), 10))
                    .await
                    .expect("append");
                acks.push((format!("{t}.{b}"), ack));
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.expect("task"));
    }
    let all_payloads = payloads(&read_all(&*log, &part).await);
    assert_eq!(all_payloads.len(), 16 * 10 * 10);
    {
        for (prefix, ack) in acks {
            assert_eq!(ack.count, 10);
            let start = ack.first.0 as usize;
            let got = all_payloads
                .get(start..start + 10)
                .expect("batch within log");
            let want: Vec<String> = (0..10).map(|i| format!("{prefix}-{i}")).collect();
            assert_eq!(
                got,
                &want[..],
                "batch {prefix} is contiguous at its offsets"
            );
        }
    }
}

/// Close and reopen: every acknowledged record is there, and appends continue after it.
pub async fn everything_acknowledged_survives_reopen<H: Harness>(h: &H) {
    let part = p("durable");
    {
        let log = h.open(vec![]).await.expect("open");
        log.append(&part, records("before", 100))
            .await
            .expect("append");
        log.append(&p("other"), records("o", 1))
            .await
            .expect("append");
    }
    let log = h.open(vec![]).await.expect("reopen");
    let out = read_all(&log, &part).await;
    assert_eq!(payloads(&out), payloads_of("before", 100));
    let head = log
        .head(&part)
        .await
        .expect("head")
        .expect("partition exists after reopen");
    assert_eq!((head.first, head.next), (Offset(0), Offset(100)));
    let ack = log
        .append(&part, records("after", 1))
        .await
        .expect("append");
    assert_eq!(ack.first, Offset(100), "offsets continue after reopen");
    let names: Vec<String> = log
        .partitions()
        .await
        .expect("partitions")
        .iter()
        .map(|h| h.partition.to_string())
        .collect();
    assert!(names.contains(&"durable".to_owned()) && names.contains(&"other".to_owned()));
}

/// 64 appenders at once: every acknowledged offset is unique, together they are dense, and
/// each holds what its appender sent.
pub async fn many_concurrent_appenders_get_unique_dense_offsets<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("concurrent");
    let mut tasks = Vec::new();
    for t in 0..64 {
        let (log, part) = (Arc::clone(&log), part.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..50 {
                let payload = format!("{t}/{i}");
                let ack = log
                    .append(&part, vec![NewRecord::new(payload.clone())])
                    .await
                    .expect("append");
                mine.push((ack.first, payload));
            }
            mine
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("task"));
    }
    let stored = read_all(&*log, &part).await;
    assert_eq!(stored.len(), 64 * 50);
    let unique: HashSet<Offset> = acked.iter().map(|(o, _)| *o).collect();
    assert_eq!(unique.len(), acked.len(), "no offset acknowledged twice");
    for (offset, payload) in acked {
        assert_eq!(
            stored[offset.0 as usize].payload,
            payload.as_bytes(),
            "record at {offset}"
        );
    }
}
