//! A feed whose tail fails: its consumers hear of it at once, and the next consumer gets a
//! new feed. The failure is injected at the `LogBackend` seam, over a real log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use draft_http::ws::{OUTBOX_BYTES, outbox};
use draft_log::{Log, LogConfig, NewRecord, RecordStream};

use super::*;
use crate::cloudevent::Filter;
use crate::reader::{Stop, read_channel};
use draft_log::testing::hooked::{Hooked, Hooks};

/// A real log whose first tail fails after one record.
struct FirstTailFails {
    failed: AtomicBool,
}

impl Hooks for FirstTailFails {
    fn tail(&self, log: &Log, partition: &PartitionName, from: Offset) -> RecordStream {
        let tail = LogBackend::tail(log, partition, from);
        if self.failed.swap(true, Ordering::SeqCst) {
            return tail;
        }
        let failure = futures::stream::once(async {
            Err(draft_log::Error::Backend("injected tail failure".into()))
        });
        tail.take(1).chain(failure).boxed()
    }
}

fn event(id: &str) -> NewRecord {
    let json =
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"t","data":{{}}}}"#);
    NewRecord::new(Bytes::from(json)).with_key(draft_log::event_key("t", "/t", id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_feed_ends_its_consumers_and_the_next_one_gets_a_new_feed() {
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(LogConfig::new(dir.path())).expect("log");
    let backend: Arc<dyn LogBackend> = Arc::new(Hooked {
        log,
        hooks: FirstTailFails {
            failed: AtomicBool::new(false),
        },
    });
    let channel = PartitionName::new("orders").expect("name");
    let feeds = Arc::new(Feeds::new(Arc::clone(&backend)));

    // A consumer following the channel; the first event goes through, then the tail fails.
    let (tx, mut rx) = outbox(16, OUTBOX_BYTES);
    let reader = tokio::spawn(read_channel(
        Arc::clone(&backend),
        Arc::clone(&feeds),
        channel.clone(),
        Offset(0),
        Filter::default(),
        tx,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend
        .append(&channel, vec![event("a")])
        .await
        .expect("append");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the first event within 5 s")
            .is_some()
    );
    let stop = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the reader ends instead of waiting for ever")
        .expect("task");
    assert!(matches!(stop, Stop::Failed(_)), "{stop:?}");

    // The next consumer gets a running feed, and live events again.
    let feed = feeds.get(&channel).await.expect("feed");
    assert!(feed.is_alive());
    let mut live = feed.subscribe().expect("subscribed");
    backend
        .append(&channel, vec![event("b")])
        .await
        .expect("append");
    let got = tokio::time::timeout(Duration::from_secs(5), live.recv())
        .await
        .expect("a live event within 5 s")
        .expect("open");
    assert_eq!(got.offset, 1);
}
