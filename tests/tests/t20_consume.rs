//! Consume over a real WebSocket: replay from every kind of `from`, filters, broadcast to
//! several consumers, live delivery joined to replay with no gap and no duplicate.

use std::time::Duration;

use draft_catalyst::client::{Client, ReadOptions};
use draft_tests::{Node, event, post};
use futures::StreamExt;
use serde_json::Value;

const STRUCTURED: &str = "application/cloudevents+json";

async fn produce(node: &Node, channel: &str, id: &str, ty: &str) -> u64 {
    let (status, body) = post(node, channel, STRUCTURED, event(id, ty).to_string()).await;
    assert_eq!(status, 201, "{body}");
    body["offsets"][0].as_u64().expect("offset")
}

/// Reads `n` events from a consumer, failing after 20 s.
async fn take(
    stream: &mut (
             impl futures::Stream<Item = Result<String, draft_catalyst::client::ClientError>> + Unpin
         ),
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let text = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("event within 20 s")
            .expect("stream open")
            .expect("event");
        out.push(serde_json::from_str(&text).expect("JSON event"));
    }
    out
}

fn offsets(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["draftoffset"].as_u64().expect("draftoffset"))
        .collect()
}

fn from(from: &str) -> ReadOptions {
    ReadOptions {
        from: Some(from.to_owned()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_every_kind_of_start_then_live() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = Client::new(&node.url);
    for i in 0..5 {
        produce(&node, "c", &format!("a{i}"), "early").await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..5 {
        produce(&node, "c", &format!("b{i}"), "late").await;
    }

    let mut earliest = client
        .consume("c", &from("earliest"))
        .await
        .expect("consume");
    assert_eq!(
        offsets(&take(&mut earliest, 10).await),
        (0..10).collect::<Vec<_>>()
    );
    let mut at_offset = client.consume("c", &from("7")).await.expect("consume");
    assert_eq!(offsets(&take(&mut at_offset, 3).await), vec![7, 8, 9]);
    let mut at_time = client.consume("c", &from(&middle)).await.expect("consume");
    let timed = take(&mut at_time, 5).await;
    assert_eq!(offsets(&timed), vec![5, 6, 7, 8, 9]);
    assert!(timed.iter().all(|e| e["type"] == "late"));
    let mut latest = client.consume("c", &from("latest")).await.expect("consume");
    // Give the latest consumer time to attach before the next event.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let live = produce(&node, "c", "live", "live").await;
    for stream in [&mut earliest, &mut at_offset, &mut at_time, &mut latest] {
        let got = take(stream, 1).await;
        assert_eq!(
            offsets(&got),
            vec![live],
            "live event, no gap, no duplicate"
        );
        assert_eq!(got[0]["draftchannel"], "c");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_two_consumers_each_get_everything_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = Client::new(&node.url);
    let mut first = client
        .consume("f", &from("earliest"))
        .await
        .expect("consume");
    let mut second = client
        .consume("f", &from("earliest"))
        .await
        .expect("consume");
    let prefix = ReadOptions {
        from: Some("earliest".into()),
        types: vec!["order.*".into()],
        ..Default::default()
    };
    let mut orders = client.consume("f", &prefix).await.expect("consume");
    let exact = ReadOptions {
        from: Some("earliest".into()),
        types: vec!["user.created".into()],
        ..Default::default()
    };
    let mut users = client.consume("f", &exact).await.expect("consume");
    let by_source = ReadOptions {
        from: Some("earliest".into()),
        sources: vec!["/nobody".into()],
        ..Default::default()
    };
    let mut nobody = client.consume("f", &by_source).await.expect("consume");

    let types = [
        "order.created",
        "user.created",
        "order.paid",
        "user.deleted",
    ];
    for i in 0..200 {
        produce(&node, "f", &format!("e{i}"), types[i % 4]).await;
    }
    for stream in [&mut first, &mut second] {
        assert_eq!(
            offsets(&take(stream, 200).await),
            (0..200).collect::<Vec<_>>()
        );
    }
    let got = take(&mut orders, 100).await;
    assert!(
        got.iter()
            .all(|e| e["type"].as_str().is_some_and(|t| t.starts_with("order.")))
    );
    assert!(
        offsets(&got).windows(2).all(|w| w[0] < w[1]),
        "offset order"
    );
    let got = take(&mut users, 50).await;
    assert!(got.iter().all(|e| e["type"] == "user.created"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), nobody.next())
            .await
            .is_err(),
        "source filter passes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consume_parameters_are_a_400_before_the_upgrade() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = Client::new(&node.url);
    let empty_type = ReadOptions {
        types: vec![String::new()],
        ..Default::default()
    };
    let empty_source = ReadOptions {
        sources: vec!["/s".to_owned(), String::new()],
        ..Default::default()
    };
    for (bad, says) in [
        (from("yesterday"), "400"),
        (from("-1"), "400"),
        (from("12x"), "400"),
        (empty_type, "must not be empty"),
        (empty_source, "must not be empty"),
    ] {
        let err = client.consume("c", &bad).await.err().expect("refused");
        let text = err.to_string();
        assert!(
            text.contains("invalid_parameter") && text.contains(says),
            "{text}"
        );
    }
    let err = client
        .consume("BadName", &from("earliest"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn a_page_of_large_events_ends_at_its_byte_budget_and_replay_still_gets_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &[]);
    let blob = "x".repeat(900 << 10);
    for i in 0..24 {
        let e = serde_json::json!({"specversion": "1.0", "id": format!("big-{i}"), "source": "/big",
            "type": "t", "data": blob});
        let (status, body) = post(&node, "big", STRUCTURED, e.to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
    let client = reqwest::Client::new();
    let (mut from, mut pages, mut seen) = (0u64, 0, 0);
    while seen < 24 {
        let r = client
            .get(format!(
                "{}/v1/channels/big/events?from={from}&limit=10000",
                node.url
            ))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status().as_u16(), 200);
        let next: u64 = r.headers()["draft-next-offset"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("offset");
        let page: Vec<Value> = r.json().await.expect("batch");
        assert!(
            !page.is_empty() && page.len() <= 5,
            "{} events of 900 KiB in one page",
            page.len()
        );
        assert_eq!(
            next,
            from + page.len() as u64,
            "the next page starts after this one"
        );
        seen += page.len();
        from = next;
        pages += 1;
    }
    assert_eq!(seen, 24);
    assert!(pages >= 5, "pages: {pages}");
    // A replay over a WebSocket delivers every one of them, in order.
    let mut stream = Client::new(&node.url)
        .consume(
            "big",
            &ReadOptions {
                from: Some("earliest".into()),
                ..Default::default()
            },
        )
        .await
        .expect("consume");
    for i in 0..24u64 {
        let text = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        let e: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(e["draftoffset"], i);
    }
}
