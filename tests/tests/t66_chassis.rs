//! The example `orders` service on a real node: registration and routes, the ingress, typed
//! configuration (file < environment < KV, live, a bad value kept out), the lease across
//! SIGSTOP and kill -9, trace context, the dead-letter path, `/readyz` and `/metrics`.

use std::path::Path;
use std::time::Duration;

use draft_tests::service::{Service, binary, eventually};
use draft_tests::{Node, stored};
use serde_json::{Value, json};

fn orders(node: &Node, envs: &[(&str, &str)], cwd: &Path) -> Service {
    Service::start(&binary("orders"), &node.url, envs, cwd)
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The health of `service/instance` in the registry (`None`: not listed).
async fn health(node: &Node, service: &str, instance: &str) -> Option<String> {
    let (_, body) = get_json(&format!("{}/v1/services/{service}", node.url)).await;
    body["instances"].as_array()?.iter().find_map(|i| {
        (i["instance"] == instance).then(|| i["health"].as_str().unwrap_or_default().to_owned())
    })
}

/// Waits until the ingress routes `/orders` to a service (Fuse rebuilds its table from the
/// registry a moment after a registration is stored).
async fn routed(node: &Node) {
    let routed = eventually(Duration::from_secs(5), || async {
        let (_, body) = get_json(&format!("{}/orders/probe", node.ingress)).await;
        (body["error"]["code"] == "not_found").then_some(())
    })
    .await;
    assert!(routed.is_some(), "the ingress never routed /orders");
}

async fn create_order(base: &str, item: &str, amount: u64) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .json(&json!({"item": item, "amount": amount}))
        .send()
        .await
        .expect("POST /orders");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn registered_reachable_through_the_ingress_and_observable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let svc = orders(&node, &[], dir.path());

    let listed = eventually(Duration::from_secs(5), || async {
        let (_, body) = get_json(&format!("{}/v1/services/orders", node.url)).await;
        let i = body["instances"].as_array()?.first()?.clone();
        Some(i)
    })
    .await
    .expect("registered");
    assert_eq!(listed["instance"], svc.instance.as_str());
    assert_eq!(listed["address"], svc.addr.as_str());
    assert_eq!(listed["health"], "passing");
    assert_eq!(listed["routes"][0]["prefix"], "/orders");

    // Through the ingress.
    routed(&node).await;
    let (status, created) = create_order(&node.ingress, "book", 12).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "created");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, order) = get_json(&format!("{}/orders/{id}", node.ingress)).await;
    assert_eq!(status, 200);
    assert_eq!(
        order,
        json!({"id": id, "item": "book", "amount": 12, "currency": "EUR", "status": "created"})
    );
    let (status, body) = get_json(&format!("{}/orders/nope", node.ingress)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // Above max_amount: 400 with Draft's error body, and nothing produced.
    let (status, body) = create_order(&node.ingress, "car", 20_000).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_parameter");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("10000")),
        "{body}"
    );
    let events = stored(&node, "orders").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "com.example.order.created");
    assert_eq!(events[0]["source"], "/services/orders");

    // Its own endpoints.
    let (status, ready) = get_json(&format!("{}/readyz", svc.url())).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    assert_eq!(get_json(&format!("{}/healthz", svc.url())).await.0, 200);
    let metrics = reqwest::get(format!("{}/metrics", svc.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "draft_service_http_requests_total{route=\"/orders\",method=\"POST\",status=\"201\"} 1",
        "draft_service_http_requests_total{route=\"/orders\",method=\"POST\",status=\"400\"} 1",
        "draft_service_hook_connected{channel=\"payments\",group=\"orders-payments\"} 1",
        "draft_service_registered 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn configuration_file_then_environment_then_live_kv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    std::fs::write(
        dir.path().join("orders.toml"),
        "currency = \"GBP\"\nmax_amount = 50\n",
    )
    .expect("write orders.toml");
    let svc = orders(&node, &[("ORDERS_MAX_AMOUNT", "60")], dir.path());
    let config = || async { get_json(&format!("{}/config", svc.url())).await.1 };
    assert_eq!(config().await, json!({"currency": "GBP", "max_amount": 60}));
    let (status, _) = create_order(&svc.url(), "x", 61).await;
    assert_eq!(status, 400, "the environment's maximum applies");

    let kv = draft_blueprint::client::Client::new(&node.url);
    kv.put("config/orders/currency", b"\"USD\"".to_vec(), None)
        .await
        .expect("put");
    let seen = eventually(Duration::from_secs(1), || async {
        (config().await["currency"] == "USD").then_some(())
    })
    .await;
    assert!(seen.is_some(), "the KV change did not show within a second");

    // A value that does not fit keeps the old config; a later good one applies.
    kv.put("config/orders/max_amount", b"\"lots\"".to_vec(), None)
        .await
        .expect("put");
    kv.put("config/orders/max_amount", b"-3".to_vec(), None)
        .await
        .expect("put");
    kv.put("config/orders/currency", b"CHF".to_vec(), None)
        .await
        .expect("put");
    let seen = eventually(Duration::from_secs(2), || async {
        (config().await["currency"] == "CHF").then_some(())
    })
    .await;
    assert!(seen.is_some());
    assert_eq!(config().await, json!({"currency": "CHF", "max_amount": 60}));
    let metrics = reqwest::get(format!("{}/metrics", svc.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("draft_service_config_rejections_total 2"),
        "{metrics}"
    );
    assert!(
        svc.log_text().contains("config/orders/max_amount"),
        "the rejection names the key"
    );

    // Deleting the KV value falls back to the lower layers.
    kv.delete("config/orders/currency").await.expect("delete");
    let seen = eventually(Duration::from_secs(2), || async {
        (config().await["currency"] == "GBP").then_some(())
    })
    .await;
    assert!(seen.is_some());
}

#[tokio::test]
async fn the_lease_lapses_when_stopped_and_comes_back_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut svc = orders(&node, &[("DRAFT_TTL_MS", "600")], dir.path());
    let instance = svc.instance.clone();
    let passing = |want: &'static str| {
        let (node, instance) = (&node, instance.clone());
        async move {
            eventually(Duration::from_secs(5), || {
                let instance = instance.clone();
                async move {
                    (health(node, "orders", &instance).await.as_deref() == Some(want)).then_some(())
                }
            })
            .await
            .is_some()
        }
    };
    assert!(passing("passing").await);
    // Heartbeats at ~TTL/3 keep it passing well past the TTL.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(passing("passing").await);

    svc.signal("STOP");
    assert!(
        passing("critical").await,
        "the lease did not lapse while stopped"
    );
    svc.signal("CONT");
    assert!(
        passing("passing").await,
        "the service did not register again by itself"
    );

    svc.kill9();
    assert!(
        passing("critical").await,
        "a killed instance must expire within its TTL"
    );
}

#[tokio::test]
async fn trace_context_travels_and_failed_payments_are_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let svc = orders(&node, &[], dir.path());
    routed(&node).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .post(format!("{}/orders", node.ingress))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"item": "pen", "amount": 3}))
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 201, "{body}\n{}", svc.log_text());
    let id = body["id"].as_str().expect("id").to_owned();
    let created = stored(&node, "orders").await;
    let tp = created[0]["traceparent"]
        .as_str()
        .expect("traceparent on the event");
    assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");

    // A payment carrying another trace: the order.paid it causes carries it on.
    let pay_trace = "0af7651916cd43dd8448eb211c80319c";
    let payments = json!([
        {"specversion": "1.0", "id": "pay-1", "source": "/bank", "type": "com.example.payment.received",
         "traceparent": format!("00-{pay_trace}-b7ad6b7169203331-01"), "data": {"order": id, "amount": 3}},
        {"specversion": "1.0", "id": "pay-2", "source": "/bank", "type": "com.example.payment.received",
         "data": {"order": "no-such-order", "amount": 9}},
        {"specversion": "1.0", "id": "pay-3", "source": "/bank", "type": "com.example.payment.received",
         "data": "not a payment"}
    ]);
    let (status, _) = draft_tests::post(
        &node,
        "payments",
        "application/cloudevents-batch+json",
        payments.to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let paid = eventually(Duration::from_secs(10), || async {
        stored(&node, "orders")
            .await
            .into_iter()
            .find(|e| e["type"] == "com.example.order.paid")
    })
    .await
    .expect("order.paid");
    assert_eq!(paid["id"], format!("paid-{id}"));
    let tp = paid["traceparent"].as_str().expect("traceparent");
    assert!(tp.starts_with(&format!("00-{pay_trace}-")), "{tp}");
    let (_, order) = get_json(&format!("{}/orders/{id}", node.ingress)).await;
    assert_eq!(order["status"], "paid");

    // The unknown order is retried, then dead-lettered; the malformed one at once.
    let letters = eventually(Duration::from_secs(20), || async {
        let l = stored(&node, "payments.dlq").await;
        (l.len() >= 2).then_some(l)
    })
    .await
    .expect("two dead letters");
    assert_eq!(letters.len(), 2);
    let by_offset = |o: u64| {
        letters
            .iter()
            .find(|l| l["data"]["offset"] == o)
            .expect("letter")
    };
    let unknown = by_offset(1);
    assert_eq!(unknown["type"], "io.draft.deadletter");
    assert_eq!(unknown["data"]["event"]["id"], "pay-2");
    assert_eq!(unknown["data"]["channel"], "payments");
    assert_eq!(unknown["data"]["attempts"], 8);
    assert!(
        unknown["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unknown order"))
    );
    let malformed = by_offset(2);
    assert_eq!(malformed["data"]["permanent"], true);
    assert_eq!(malformed["data"]["attempts"], 1);
    // Everything was acknowledged: the group has nothing left.
    let group = eventually(Duration::from_secs(5), || async {
        let (_, g) = get_json(&format!(
            "{}/v1/channels/payments/groups/orders-payments",
            node.url
        ))
        .await;
        (g["committed_offset"] == 2).then_some(g)
    })
    .await;
    assert!(
        group.is_some(),
        "the group did not commit past the dead letters"
    );
}

#[tokio::test]
async fn bad_settings_exit_1_with_one_line_and_never_register() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    for (envs, needle) in [
        (
            vec![("DRAFT_SERVICE_ADDR", "nowhere")],
            "DRAFT_SERVICE_ADDR",
        ),
        (
            vec![("ORDERS_MAX_AMOUNT", "many")],
            "configuration of orders",
        ),
        (
            vec![("DRAFT_CONFIG", "/no/such/orders.toml")],
            "config file",
        ),
    ] {
        let (status, stderr) =
            Service::run_to_exit(&binary("orders"), &node.url, &envs, dir.path());
        assert_eq!(status.code(), Some(1), "{stderr}");
        let errors: Vec<_> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(needle), "{stderr}");
    }
    let (_, body) = get_json(&format!("{}/v1/services", node.url)).await;
    assert_eq!(body["services"].as_array().map(Vec::len), Some(0), "{body}");
}

/// A collector that keeps every OTLP/HTTP JSON body posted to `/v1/traces`.
async fn otlp_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let sink = std::sync::Arc::clone(&sink);
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().expect("lock").push(v);
                }
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), bodies)
}

/// Every exported span, flattened: (name, traceId, spanId, parentSpanId).
fn spans(bodies: &[Value]) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for body in bodies {
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let field = |k: &str| s[k].as_str().unwrap_or_default().to_lowercase();
                    out.push((
                        field("name"),
                        field("traceId"),
                        field("spanId"),
                        field("parentSpanId"),
                    ));
                }
            }
        }
    }
    out
}

// Multi-threaded: the collector must answer while the test waits for the service to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_and_match_the_propagated_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let (collector, bodies) = otlp_receiver().await;
    let mut svc = orders(
        &node,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        dir.path(),
    );
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .post(format!("{}/orders", svc.url()))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"item": "pen", "amount": 3}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let pay_trace = "1af7651916cd43dd8448eb211c80319c";
    let payment = json!({"specversion": "1.0", "id": "pay-otel", "source": "/bank",
        "type": "com.example.payment.received",
        "traceparent": format!("00-{pay_trace}-b7ad6b7169203331-01"),
        "data": {"order": id, "amount": 3}});
    let (status, _) = draft_tests::post(
        &node,
        "payments",
        "application/cloudevents+json",
        payment.to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let paid = eventually(Duration::from_secs(10), || async {
        stored(&node, "orders")
            .await
            .into_iter()
            .find(|e| e["type"] == "com.example.order.paid")
    })
    .await
    .expect("order.paid");
    svc.signal("TERM");
    let exit = svc.wait_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}: {}",
        svc.log_text()
    );

    let all = spans(&bodies.lock().expect("lock"));
    let request = all
        .iter()
        .find(|s| s.0 == "request" && s.1 == trace)
        .unwrap_or_else(|| panic!("no request span in trace {trace}: {all:?}"));
    assert_eq!(
        request.3, "00f067aa0ba902b7",
        "the request span's parent is the caller's span"
    );
    // The payment hook's span is a child of the payment's span (the projection's span for the
    // order.paid it produced is in the same trace, one level down).
    let hook = all
        .iter()
        .find(|s| s.0 == "hook" && s.1 == pay_trace && s.3 == "b7ad6b7169203331")
        .unwrap_or_else(|| panic!("no hook span under the payment's span: {all:?}"));
    // The event the hook produced names the hook's exported span as its parent.
    let tp = paid["traceparent"].as_str().expect("traceparent");
    let parent_of_paid = TraceParts::of(tp);
    assert_eq!(parent_of_paid.0, pay_trace);
    assert_eq!(parent_of_paid.1, hook.2, "{tp}");
    let created = stored(&node, "orders").await;
    let tp = created[0]["traceparent"].as_str().expect("traceparent");
    assert_eq!(TraceParts::of(tp), (trace.to_owned(), request.2.clone()));
}

/// `(trace id, parent id)` of a `traceparent`.
struct TraceParts;

impl TraceParts {
    fn of(traceparent: &str) -> (String, String) {
        let parts: Vec<&str> = traceparent.split('-').collect();
        (parts[1].to_owned(), parts[2].to_owned())
    }
}

#[tokio::test]
async fn the_config_watch_resumes_after_a_node_restart_and_starts_over_on_a_new_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", draft_tests::free_port());
    let mut node = Node::start_listening(&dir.path().join("node"), &listen, &[]);
    let svc = orders(&node, &[], dir.path());
    let config = || async { get_json(&format!("{}/config", svc.url())).await.1 };
    let shows = |currency: &'static str| {
        let config = &config;
        async move {
            eventually(Duration::from_secs(10), || async {
                (config().await["currency"] == currency).then_some(())
            })
            .await
            .is_some()
        }
    };
    let kv = draft_blueprint::client::Client::new(&node.url);
    kv.put("config/orders/currency", b"\"USD\"".to_vec(), None)
        .await
        .expect("put");
    assert!(shows("USD").await);

    // The same node again: the watch resumes from the revision it saw.
    assert!(node.terminate().success());
    node = Node::start_listening(&dir.path().join("node"), &listen, &[]);
    let kv = draft_blueprint::client::Client::new(&node.url);
    kv.put("config/orders/currency", b"\"JPY\"".to_vec(), None)
        .await
        .expect("put");
    assert!(shows("JPY").await, "no change after the node restart");

    // A new node on the same address (its log does not reach that revision): the watch starts
    // over from the new node's state, and the old KV value no longer applies.
    assert!(node.terminate().success());
    drop(node);
    let node = Node::start_listening(&dir.path().join("other"), &listen, &[]);
    assert!(
        shows("EUR").await,
        "the old node's value stuck: {}",
        config().await
    );
    let kv = draft_blueprint::client::Client::new(&node.url);
    kv.put("config/orders/currency", b"\"CHF\"".to_vec(), None)
        .await
        .expect("put");
    assert!(
        shows("CHF").await,
        "no change from the new node: {}",
        svc.log_text()
    );
}
