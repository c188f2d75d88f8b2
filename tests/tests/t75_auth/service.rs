//! A Chassis service on a node that checks tokens: with `DRAFT_TOKEN` it registers, follows
//! its configuration, joins its consumer group and produces, and the log names its token.

use std::time::Duration;

use serde_json::{Value, json};

use draft_tests::auth::{admin_token, create, send};
use draft_tests::service::{Service, binary, eventually};
use draft_tests::{Node, stored};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_service_runs_with_its_token_and_is_its_actor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &["--auth", "on"]);
    let admin = admin_token(&node);
    let token = create(
        &node,
        &admin,
        json!({"name": "orders", "policy": {
            "services": {"register": ["orders"]},
            "kv": {"read": ["config/orders/*"]},
            "channels": {"produce": ["orders", "orders.*", "payments.dlq"],
                         "consume": ["orders", "payments"]},
            "routes": {"claim": ["/orders*"]}}}),
    )
    .await;
    let svc = Service::start(
        &binary("orders"),
        &node.url,
        &[("DRAFT_TOKEN", token.as_str())],
        dir.path(),
    );
    let services = format!("{}/v1/services/orders", node.url);
    let registered = eventually(Duration::from_secs(10), || async {
        let (_, body) = send(reqwest::Method::GET, &services, Some(&admin), "").await;
        let instances = body["instances"].as_array()?.clone();
        (!instances.is_empty()).then_some(instances)
    })
    .await
    .expect("registered with its token");
    assert_eq!(registered[0]["instance"], svc.instance.as_str());

    let created = eventually(Duration::from_secs(10), || async {
        let response = reqwest::Client::new()
            .post(format!("{}/orders", node.ingress))
            .json(&json!({"item": "book", "amount": 12}))
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 201).then_some(())
    })
    .await;
    assert!(created.is_some(), "an order through the ingress");
    let events = stored_as_admin(&node, &admin, "orders").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["draftactor"], "orders",
        "the service's token produced it"
    );
    assert!(
        stored(&node, "orders").await.is_empty(),
        "and the channel is not readable without a token"
    );

    let control = stored_as_admin(&node, &admin, "_draft").await;
    let by_orders: Vec<&str> = control
        .iter()
        .filter(|e| e["draftactor"] == "orders")
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        by_orders.contains(&"io.draft.instance.registered"),
        "{by_orders:?}"
    );
    assert!(
        by_orders.contains(&"io.draft.group.created"),
        "{by_orders:?}"
    );
}

/// Every event of `channel`, read with `token`.
async fn stored_as_admin(node: &Node, token: &str, channel: &str) -> Vec<Value> {
    let client = draft_catalyst::client::Client::new(&node.url).with_token(Some(token.to_owned()));
    let options = draft_catalyst::client::ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    client
        .page(channel, &options, 1000)
        .await
        .map(|p| p.events)
        .unwrap_or_default()
}
