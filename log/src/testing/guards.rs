//! Guarded appends: compare-and-set between concurrent writers, the engine's limits, and
//! retries of appends whose outcome was unknown.

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Harness, p, payloads, read_all, records};
use crate::backend::LogBackend;
use crate::error::Error;
use crate::record::{NewRecord, Offset};

/// How many writers race for each offset.
const WRITERS: usize = 8;

/// `append_expecting` with many writers at the same expected offset: exactly one wins, every
/// other gets a conflict carrying the winner's next offset, and nothing of theirs is stored.
/// A partition that does not exist is at offset 0.
pub async fn append_expecting_lets_exactly_one_writer_win<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("cas");
    match log
        .append_expecting(&part, Offset(2), records("early", 1))
        .await
    {
        Err(Error::Conflict { expected, next, .. }) => {
            assert_eq!(
                (expected, next),
                (Offset(2), Offset(0)),
                "a new partition is at 0"
            );
        }
        other => panic!("expected a conflict on an empty partition, got {other:?}"),
    }
    let ack = log
        .append_expecting(&part, Offset(0), records("first", 2))
        .await
        .expect("the expected offset of a new partition is 0");
    assert_eq!((ack.first, ack.count), (Offset(0), 2));
    let mut next = Offset(2);
    for round in 0..5 {
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (log, part) = (Arc::clone(&log), part.clone());
            tasks.push(tokio::spawn(async move {
                let batch = records(&format!("r{round}w{w}"), 1 + w % 3);
                (w, log.append_expecting(&part, next, batch).await)
            }));
        }
        let mut won = Vec::new();
        let mut lost = Vec::new();
        for task in tasks {
            match task.await.expect("writer") {
                (w, Ok(ack)) => won.push((w, ack)),
                (_, Err(Error::Conflict { expected, next, .. })) => lost.push((expected, next)),
                (_, Err(e)) => panic!("a writer failed otherwise: {e}"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one writer wins: {won:?}"
        );
        let (w, ack) = won[0];
        assert_eq!(ack.first, next, "the winner appends at the expected offset");
        let after = Offset(next.0 + ack.count);
        assert!(
            lost.iter().all(|&(e, n)| e == next && n == after),
            "round {round}: every loser is told the winner's next offset {after}: {lost:?}"
        );
        let stored = log.read(&part, next, usize::MAX).await.expect("read round");
        let want: Vec<String> = (0..=w % 3).map(|i| format!("r{round}w{w}-{i}")).collect();
        assert_eq!(
            payloads(&stored),
            want,
            "only the winner's records are stored"
        );
        next = after;
    }
    let head = log.head(&part).await.expect("head").expect("exists");
    assert_eq!(head.next, next);
}

/// An append over the limits the backend declares is refused with an error that says which
/// limit, and stores nothing; an append at the limits is taken whole.
pub async fn appends_over_the_limits_are_refused_clearly<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("limits");
    let limits = log.limits();
    log.append(&part, records("before", 1))
        .await
        .expect("append");
    let huge = usize::try_from(limits.max_record_bytes + 1).expect("fits in memory");
    match log
        .append(&part, vec![NewRecord::new(vec![7u8; huge])])
        .await
    {
        Err(Error::TooLarge { bytes, limit }) => {
            assert!(bytes > limit, "{bytes} over {limit}");
        }
        other => panic!("a record over {huge} bytes must be TooLarge, got {other:?}"),
    }
    if let Some(max) = limits.max_records {
        let ack = log
            .append(&part, records("full", max))
            .await
            .expect("an append of exactly the most records is taken");
        assert_eq!((ack.first, ack.count), (Offset(1), max as u64));
        match log.append(&part, records("over", max + 1)).await {
            Err(Error::TooMany { count, limit }) => assert_eq!((count, limit), (max + 1, max)),
            other => panic!(
                "an append of {} records must be TooMany, got {other:?}",
                max + 1
            ),
        }
    }
    let stored = read_all(&log, &part).await;
    let expected = 1 + limits.max_records.unwrap_or(0);
    assert_eq!(
        stored.len(),
        expected,
        "nothing of a refused append is stored"
    );
    assert!(
        stored.windows(2).all(|w| w[1].offset == w[0].offset.next()),
        "dense"
    );
}

/// An append whose outcome is unknown (dropped at a different moment each time: before it was
/// sent, while in flight, after it landed), retried with the same dedup ids, lands exactly once
/// and the retry is told its offsets. A retry of an acknowledged append gets the same
/// acknowledgement, also through `append_expecting` with a stale offset; mixing seen and unseen
/// ids is refused.
pub async fn a_retried_ambiguous_append_lands_exactly_once<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("retried");
    let batch = |k: usize| -> Vec<NewRecord> {
        (0..=k % 3)
            .map(|i| NewRecord::new(format!("k{k}-{i}")).with_dedup_id(format!("id-{k}-{i}")))
            .collect()
    };
    let mut acks = Vec::new();
    for k in 0..12 {
        // Give up on the first attempt after a growing delay (0: right after its first poll).
        let wait = Duration::from_micros(250 * k as u64);
        let _ = tokio::time::timeout(wait, log.append(&part, batch(k))).await;
        let ack = log.append(&part, batch(k)).await.expect("retry");
        let stored = log
            .read(&part, ack.first, ack.count as usize)
            .await
            .expect("read");
        let expected: Vec<String> = (0..=k % 3).map(|i| format!("k{k}-{i}")).collect();
        assert_eq!(
            payloads(&stored),
            expected,
            "the retry is told where its records are"
        );
        acks.push(ack);
    }
    let again = log.append(&part, batch(3)).await.expect("retry after ack");
    assert_eq!((again.first, again.count), (acks[3].first, acks[3].count));
    let stale = log
        .append_expecting(&part, Offset(0), batch(4))
        .await
        .expect("a retry is acknowledged before the offset is compared");
    assert_eq!(stale.first, acks[4].first);
    let mut mixed = batch(5);
    mixed.push(NewRecord::new("new").with_dedup_id("id-new"));
    match log.append(&part, mixed).await {
        Err(Error::DuplicateMismatch { offset, .. }) => assert_eq!(offset, acks[5].first),
        other => panic!("seen and unseen ids mixed must be refused, got {other:?}"),
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for payload in payloads(&read_all(&log, &part).await) {
        *counts.entry(payload).or_default() += 1;
    }
    let total: usize = (0..12).map(|k| 1 + k % 3).sum();
    assert_eq!(counts.len(), total, "every record landed: {counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "no record landed twice: {counts:?}"
    );
}
