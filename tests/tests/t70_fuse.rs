//! Fuse end to end, with real upstream processes: routing by prefix and host, `strip_prefix` and
//! forwarding headers, round robin, failover when an upstream dies, routes changing under
//! load without errors, a WebSocket through the proxy, and the error answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use draft_tests::{Node, Upstream, register};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn get(client: &reqwest::Client, node: &Node, host: &str, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{}{path}", node.ingress))
        .header("host", host)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls until a request for `path` is answered by `name` (routes follow the registry).
async fn until_routed(client: &reqwest::Client, node: &Node, host: &str, path: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(client, node, host, path).await;
        if body["name"] == name {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never reached {name}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_prefix_and_host_with_strip_prefix_and_forwarding_headers() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (api, users, tenant) = (
        Upstream::start("api"),
        Upstream::start("users"),
        Upstream::start("tenant"),
    );
    register(
        &node,
        "api",
        "a1",
        &api.address,
        json!([{"prefix": "/api"}]),
        60_000,
    )
    .await;
    register(
        &node,
        "users",
        "u1",
        &users.address,
        json!([{"prefix": "/api/users", "strip_prefix": true}]),
        60_000,
    )
    .await;
    register(
        &node,
        "tenant",
        "t1",
        &tenant.address,
        json!([{"prefix": "/", "host": "tenant.example"}]),
        60_000,
    )
    .await;
    let client = reqwest::Client::new();
    until_routed(&client, &node, "x", "/api", "api").await;

    let (status, body) = get(&client, &node, "shop.example", "/api/orders?x=1").await;
    assert_eq!(
        (status, body["name"].as_str(), body["path"].as_str()),
        (200, Some("api"), Some("/api/orders?x=1"))
    );
    assert_eq!(body["headers"]["x-forwarded-host"], "shop.example");
    assert_eq!(body["headers"]["x-forwarded-proto"], "http");
    assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
    let (_, body) = get(&client, &node, "shop.example", "/api/users/7").await;
    assert_eq!(
        (body["name"].as_str(), body["path"].as_str()),
        (Some("users"), Some("/7")),
        "longest prefix, stripped"
    );
    let (_, body) = get(&client, &node, "tenant.example:8080", "/api/users").await;
    assert_eq!(
        body["name"], "tenant",
        "a host route beats a longer host-less prefix"
    );

    let (status, body) = get(&client, &node, "x", "/apiary").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("no_route"))
    );
    let post = client
        .post(format!("{}/api/upload", node.ingress))
        .body(vec![7u8; 100_000])
        .send()
        .await
        .expect("post");
    assert_eq!(
        post.json::<Value>().await.expect("json")["body_len"],
        100_000
    );

    let routes: Value = client
        .get(format!("{}/v1/routes", node.url))
        .send()
        .await
        .expect("routes")
        .json()
        .await
        .expect("json");
    assert_eq!(routes["routes"].as_array().map(Vec::len), Some(3));
    let before: Value = client
        .get(format!("{}/v1/routes?at=0", node.url))
        .send()
        .await
        .expect("routes")
        .json()
        .await
        .expect("json");
    assert_eq!(
        before["routes"].as_array().map(Vec::len),
        Some(1),
        "as of the first registration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_then_failover_when_an_upstream_dies() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (a, mut b) = (Upstream::start("a"), Upstream::start("b"));
    register(
        &node,
        "web",
        "a",
        &a.address,
        json!([{"prefix": "/"}]),
        60_000,
    )
    .await;
    register(
        &node,
        "web",
        "b",
        &b.address,
        json!([{"prefix": "/"}]),
        60_000,
    )
    .await;
    let client = reqwest::Client::new();
    until_routed(&client, &node, "x", "/", "b").await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..20 {
        let (_, body) = get(&client, &node, "x", "/").await;
        *seen
            .entry(body["name"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        (seen.get("a"), seen.get("b")),
        (Some(&10), Some(&10)),
        "round robin: {seen:?}"
    );

    b.kill9(); // still registered and passing: Fuse must fail over on connect errors
    for _ in 0..20 {
        let (status, body) = get(&client, &node, "x", "/").await;
        assert_eq!(
            (status, body["name"].as_str()),
            (200, Some("a")),
            "failover to the live instance"
        );
    }
    drop(a);
    let (status, body) = get(&client, &node, "x", "/").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_unavailable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_change_under_load_without_errors() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (old, new) = (Upstream::start("old"), Upstream::start("new"));
    register(
        &node,
        "web",
        "old",
        &old.address,
        json!([{"prefix": "/"}]),
        60_000,
    )
    .await;
    let client = reqwest::Client::new();
    until_routed(&client, &node, "x", "/", "old").await;
    let (stop, errors, served) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop, errors, served) = (
            client.clone(),
            node.ingress.clone(),
            Arc::clone(&stop),
            Arc::clone(&errors),
            Arc::clone(&served),
        );
        load.push(tokio::spawn(async move {
            let mut names = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get(format!("{url}/")).send().await {
                    Ok(r) if r.status().is_success() => {
                        served.fetch_add(1, Ordering::Relaxed);
                        names.push(
                            r.json::<Value>()
                                .await
                                .map(|v| v["name"].to_string())
                                .unwrap_or_default(),
                        );
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            names
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    register(
        &node,
        "web",
        "new",
        &new.address,
        json!([{"prefix": "/"}]),
        60_000,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = client
        .delete(format!("{}/v1/services/web/instances/old", node.url))
        .send()
        .await
        .expect("deregister");
    assert_eq!(r.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tail = Vec::new();
    for task in load {
        tail = task.await.expect("load");
    }
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "no errors while routes changed"
    );
    assert!(served.load(Ordering::Relaxed) > 100, "load ran");
    assert_eq!(
        tail.last().map(String::as_str),
        Some("\"new\""),
        "traffic moved to the new instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_the_proxy_and_error_answers() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let echo = Upstream::start("echo");
    register(
        &node,
        "chat",
        "c1",
        &echo.address,
        json!([{"prefix": "/ws"}]),
        60_000,
    )
    .await;
    register(
        &node,
        "slow",
        "s1",
        &echo.address,
        json!([{"prefix": "/slow", "timeout_ms": 200}]),
        60_000,
    )
    .await;
    register(
        &node,
        "gone",
        "g1",
        &echo.address,
        json!([{"prefix": "/gone"}]),
        300,
    )
    .await;
    let client = reqwest::Client::new();
    until_routed(&client, &node, "x", "/ws/info", "echo").await;

    let url = format!("{}/ws", node.ingress.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket through Fuse");
    for i in 0..3 {
        socket
            .send(Message::Text(format!("hello {i}").into()))
            .await
            .expect("send");
        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("reply")
            .expect("open")
            .expect("message");
        assert_eq!(
            reply.into_text().expect("text").as_str(),
            format!("echo: hello {i}")
        );
    }

    let (status, body) = get(&client, &node, "x", "/slow?sleep_ms=2000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("upstream_timeout"))
    );
    // `gone` stops heartbeating: once its lease lapses the route answers 503.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&client, &node, "x", "/gone").await;
        if status == 503 {
            assert_eq!(body["error"]["code"], "no_healthy_instance");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "lease never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("draft_fuse_requests_total{route=\"/slow\",class=\"5xx\"} 1"),
        "{metrics}"
    );
}
