//! kill -9 the node while producers run, restart it, and find every acknowledged event at
//! its offset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draft_catalyst::client::{Client, ReadOptions};
use draft_tests::{Node, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), &[]);
    let acked: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let mut producers = Vec::new();
    // Half the producers send one event at a time, half batches of 1 to 12 (several events
    // of one append are stored together: both layouts must survive).
    for p in 0..8 {
        let (url, acked) = (node.url.clone(), Arc::clone(&acked));
        producers.push(tokio::spawn(async move {
            let client = Client::new(&url);
            for i in 0.. {
                let ids: Vec<String> = if p % 2 == 0 {
                    vec![format!("p{p}-{i}")]
                } else {
                    (0..=(i % 12)).map(|j| format!("p{p}-{i}.{j}")).collect()
                };
                let result = if ids.len() == 1 {
                    client.produce("crash", &event(&ids[0], "t")).await
                } else {
                    let events: Vec<_> = ids.iter().map(|id| event(id, "t")).collect();
                    client.produce_batch("crash", &events).await
                };
                match result {
                    Ok(r) => {
                        assert_eq!(r.offsets.len(), ids.len());
                        acked
                            .lock()
                            .expect("acks")
                            .extend(r.offsets.into_iter().zip(ids));
                    }
                    Err(_) => return, // the node is gone
                }
            }
        }));
    }
    // Let the producers run, then kill -9 mid-stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("acks").len() < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "producers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill9();
    for p in producers {
        p.await.expect("producer");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acks"));

    let node = Node::start(dir.path(), &[]);
    let client = Client::new(&node.url);
    let mut stored = Vec::new();
    let mut options = ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    loop {
        let page = client.page("crash", &options, 1000).await.expect("page");
        if page.events.is_empty() {
            break;
        }
        stored.extend(page.events);
        options.from = Some(page.next_offset.to_string());
    }
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(
            e["draftoffset"].as_u64(),
            Some(i as u64),
            "dense offsets after restart"
        );
    }
    for (offset, id) in &acked {
        let e = stored
            .get(*offset as usize)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} lost"));
        assert_eq!(e["id"], id.as_str(), "event at {offset}");
    }
    assert!(acked.len() >= 300);
}
