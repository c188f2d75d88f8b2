//! Connection limits on the node's listeners: a client that trickles its request headers, or
//! leaves a connection idle, is disconnected after the header read timeout; connections over
//! `--max-connections`, or over `--max-connections-per-address` from one address, are closed at
//! once and the node keeps serving everyone else; WebSockets count as connections until they
//! close, and an upgrade over `--max-websockets` is answered 503. And the process settings the
//! node makes at start: its open-file limit, and no transparent huge pages.
//!
//! Two clients on one machine: Linux answers on all of 127.0.0.0/8, so the greedy client
//! connects from 127.0.0.2 and everyone else from 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio::time::Instant;

use draft_tests::raw::{connect_from, is_refused, read_until_closed};
use draft_tests::{Node, Upstream, event, register};
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite;

/// Host and port of a node URL (`http://127.0.0.1:1234`).
fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Waits until the server closes `stream` (EOF or reset), up to `limit` after `started`; how
/// long after `started` it was closed.
fn closed_within(stream: &mut TcpStream, started: Instant, limit: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

async fn healthz(url: &str) -> Result<u16, reqwest::Error> {
    // A new connection each time: the point is whether the node accepts and serves it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    Ok(client
        .get(format!("{url}/healthz"))
        .send()
        .await?
        .status()
        .as_u16())
}

#[test]
fn slow_or_idle_clients_are_disconnected_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--header-read-timeout-ms", "500"]);
    for url in [&node.url, &node.ingress] {
        let connected = Instant::now();
        let mut idle = TcpStream::connect(addr(url)).expect("connect");
        let mut trickling = TcpStream::connect(addr(url)).expect("connect");
        trickling
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .expect("partial headers");
        for (what, stream) in [("trickling", &mut trickling), ("idle", &mut idle)] {
            let took = closed_within(stream, connected, Duration::from_secs(5));
            assert!(
                took.is_some_and(|t| t >= Duration::from_millis(300)),
                "{url}: the {what} connection is closed after about 500 ms, not {took:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--max-connections", "3"]);
    assert_eq!(healthz(&node.url).await.expect("served"), 200);
    // That connection's slot is freed once the node sees it closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr(&node.url)).expect("connect"))
        .collect();
    // Give the node a moment to accept all three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        healthz(&node.url).await.is_err(),
        "a fourth connection is refused while three are open"
    );
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match healthz(&node.url).await {
            Ok(200) => break,
            other => assert!(
                Instant::now() < deadline,
                "served again once a connection closed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_node_raises_its_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("dir");
    // A soft limit of 256 under a higher hard limit, as distributions set 1024.
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" up --listen 127.0.0.1:0 --ingress 127.0.0.1:0 --data-dir "$1""#)
        .arg(draft_tests::dctl())
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert!(line.starts_with("listening"), "{line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("limits");
    let _ = child.kill();
    let _ = child.wait();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{open_files}");
    assert_ne!(numbers[0], "256", "the soft limit was raised: {open_files}");
    assert_eq!(numbers[0], numbers[1], "soft = hard: {open_files}");
}

#[test]
fn the_node_runs_without_transparent_huge_pages() {
    // They put multi-millisecond stalls into the acknowledgement's tail (BENCHMARKS.md).
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).expect("status");
    let thp = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("THP_enabled in /proc/<pid>/status");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}

/// What the measured attack sent: a request's headers and the first bytes of a body that
/// never comes.
const SLOW_BODY: &[u8] = b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab";

/// `GET /healthz` over a new connection from `source`: the status line, or `None` if the
/// connection was refused.
async fn healthz_from(source: &str, url: &str) -> Option<String> {
    let mut stream = connect_from(source, url).await;
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    answer.lines().next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_limit_is_refused_and_other_addresses_are_served() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--max-connections-per-address", "3"]);
    for url in [&node.url, &node.ingress] {
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from("127.0.0.2", url).await);
        }
        // Give the node a moment to accept all three.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fourth = connect_from("127.0.0.2", url).await;
        assert!(
            is_refused(&mut fourth, Duration::from_secs(2)).await,
            "{url}: the fourth connection from 127.0.0.2 is closed at once"
        );
        assert!(
            healthz_from("127.0.0.1", url).await.is_some(),
            "{url}: another address is served"
        );
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if healthz_from("127.0.0.2", url).await.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url}: 127.0.0.2 is served again once one of its connections closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_from_one_address_do_not_stop_heartbeats() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(
        dir.path(),
        &[
            "--max-connections",
            "32",
            "--max-connections-per-address",
            "8",
        ],
    );
    register(
        &node,
        "svc",
        "i1",
        "127.0.0.1:9",
        serde_json::json!([]),
        5_000,
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from("127.0.0.2", &node.url).await;
        // A refused connection may already be closed: the write may fail.
        let _ = stream.write_all(SLOW_BODY).await;
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = futures::future::join_all(
        slow.iter_mut()
            .map(|s| is_refused(s, Duration::from_millis(500))),
    )
    .await;
    assert_eq!(
        refused.iter().filter(|r| !**r).count(),
        8,
        "eight slow bodies are held, the other 32 refused"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let heartbeat = format!("{}/v1/services/svc/instances/i1/heartbeat", node.url);
    for i in 0..10 {
        let status = client
            .post(&heartbeat)
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert!(
            matches!(status, Ok(200 | 204)),
            "heartbeat {i} is served while 127.0.0.2 holds its slow bodies: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(slow);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket at `url` (`http://…`) + `path`.
async fn open(url: &str, path: &str) -> Result<Socket, tungstenite::Error> {
    let url = format!("{}{path}", url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.map(|(s, _)| s)
}

/// Closes `socket` and waits for the node's side of the close.
async fn close(mut socket: Socket) {
    let _ = socket.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// Polls until a WebSocket at `path` opens.
async fn opens_again(url: &str, path: &str) -> Socket {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open(url, path).await {
            Ok(socket) => return socket,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{url}{path}: a WebSocket opens once another closed: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_count_as_connections_until_they_close() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--max-connections", "3"]);
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(open(&node.url, "/v1/watch").await.expect("watch"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        healthz(&node.url).await.is_err(),
        "three open WebSockets are three connections: a fourth is refused"
    );
    close(sockets.pop().expect("a socket")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match healthz(&node.url).await {
            Ok(200) => break,
            other => assert!(
                Instant::now() < deadline,
                "served again once a WebSocket closed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_over_the_cap_get_503_and_a_closed_one_frees_its_place() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--max-websockets", "2"]);
    draft_catalyst::client::Client::new(&node.url)
        .produce("c", &event("e1", "t"))
        .await
        .expect("produce");
    let echo = Upstream::start("echo");
    register(
        &node,
        "chat",
        "c1",
        &echo.address,
        serde_json::json!([{"prefix": "/ws"}]),
        60_000,
    )
    .await;
    let consume = "/v1/channels/c/consume?from=earliest";
    for (url, path) in [(&node.url, consume), (&node.ingress, "/ws")] {
        if url == &node.ingress {
            // The route follows the registration within milliseconds.
            close(opens_again(url, path).await).await;
        }
        let mut open_now = vec![
            open(url, path).await.expect("first"),
            open(url, path).await.expect("second"),
        ];
        match open(url, path).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 503, "{url}{path}");
                let body: serde_json::Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                        .expect("the JSON error body");
                assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
            }
            other => panic!("{url}{path}: a third WebSocket is refused with 503: {other:?}"),
        }
        assert!(
            healthz(url).await.is_ok(),
            "{url}: plain requests are still served"
        );
        close(open_now.pop().expect("a socket")).await;
        open_now.push(opens_again(url, path).await);
        for socket in open_now {
            close(socket).await;
        }
    }
}
