//! Group commit on a real three-server cluster: many appends to one partition at once, some
//! of them retries of records stored before, each answered as it would be alone; and new
//! appends sent at once go out in groups.

use std::collections::HashMap;

use draft_log::{LogBackend, NewRecord, Offset, PartitionName};
use draft_log_jetstream::JetStream;
use draft_log_jetstream::testing::Cluster;
use futures::future::join_all;

/// Appends sent at once.
const APPENDS: usize = 60;

fn record(text: &str, dedup: Option<&str>) -> NewRecord {
    let record = NewRecord::new(text.to_owned());
    match dedup {
        Some(id) => record.with_dedup_id(id.to_owned()),
        None => record,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_their_own_dense_offsets_and_retries_their_first() {
    let cluster = Cluster::start();
    let log = JetStream::connect(cluster.config()).await.expect("connect");
    let partition = PartitionName::new("grouped").expect("name");
    // Stored before: retried below, beside new appends.
    let mut before = HashMap::new();
    for i in 0..5 {
        let id = format!("old-{i}");
        let ack = log
            .append(&partition, vec![record(&id, Some(&id))])
            .await
            .expect("append");
        before.insert(id, ack.first);
    }

    // Append i holds 1 + i % 4 records, "a{i}-{j}"; every sixth is a retry of an old one.
    let appends: Vec<Vec<NewRecord>> = (0..APPENDS)
        .map(|i| {
            if i % 6 == 0 {
                let id = format!("old-{}", (i / 6) % 5);
                return vec![record(&id, Some(&id))];
            }
            // Half of them without dedup ids (as Draft's own partitions append).
            (0..=i % 4)
                .map(|j| {
                    let text = format!("a{i}-{j}");
                    record(&text, (i % 2 == 0).then_some(text.as_str()))
                })
                .collect()
        })
        .collect();
    let texts: Vec<Vec<String>> = appends
        .iter()
        .map(|records| {
            records
                .iter()
                .map(|r| String::from_utf8(r.payload.to_vec()).expect("text"))
                .collect()
        })
        .collect();
    let acks = join_all(
        appends
            .into_iter()
            .map(|records| log.append(&partition, records)),
    )
    .await;

    let head = log.head(&partition).await.expect("head").expect("a head");
    let stored = log
        .read(
            &partition,
            Offset(0),
            usize::try_from(head.next.0).expect("small"),
        )
        .await
        .expect("read");
    assert_eq!(stored.len() as u64, head.next.0, "dense");
    let at: HashMap<String, u64> = stored
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.payload.to_vec()).expect("text"),
                r.offset.0,
            )
        })
        .collect();
    assert_eq!(at.len(), stored.len(), "no record stored twice");
    let new: usize = texts
        .iter()
        .filter(|t| !t[0].starts_with("old"))
        .map(Vec::len)
        .sum();
    assert_eq!(stored.len(), before.len() + new, "retries stored nothing");

    for (ack, texts) in acks.into_iter().zip(&texts) {
        let ack = ack.expect("every append is acknowledged");
        assert_eq!(ack.count as usize, texts.len());
        for (k, text) in texts.iter().enumerate() {
            assert_eq!(
                at.get(text).copied(),
                Some(ack.first.0 + k as u64),
                "{text} where its append was acknowledged, in order"
            );
        }
        if let Some(first) = before.get(&texts[0]) {
            assert_eq!(ack.first, *first, "a retry answers with the first offset");
        }
    }
    // A group that held a retry was stored again append by append.
    assert!(log.group_commit().fallbacks > 0, "{:?}", log.group_commit());

    new_appends_sent_at_once_go_out_in_groups(&log, &partition).await;
}

/// New appends only, all at once: they go out in groups, each append still dense.
async fn new_appends_sent_at_once_go_out_in_groups(log: &JetStream, partition: &PartitionName) {
    let earlier = log.group_commit();
    let acks = join_all((0..APPENDS).map(|i| {
        let records = (0..=i % 3)
            .map(|j| record(&format!("n{i}-{j}"), None))
            .collect();
        log.append(partition, records)
    }))
    .await;
    let mut firsts: Vec<(u64, u64)> = acks
        .into_iter()
        .map(|ack| ack.map(|a| (a.first.0, a.count)).expect("acknowledged"))
        .collect();
    firsts.sort_unstable();
    for pair in firsts.windows(2) {
        assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "dense, none shared");
    }
    let grouped = log.group_commit();
    assert!(
        grouped.groups > earlier.groups,
        "appends sent at once went out in groups: {grouped:?}"
    );
    assert!(
        grouped.grouped_appends - earlier.grouped_appends >= 2 * (grouped.groups - earlier.groups),
        "{grouped:?}"
    );
}
