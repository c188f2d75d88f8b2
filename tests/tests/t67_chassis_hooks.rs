//! Hooks of the example service under failure: every payment yields exactly one
//! `order.paid` across a kill -9 of the service and a restart of the node, and two replicas
//! share the group as one active member and one standby that takes over in order.

use std::collections::HashMap;
use std::time::Duration;

use draft_tests::service::{Service, binary, eventually};
use draft_tests::{Node, count, free_port, post, stored};
use serde_json::{Value, json};

/// Creates `n` orders through the service, 16 at a time; returns their ids in order.
async fn create_orders(base: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let requests = chunk.iter().map(|i| {
            let client = client.clone();
            async move {
                let r = client
                    .post(format!("{base}/orders"))
                    .json(&json!({"item": format!("item-{i}"), "amount": 1 + (i % 100)}))
                    .send()
                    .await
                    .expect("POST /orders");
                assert_eq!(r.status().as_u16(), 201);
                r.json::<Value>().await.expect("json")["id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            }
        });
        ids.extend(futures::future::join_all(requests).await);
    }
    ids
}

/// Produces one payment per order, 100 to a batch, with ids `<tag>-<n>`.
async fn pay(node: &Node, ids: &[String], tag: &str) {
    for (batch, chunk) in ids.chunks(100).enumerate() {
        let events: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                json!({"specversion": "1.0", "id": format!("{tag}-{}", batch * 100 + i),
                       "source": "/bank", "type": "com.example.payment.received",
                       "data": {"order": id, "amount": 1}})
            })
            .collect();
        let (status, body) = post(
            node,
            "payments",
            "application/cloudevents-batch+json",
            Value::Array(events).to_string(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// The `order.paid` events of `orders`, as order ids in channel order.
async fn paid(node: &Node) -> Vec<String> {
    stored(node, "orders")
        .await
        .into_iter()
        .filter(|e| e["type"] == "com.example.order.paid")
        .map(|e| e["data"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until `orders` holds `n` events.
async fn until_count(node: &Node, n: u64, timeout: Duration) -> bool {
    eventually(timeout, || async {
        (count(node, "orders").await >= n).then_some(())
    })
    .await
    .is_some()
}

/// Every id of `ids` paid exactly once.
fn exactly_once(paid: &[String], ids: &[String]) {
    let mut times: HashMap<&str, usize> = HashMap::new();
    for id in paid {
        *times.entry(id).or_default() += 1;
    }
    for id in ids {
        assert_eq!(
            times.get(id.as_str()),
            Some(&1),
            "order {id} paid {:?} times",
            times.get(id.as_str())
        );
    }
}

#[tokio::test]
async fn every_payment_once_across_a_service_kill_and_a_node_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("node");
    let mut node = Node::start_listening(&data, &listen, &[]);
    let orders = binary("orders");
    let mut svc = Service::start(&orders, &node.url, &[], dir.path());
    let ids = create_orders(&svc.url(), 1000).await;
    pay(&node, &ids, "pay").await;
    assert!(
        until_count(&node, 1300, Duration::from_secs(60)).await,
        "payments are not handled"
    );
    svc.kill9();
    let svc = Service::start(&orders, &node.url, &[], dir.path());
    assert!(
        until_count(&node, 2000, Duration::from_secs(60)).await,
        "the restarted service did not resume the group"
    );
    // Nothing more comes: no payment is handled twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = paid(&node).await;
    assert_eq!(first.len(), 1000);
    exactly_once(&first, &ids);

    // The same across a node restart, in the middle of another 500 payments.
    let more = create_orders(&svc.url(), 500).await;
    pay(&node, &more, "more").await;
    assert!(until_count(&node, 2500 + 100, Duration::from_secs(60)).await);
    let status = node.terminate();
    assert!(status.success(), "node exit {status}");
    // While the node is away the service keeps serving, but says its hooks are down.
    let readyz = format!("{}/readyz", svc.url());
    let down = eventually(Duration::from_secs(5), || async {
        let r = reqwest::get(&readyz).await.ok()?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.ok()?;
        let why = body["error"]["message"].as_str().unwrap_or_default();
        (status == 503 && why.contains("hook payments/orders-payments is not connected"))
            .then_some(body)
    })
    .await
    .expect("/readyz turns 503, naming the hook, while the node is away");
    assert_eq!(down["error"]["code"], "not_ready");
    node = Node::start_listening(&data, &listen, &[]);
    let at_restart = count(&node, "orders").await;
    assert!(
        at_restart < 3000,
        "the node stopped after every payment was handled ({at_restart})"
    );
    let up = eventually(Duration::from_secs(10), || async {
        let r = reqwest::get(&readyz).await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "/readyz did not recover after the node came back"
    );
    assert!(
        until_count(&node, 3000, Duration::from_secs(60)).await,
        "the hook did not reconnect after the node restart:\n{}",
        svc.log_text()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = paid(&node).await;
    assert_eq!(all.len(), 1500);
    exactly_once(&all, &more);
    // Every order shows paid.
    let client = reqwest::Client::new();
    for id in ids.iter().chain(&more).step_by(7) {
        let order: Value = client
            .get(format!("{}/orders/{id}", svc.url()))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(order["status"], "paid", "{order}");
    }
}

#[tokio::test]
async fn two_replicas_one_active_and_a_standby_that_takes_over_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let orders = binary("orders");
    let a = Service::start(&orders, &node.url, &[], dir.path());
    let b = Service::start(&orders, &node.url, &[], dir.path());
    let group_url = format!("{}/v1/channels/payments/groups/orders-payments", node.url);
    let group = eventually(Duration::from_secs(10), || async {
        let g: Value = reqwest::get(&group_url).await.ok()?.json().await.ok()?;
        (g["active"].is_object() && g["standbys"].as_array().map(Vec::len) == Some(1)).then_some(g)
    })
    .await
    .expect("one active member and one standby");
    let active_addr = group["active"]["remote_address"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let ids = create_orders(&a.url(), 600).await;
    pay(&node, &ids[..200], "first").await;
    assert!(until_count(&node, 800, Duration::from_secs(30)).await);
    // One replica handled all of them. (A replica logs "order paid" after it produced the
    // event the node counted: wait for the line of the last one.)
    let handled = |s: &Service| s.log_text().matches("order paid").count();
    let _ = eventually(Duration::from_secs(5), || async {
        (handled(&a) + handled(&b) >= 200).then_some(())
    })
    .await;
    let (ha, hb) = (handled(&a), handled(&b));
    assert!(
        (ha, hb) == (200, 0) || (ha, hb) == (0, 200),
        "handled by a: {ha}, by b: {hb} (active {active_addr})"
    );
    let (mut active, standby) = if ha == 200 { (a, b) } else { (b, a) };

    // Killed in the middle of the next 400.
    pay(&node, &ids[200..], "second").await;
    assert!(until_count(&node, 850, Duration::from_secs(30)).await);
    active.kill9();
    let at_kill = count(&node, "orders").await;
    assert!(
        at_kill < 1200,
        "the kill came after every payment was handled ({at_kill})"
    );
    assert!(
        until_count(&node, 1200, Duration::from_secs(60)).await,
        "the standby did not take over"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = paid(&node).await;
    assert_eq!(all.len(), 600);
    exactly_once(&all, &ids);
    // In payment order: each payment was handled after the one before it.
    assert_eq!(all, ids, "order.paid events out of payment order");
    let needed = 600 - (at_kill as usize - 600);
    let _ = eventually(Duration::from_secs(5), || async {
        (handled(&standby) >= needed).then_some(())
    })
    .await;
    assert!(
        handled(&standby) >= needed,
        "{} < {needed}",
        handled(&standby)
    );
}
