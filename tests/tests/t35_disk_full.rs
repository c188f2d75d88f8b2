//! A full disk: a node on a real, small file system (a tmpfs in a private mount namespace,
//! see `draft_tests::small_disk`) is filled through its API until a write fails. From then on
//! it is read-only and unready: every write and heartbeat answers 503 `storage_failed` (never
//! 500), over HTTP and in WebSocket produce acknowledgements, `/readyz` says why, reads go
//! on, and no instance expires. Once space is freed and the node restarts, every event it
//! acknowledged is there, exactly as sent.

use std::fmt::Write as _;
use std::time::Duration;

use draft_tests::small_disk::SmallDisk;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The file system, and the part of it the filler takes (freed before the restart).
const DISK: &str = "24m";
const FILLER_KIB: u64 = 6 * 1024;
/// Each event carries this much data: the disk fills in a few dozen events.
const DATA_BYTES: usize = 200 * 1024;
/// More than the disk can hold: the loop must end on a refusal.
const MOST_EVENTS: usize = 400;
const TTL_MS: u64 = 2_000;

/// `DATA_BYTES` of hex that does not compress (xorshift), different for every `seed`.
fn data(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(DATA_BYTES);
    while out.len() < DATA_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(out, "{x:016x}");
    }
    out.truncate(DATA_BYTES);
    out
}

fn big_event(i: usize) -> Value {
    json!({
        "specversion": "1.0", "id": format!("fill-{i}"), "source": "/t35",
        "type": "test.fill", "data": data(i as u64),
    })
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Asserts a 503 `storage_failed` whose message says the disk is full.
fn assert_storage_failed(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["error"]["code"], "storage_failed", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("the disk is full"), "{what}: {message}");
}

/// One frame over a WebSocket producer, and its acknowledgement.
async fn produce_over_websocket(url: &str, event: &Value) -> Value {
    let url = format!("{}/v1/channels/fill/produce", url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "cloudevents.json".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    socket
        .send(Message::Text(event.to_string().into()))
        .await
        .expect("send");
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("an acknowledgement within 20 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON ack");
        }
    }
}

/// Produces big events until a write is refused; heartbeats `instance` after each. Returns
/// the acknowledged (offset, event number) pairs and the refusal.
async fn fill(
    http: &reqwest::Client,
    url: &str,
    instance: &str,
) -> (Vec<(u64, usize)>, (u16, Value)) {
    let mut acknowledged = Vec::new();
    for i in 0..MOST_EVENTS {
        let produced = send(
            http.post(format!("{url}/v1/channels/fill/events"))
                .header("content-type", "application/cloudevents+json")
                .body(big_event(i).to_string()),
        )
        .await;
        if produced.0 != 201 {
            return (acknowledged, produced);
        }
        let offset = produced.1["offsets"][0].as_u64().expect("an offset");
        acknowledged.push((offset, i));
        // Keep the instance's lease alive while the disk is writable.
        let (status, body) = send(http.post(format!("{instance}/heartbeat"))).await;
        assert_eq!(status, 200, "heartbeat before the disk is full: {body}");
    }
    panic!("{MOST_EVENTS} events of {DATA_BYTES} bytes fitted on a {DISK} disk");
}

/// Every kind of write, and heartbeats, are refused with 503 `storage_failed`.
async fn assert_writes_refused(
    http: &reqwest::Client,
    url: &str,
    instance: &str,
    registration: &Value,
) {
    let small = json!({"specversion": "1.0", "id": "small", "source": "/t35", "type": "t"});
    let again = send(
        http.post(format!("{url}/v1/channels/fill/events"))
            .header("content-type", "application/cloudevents+json")
            .body(small.to_string()),
    )
    .await;
    assert_storage_failed("a small event after the failure", &again);
    let ack = produce_over_websocket(url, &big_event(MOST_EVENTS)).await;
    assert_eq!(ack["seq"], 0, "{ack}");
    assert_eq!(
        ack["error"]["code"], "storage_failed",
        "WebSocket ack: {ack}"
    );
    let kv = send(http.put(format!("{url}/v1/kv/app/after")).body("x")).await;
    assert_storage_failed("kv put", &kv);
    let kv_delete = send(http.delete(format!("{url}/v1/kv/app/before"))).await;
    assert_storage_failed("kv delete", &kv_delete);
    // The same registration again appends nothing, and is refused all the same: it would
    // renew the lease.
    let register = send(http.put(instance).json(registration)).await;
    assert_storage_failed("registration", &register);
    let heartbeat = send(http.post(format!("{instance}/heartbeat"))).await;
    assert_storage_failed("heartbeat", &heartbeat);
}

/// Unready with the reason, the status says so, reads go on, and no instance expires.
async fn assert_read_only(http: &reqwest::Client, url: &str) {
    let ready = send(http.get(format!("{url}/readyz"))).await;
    assert_storage_failed("/readyz", &ready);
    let (status, body) = send(http.get(format!("{url}/v1/status"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["storage"]["state"], "read_only", "{body}");
    assert_eq!(body["storage"]["cause"], "disk_full", "{body}");

    let (status, body) = send(http.get(format!("{url}/v1/channels/fill/events?limit=2"))).await;
    assert_eq!(status, 200, "read events: {body}");
    assert_eq!(body[0]["id"], "fill-0", "{body}");
    let before = http
        .get(format!("{url}/v1/kv/app/before"))
        .send()
        .await
        .expect("kv get");
    assert_eq!(before.status().as_u16(), 200);
    assert_eq!(before.text().await.expect("value"), "kept");

    // Well past the TTL without a heartbeat, the instance is still there and passing: a node
    // that cannot write expires nobody.
    tokio::time::sleep(Duration::from_millis(TTL_MS + 1_000)).await;
    let (status, body) = send(http.get(format!("{url}/v1/services/web"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances"][0]["instance"], "w1", "{body}");
    assert_eq!(body["instances"][0]["health"], "passing", "{body}");
}

/// Every acknowledged event is there, exactly as sent, and nothing else.
async fn assert_all_acknowledged_kept(
    http: &reqwest::Client,
    url: &str,
    acknowledged: &[(u64, usize)],
) {
    for (offset, i) in acknowledged {
        let (status, page) = send(http.get(format!(
            "{url}/v1/channels/fill/events?from={offset}&limit=1"
        )))
        .await;
        assert_eq!(status, 200, "offset {offset}: {page}");
        let event = &page[0];
        assert_eq!(event["draftoffset"], *offset, "{offset}");
        assert_eq!(event["id"], format!("fill-{i}"), "offset {offset}");
        assert!(
            event["data"] == data(*i as u64),
            "offset {offset}: other data"
        );
    }
    let (_, channel) = send(http.get(format!("{url}/v1/channels/fill"))).await;
    assert_eq!(channel["count"], acknowledged.len(), "{channel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_node_read_only_and_loses_nothing_acknowledged() {
    let mut disk = SmallDisk::start(DISK, FILLER_KIB, &[]);
    let http = reqwest::Client::new();
    let url = disk.url.clone();
    let instance = format!("{url}/v1/services/web/instances/w1");
    let registration = json!({"address": "127.0.0.1:9", "ttl_ms": TTL_MS});
    let (status, body) = send(http.put(&instance).json(&registration)).await;
    assert_eq!(status, 200, "register: {body}");
    let (status, body) = send(http.put(format!("{url}/v1/kv/app/before")).body("kept")).await;
    assert_eq!(status, 200, "kv put: {body}");

    // Every answer is 201 until the first refusal, which is a 503, never a 500.
    let (acknowledged, refusal) = fill(&http, &url, &instance).await;
    assert_storage_failed("the write that found the disk full", &refusal);
    assert!(
        acknowledged.len() > 10,
        "{} events fitted",
        acknowledged.len()
    );
    assert_writes_refused(&http, &url, &instance, &registration).await;
    assert_read_only(&http, &url).await;

    // Free the space and restart on the same data.
    let exit = disk.restart_with_space();
    assert_ne!(
        exit, 0,
        "a node whose last fsync cannot succeed does not exit 0"
    );
    let url = disk.url.clone();
    let (status, body) = send(http.get(format!("{url}/readyz"))).await;
    assert_eq!(status, 200, "ready again after the restart: {body}");
    assert_all_acknowledged_kept(&http, &url, &acknowledged).await;
    let (_, services) = send(http.get(format!("{url}/v1/services/web"))).await;
    assert_eq!(services["instances"][0]["instance"], "w1", "{services}");
    let (status, body) = send(http.put(format!("{url}/v1/kv/app/after")).body("x")).await;
    assert_eq!(status, 200, "a write after the restart: {body}");
}
