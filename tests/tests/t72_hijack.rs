//! Routing that cannot be hijacked, end to end: each way of turning the ingress against its
//! node or another service is tried against real `dctl up` processes and refused — an
//! instance at the cloud metadata address or at the node's own listeners, a loop between two
//! nodes' ingresses (508 after one trip, not a storm), a route another service owns (409),
//! spoofed forwarding headers, dot-segment and encoded-slash paths, and a route prefix that
//! would forge Prometheus lines.

use std::time::Duration;

use draft_tests::prometheus::parse_sample;
use draft_tests::{Node, Upstream, register};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `PUT`s a registration; returns the status and the JSON answer.
async fn try_register(node: &Node, service: &str, instance: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!(
            "{}/v1/services/{service}/instances/{instance}",
            node.url
        ))
        .json(body)
        .send()
        .await
        .expect("register");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

fn port(url: &str) -> u16 {
    host_port(url)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

async fn text(url: String) -> String {
    reqwest::get(url)
        .await
        .expect("get")
        .text()
        .await
        .expect("text")
}

async fn metrics(node: &Node) -> String {
    text(format!("{}/metrics", node.url)).await
}

/// The value of the sample `line_start` begins (`name{labels}`), if the page has it.
fn sample(page: &str, line_start: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

/// Sends `request` as raw bytes (so the path reaches the node exactly as written, which
/// `reqwest` would normalize) and returns the status and body.
async fn raw(ingress: &str, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(host_port(ingress))
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get_raw(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

/// Waits until `node`'s route table has `count` routes.
async fn until_routes(node: &Node, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let table: Value = serde_json::from_str(&text(format!("{}/v1/routes", node.url)).await)
            .expect("route table");
        if table["routes"].as_array().map(Vec::len) == Some(count) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "routes never appeared: {table}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_address_and_the_nodes_own_listeners_cannot_be_registered() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (api, ingress) = (port(&node.url), port(&node.ingress));
    for (address, says) in [
        ("169.254.169.254:80".to_owned(), "link-local"),
        ("[::ffff:169.254.169.254]:80".to_owned(), "link-local"),
        ("[fe80::1]:80".to_owned(), "link-local"),
        ("0.0.0.0:9000".to_owned(), "unspecified"),
        ("224.0.0.251:5353".to_owned(), "multicast"),
        (host_port(&node.url).to_owned(), "the node's own API"),
        (format!("localhost:{api}"), "the node's own API"),
        (format!("[::1]:{api}"), "the node's own API"),
        (format!("127.0.0.2:{api}"), "the node's own API"),
        (
            host_port(&node.ingress).to_owned(),
            "the node's own ingress",
        ),
        (format!("localhost:{ingress}"), "the node's own ingress"),
    ] {
        let body = json!({"address": address, "routes": [{"prefix": "/steal"}], "ttl_ms": 60_000});
        let (status, answer) = try_register(&node, "evil", "e1", &body).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_registration")),
            "{address}: {answer}"
        );
        assert!(message.contains(says), "{address}: {message}");
    }
    let r = reqwest::get(format!("{}/steal", node.ingress))
        .await
        .expect("ingress");
    assert_eq!(r.status().as_u16(), 404, "nothing was routed");
    // An upstream on loopback at another port is an ordinary instance.
    let upstream = Upstream::start("ok");
    register(
        &node,
        "web",
        "w1",
        &upstream.address,
        json!([{"prefix": "/"}]),
        60_000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_allow_restricts_addresses_to_its_networks() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--upstream-allow", "127.0.0.0/8,10.0.0.0/8"]);
    let upstream = Upstream::start("ok");
    register(&node, "web", "w1", &upstream.address, json!([]), 60_000).await;
    let body = json!({"address": "[::1]:9000", "ttl_ms": 60_000});
    let (status, answer) = try_register(&node, "web", "w2", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--upstream-allow"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_between_two_ingresses_gets_508_after_one_trip_not_a_storm() {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = Node::start(dir_a.path(), &["--node-name", "node-a"]);
    let b = Node::start(dir_b.path(), &["--node-name", "node-b"]);
    // Another node's ingress is a legitimate upstream: each routes /loop to the other.
    register(
        &a,
        "loop",
        "to-b",
        host_port(&b.ingress),
        json!([{"prefix": "/loop"}]),
        60_000,
    )
    .await;
    register(
        &b,
        "loop",
        "to-a",
        host_port(&a.ingress),
        json!([{"prefix": "/loop"}]),
        60_000,
    )
    .await;
    until_routes(&a, 1).await;
    until_routes(&b, 1).await;

    let r = reqwest::get(format!("{}/loop/x", a.ingress))
        .await
        .expect("answered, not hung");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (508, Some("loop_detected")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("node-a"),
        "{body}"
    );

    // One trip round the loop: A forwarded once, B forwarded once, A refused the return.
    let (ma, mb) = (metrics(&a).await, metrics(&b).await);
    let forwarded = |page: &str| -> f64 {
        (1..=5)
            .filter_map(|c| {
                sample(
                    page,
                    &format!("draft_fuse_requests_total{{route=\"/loop\",class=\"{c}xx\"}}"),
                )
            })
            .sum()
    };
    assert_eq!(
        (forwarded(&ma), forwarded(&mb)),
        (1.0, 1.0),
        "A:\n{ma}\nB:\n{mb}"
    );
    assert_eq!(
        sample(&ma, "draft_fuse_refused_total{reason=\"loop_detected\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&mb, "draft_fuse_refused_total{reason=\"loop_detected\"}"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_another_service_owns_gets_409_naming_the_owner_until_released() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (shop, evil) = (Upstream::start("shop"), Upstream::start("evil"));
    register(
        &node,
        "shop",
        "s1",
        &shop.address,
        json!([{"prefix": "/checkout", "host": "shop.example"}]),
        60_000,
    )
    .await;
    for (host, prefix) in [
        ("shop.example", "/checkout"),
        ("SHOP.example:443", "/checkout/"),
    ] {
        let body = json!({"address": evil.address, "routes": [{"prefix": prefix, "host": host}], "ttl_ms": 60_000});
        let (status, answer) = try_register(&node, "evil", "e1", &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("conflict")),
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("shop.example/checkout") && message.contains("service shop"),
            "{message}"
        );
    }
    until_routes(&node, 1).await;
    let table: Value =
        serde_json::from_str(&text(format!("{}/v1/routes", node.url)).await).expect("table");
    assert_eq!(table["routes"][0]["owner"], "shop", "{table}");
    assert_eq!(table["routes"][0]["service"], "shop");
    let served: Value = reqwest::Client::new()
        .get(format!("{}/checkout", node.ingress))
        .header("host", "shop.example")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(served["name"], "shop");

    // Deregistering the owner's last instance releases the route.
    let r = reqwest::Client::new()
        .delete(format!("{}/v1/services/shop/instances/s1", node.url))
        .send()
        .await
        .expect("deregister");
    assert_eq!(r.status().as_u16(), 200);
    let body = json!({"address": evil.address, "routes": [{"prefix": "/checkout", "host": "shop.example"}], "ttl_ms": 60_000});
    assert_eq!(try_register(&node, "other", "o1", &body).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarding_headers_are_overwritten_and_hop_by_hop_headers_stripped() {
    let (dir, trusting_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let node = Node::start(dir.path(), &["--node-name", "edge-1"]);
    let trusting = Node::start(trusting_dir.path(), &["--trusted-proxies", "127.0.0.1"]);
    let echo = Upstream::start("echo");
    for n in [&node, &trusting] {
        register(
            n,
            "echo",
            "e1",
            &echo.address,
            json!([{"prefix": "/"}]),
            60_000,
        )
        .await;
        until_routes(n, 1).await;
    }
    let spoof = |url: String| {
        reqwest::Client::new()
            .get(url)
            .header("host", "shop.example")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-host", "admin.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "for=6.6.6.6")
            .header("x-real-ip", "6.6.6.6")
            .header("connection", "x-secret")
            .header("x-secret", "for this hop only")
            .header("draft-hop", "someone-else")
            .send()
    };
    let r = spoof(format!(
        "{}/h?header=x-upstream:1&header=connection:x-upstream&header=keep-alive:timeout=5",
        node.ingress
    ))
    .await
    .expect("get");
    assert!(r.headers().get("x-upstream").is_none(), "{:?}", r.headers());
    assert!(r.headers().get("keep-alive").is_none(), "{:?}", r.headers());
    let seen: Value = r.json().await.expect("json");
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert_eq!(headers["x-forwarded-host"], "shop.example");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(
        headers["forwarded"],
        "for=127.0.0.1;host=shop.example;proto=http"
    );
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["draft-hop"], "someone-else, edge-1");
    assert!(
        headers.get("x-secret").is_none() && headers.get("connection").is_none(),
        "{seen}"
    );

    // Behind a trusted proxy the proxy's values are kept, and the peer appended.
    let seen: Value = spoof(format!("{}/h", trusting.ingress))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1", "{seen}");
    assert_eq!(headers["x-forwarded-host"], "admin.example");
    assert_eq!(
        headers["forwarded"],
        "for=6.6.6.6, for=127.0.0.1;host=shop.example;proto=http"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_and_encoded_slashes_cannot_reach_or_bypass_a_route() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (public, internal) = (Upstream::start("public"), Upstream::start("internal"));
    register(
        &node,
        "public",
        "p1",
        &public.address,
        json!([{"prefix": "/api/public"}]),
        60_000,
    )
    .await;
    register(
        &node,
        "internal",
        "i1",
        &internal.address,
        json!([{"prefix": "/api/internal", "host": "internal.example"}]),
        60_000,
    )
    .await;
    until_routes(&node, 2).await;
    let (status, body) = raw(&node.ingress, &get_raw("/api/public/x")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"public\""), "{body}");
    for path in [
        "/api/public/../internal",
        "/api/public/./../internal",
        "/api/public/%2e%2e/internal",
        "/api/public/.%2E/internal",
        "/api/public/..;x=1/internal",
        "/api/public%2F..%2Finternal",
        "/api/public%2f..%2finternal",
        "/api/public/..%5Cinternal",
        "/api/public/..\\internal",
    ] {
        let (status, body) = raw(&node.ingress, &get_raw(path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("invalid_path"), "{path}: {body}");
    }
    // Nothing reached an upstream: the one request above is the only one /api/public served.
    let page = metrics(&node).await;
    assert_eq!(
        sample(
            &page,
            "draft_fuse_requests_total{route=\"/api/public\",class=\"2xx\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "draft_fuse_refused_total{reason=\"invalid_path\"}"),
        Some(9.0)
    );
    assert!(!page.contains("route=\"internal.example"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_prefix_cannot_forge_metrics_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let echo = Upstream::start("echo");
    // Registration takes any visible ASCII in a prefix; `"`, `{` and `}` reach the router
    // unencoded (as clients that put JSON in paths send them).
    let prefix = "/inj\"}0\"{x}";
    register(
        &node,
        "inj",
        "i1",
        &echo.address,
        json!([{"prefix": prefix}]),
        60_000,
    )
    .await;
    until_routes(&node, 1).await;
    let (status, body) = raw(&node.ingress, &get_raw(prefix)).await;
    assert_eq!(status, 200, "{body}");
    let page = metrics(&node).await;
    let samples: Vec<_> = page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}\n{page}")))
        .collect();
    let routes: Vec<&str> = samples
        .iter()
        .filter(|(name, _, _)| name == "draft_fuse_requests_total")
        .flat_map(|(_, labels, _)| labels.iter())
        .filter(|(k, _)| k == "route")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        !routes.is_empty() && routes.iter().all(|r| *r == prefix),
        "{routes:?}\n{page}"
    );
    assert!(
        page.contains(r#"route="/inj\"}0\"{x}",class="2xx"} 1"#),
        "{page}"
    );
}
