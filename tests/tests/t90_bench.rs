//! `dctl bench` against a real node: the produce (HTTP and WebSocket) and consume load
//! generators send and read exactly what they report, and a missing node is one clear error.

use std::process::{Command, Output};

use draft_tests::{Node, count, dctl};

fn bench(url: &str, args: &[&str]) -> Output {
    Command::new(dctl())
        .arg("bench")
        .args(args)
        .args(["--url", url])
        .output()
        .expect("run dctl bench")
}

/// The value of a summary row (`  name   value`).
fn row(out: &Output, name: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{text}"))
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "dctl bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn produce_single_and_batched_then_replay_what_was_stored() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let single = bench(
        &node.url,
        &[
            "produce",
            "--channel",
            "b1",
            "--connections",
            "4",
            "--count",
            "300",
        ],
    );
    succeeded(&single);
    assert_eq!(row(&single, "events  "), "300");
    assert_eq!(row(&single, "errors"), "0");
    assert_eq!(
        count(&node, "b1").await,
        300,
        "every acknowledged event is stored"
    );

    let batched = bench(
        &node.url,
        &[
            "produce",
            "--channel",
            "b2",
            "--connections",
            "3",
            "--batch",
            "50",
            "--count",
            "1000",
        ],
    );
    succeeded(&batched);
    assert_eq!(row(&batched, "events  "), "1,000");
    assert_eq!(row(&batched, "requests  "), "20");
    assert_eq!(count(&node, "b2").await, 1000);

    let replay = bench(
        &node.url,
        &[
            "consume",
            "--channel",
            "b2",
            "--from",
            "earliest",
            "--count",
            "1000",
        ],
    );
    succeeded(&replay);
    assert_eq!(row(&replay, "events  "), "1,000");
    assert_eq!(row(&replay, "offsets"), "0..=999");
    assert_eq!(row(&replay, "out of order"), "0");
}

#[tokio::test]
async fn produce_over_websockets_stores_what_it_reports() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let single = bench(
        &node.url,
        &[
            "produce",
            "--transport",
            "ws",
            "--channel",
            "w1",
            "--connections",
            "3",
            "--count",
            "3000",
        ],
    );
    succeeded(&single);
    assert_eq!(row(&single, "events  "), "3,000");
    assert_eq!(row(&single, "frames  "), "3,000");
    assert_eq!(row(&single, "errors"), "0");
    assert_eq!(
        count(&node, "w1").await,
        3000,
        "every acknowledged event is stored"
    );

    let batched = bench(
        &node.url,
        &[
            "produce",
            "--transport",
            "ws",
            "--channel",
            "w2",
            "--connections",
            "2",
            "--batch",
            "20",
            "--window",
            "8",
            "--count",
            "1000",
        ],
    );
    succeeded(&batched);
    assert_eq!(row(&batched, "events  "), "1,000");
    assert_eq!(row(&batched, "frames  "), "50");
    assert_eq!(count(&node, "w2").await, 1000);
}

#[test]
fn a_node_that_is_not_there_is_one_line_and_exit_1() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = bench(
        &format!("http://127.0.0.1:{port}"),
        &["produce", "--count", "10"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("cannot reach the node"), "{stderr}");
}
