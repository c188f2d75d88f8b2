//! Connection limits on the node's listeners: a client that trickles its request headers, or
//! leaves a connection idle, is disconnected after the header read timeout; connections over
//! `--max-connections` are closed at once and the node keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio::time::Instant;

use draft_tests::Node;

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
