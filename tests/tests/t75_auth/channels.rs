//! Draft's own channels, the actor in `_draft` and on produced events, route claims.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};

use draft_tests::auth::{admin_token, create, produce, send};
use draft_tests::{Node, dctl, event};

const STRUCTURED: &str = "application/cloudevents+json";

/// `_draft` and `_groups` are for `admin` and `reader` only, whatever a policy's patterns;
/// a WebSocket takes its token as `access_token` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_own_channels_need_admin_or_reader() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let greedy = create(
        &node,
        &admin,
        json!({"name": "greedy", "policy": {"channels": {"consume": ["*"], "produce": ["*"]}}}),
    )
    .await;
    let reader = create(&node, &admin, json!({"name": "ci", "role": "reader"})).await;
    for channel in ["_draft", "_groups"] {
        let url = format!("{}/v1/channels/{channel}/events", node.url);
        let (status, body) = send(reqwest::Method::GET, &url, Some(&greedy), "").await;
        assert_eq!(status, 403, "{channel}: {body}");
        for token in [&reader, &admin] {
            let (status, body) = send(reqwest::Method::GET, &url, Some(token), "").await;
            assert!(matches!(status, 200 | 404), "{channel}: {status} {body}");
        }
    }
    let (status, _) = produce(&node, "orders", Some(&greedy), "o1").await;
    assert_eq!(status, 201, "its patterns still grant user channels");

    let ws = node.url.replacen("http", "ws", 1);
    let consume =
        |token: &str| format!("{ws}/v1/channels/_draft/consume?from=earliest&access_token={token}");
    let refused = tokio_tungstenite::connect_async(consume(&greedy)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
    let refused =
        tokio_tungstenite::connect_async(format!("{ws}/v1/channels/_draft/consume")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(consume(&reader))
        .await
        .expect("a reader follows the audit trail");
    let first = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .expect("an event within 20 s")
        .expect("open")
        .expect("message");
    let first: Value = serde_json::from_str(first.to_text().expect("text")).expect("JSON");
    assert_eq!(first["type"], "io.draft.token.created");
    assert!(first["data"]["secret_sha256"].is_string());
    assert!(first["data"].get("token").is_none(), "never the secret");
}

/// The token's name is the actor: on control events (and in `dctl log tail`), and on every
/// produced event, over HTTP and over a WebSocket; a producer cannot claim another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_is_the_tokens_name_in_draft_and_on_produced_events() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let orders = create(&node, &admin, json!({"name": "orders", "role": "service"})).await;
    let (status, _) = send(
        reqwest::Method::PUT,
        &format!("{}/v1/kv/config/orders/db", node.url),
        Some(&admin),
        "postgres://db",
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = produce(&node, "orders", Some(&orders), "h1").await;
    assert_eq!(status, 201, "{body}");
    let client = draft_catalyst::client::Client::new(&node.url).with_token(Some(orders.clone()));
    let producer = client
        .producer("orders", draft_catalyst::client::ProducerOptions::default())
        .await
        .expect("a WebSocket producer with the token");
    producer
        .send(event("w1", "t").to_string())
        .await
        .expect("stored");
    producer.close().await;
    let mut forged = event("f1", "t");
    forged["draftactor"] = json!("admin");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/channels/orders/events", node.url))
        .bearer_auth(&orders)
        .header("content-type", STRUCTURED)
        .body(forged.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(
        response.status().as_u16(),
        400,
        "draftactor is Draft's to set"
    );
    let (status, _) = produce(&node, "payments", Some(&orders), "p1").await;
    assert_eq!(status, 403, "the service role is scoped to its name");

    let page = client
        .page(
            "orders",
            &draft_catalyst::client::ReadOptions {
                from: Some("earliest".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("the service reads its channel");
    let actors: Vec<&Value> = page.events.iter().map(|e| &e["draftactor"]).collect();
    assert_eq!(actors, [&json!("orders"), &json!("orders")]);

    let audit = draft_catalyst::client::Client::new(&node.url).with_token(Some(admin.clone()));
    let control = audit
        .page(
            "_draft",
            &draft_catalyst::client::ReadOptions {
                from: Some("earliest".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("admin reads the audit trail");
    let by: Vec<(String, String)> = control
        .events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["draftactor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        by.contains(&("io.draft.token.created".into(), "draft".into())),
        "{by:?}"
    );
    assert!(
        by.contains(&("io.draft.token.created".into(), "admin".into())),
        "{by:?}"
    );
    assert!(
        by.contains(&("io.draft.kv.put".into(), "admin".into())),
        "{by:?}"
    );
    let orders_created = control
        .events
        .iter()
        .find(|e| e["data"]["name"] == "orders")
        .expect("the orders token's creation");
    assert_eq!(orders_created["data"]["creator"], "admin");
    assert_eq!(orders_created["data"]["policy"]["role"], "service");

    let tail = Command::new(dctl())
        .args(["log", "tail", "--token", &admin])
        .env("DRAFT_URL", &node.url)
        .output()
        .expect("dctl log tail");
    let text = String::from_utf8_lossy(&tail.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("admin") && l.contains("io.draft.kv.put")),
        "{text}"
    );
    assert!(
        !text.contains(&orders) && !text.contains(&admin),
        "no secret in the trail"
    );
}

/// A registration claims its routes: `routes.claim` decides which (`host/prefix`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_may_claim_only_the_routes_its_policy_allows() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let orders = create(&node, &admin, json!({"name": "orders", "role": "service"})).await;
    let url = format!("{}/v1/services/orders/instances/o1", node.url);
    let register = |routes: Value| {
        json!({"address": "127.0.0.1:9000", "routes": routes, "ttl_ms": 60_000}).to_string()
    };
    let put = |body: String| {
        let (url, orders) = (url.clone(), orders.clone());
        async move {
            let response = reqwest::Client::new()
                .put(url)
                .bearer_auth(orders)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("register");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = put(register(json!([{"prefix": "/orders/v1"}]))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(register(json!([{"prefix": "/"}]))).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("routes.claim"),
        "{body}"
    );
    let (status, _) = put(register(
        json!([{"prefix": "/orders", "host": "evil.example"}]),
    ))
    .await;
    assert_eq!(status, 403, "a host route is host/prefix");
    let (status, _) = send(
        reqwest::Method::PUT,
        &format!("{}/v1/services/payments/instances/p1", node.url),
        Some(&orders),
        &register(json!([])),
    )
    .await;
    assert_eq!(status, 403, "another service's name");
}

/// A route another service owns is taken only by a token that names it exactly (or an
/// admin's): the default `service` policy of `pay` (`/pay*`) matches `/payments` but may
/// not take it from `payments`, a policy naming `/payments` hands it over, and the old
/// owner cannot take it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_is_taken_over_only_with_a_token_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let payments = create(
        &node,
        &admin,
        json!({"name": "payments", "role": "service"}),
    )
    .await;
    let pay = create(&node, &admin, json!({"name": "pay", "role": "service"})).await;
    let v2 = create(
        &node,
        &admin,
        json!({"name": "payments-v2", "policy": {
            "services": {"register": ["payments-v2"]},
            "routes": {"claim": ["/payments"]}}}),
    )
    .await;
    let register = |service: &str, instance: &str, token: &str| {
        let url = format!("{}/v1/services/{service}/instances/{instance}", node.url);
        let token = token.to_owned();
        async move {
            let body = json!({"address": "127.0.0.1:9000", "routes": [{"prefix": "/payments/"}], "ttl_ms": 60_000});
            send(reqwest::Method::PUT, &url, Some(&token), &body.to_string()).await
        }
    };
    let owner = || async {
        let (status, table) = send(
            reqwest::Method::GET,
            &format!("{}/v1/routes", node.url),
            Some(&admin),
            "",
        )
        .await;
        assert_eq!(status, 200, "{table}");
        table["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["prefix"] == "/payments/"))
            .map_or(Value::Null, |r| r["owner"].clone())
    };

    let (status, body) = register("payments", "p1", &payments).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = register("pay", "x1", &pay).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("conflict")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("payments"),
        "{body}"
    );
    assert_eq!(owner().await, "payments");

    let (status, body) = register("payments-v2", "n1", &v2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(owner().await, "payments-v2");
    let (status, body) = register("payments", "p2", &payments).await;
    assert_eq!(status, 409, "the old owner cannot take it back: {body}");
    assert_eq!(owner().await, "payments-v2");

    // The audit trail says who took it: the registration's actor in `_draft`.
    let (status, trail) = send(
        reqwest::Method::GET,
        &format!("{}/v1/channels/_draft/events?from=earliest", node.url),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, 200, "{trail}");
    let registered = |actor: &str| {
        trail.as_array().into_iter().flatten().any(|e| {
            e["type"] == "io.draft.instance.registered"
                && e["draftactor"] == actor
                && e["data"]["routes"][0]["prefix"] == "/payments/"
        })
    };
    assert!(
        registered("payments-v2") && registered("payments"),
        "{trail}"
    );
    assert!(
        !registered("pay"),
        "a refused claim leaves no event: {trail}"
    );
}
