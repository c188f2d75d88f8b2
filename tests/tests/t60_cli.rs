//! dctl against a real node, as an operator uses it: KV, services, status, the audit trail,
//! produce (HTTP and WebSocket).

use std::process::{Command, Output};

use draft_tests::{Node, dctl};

fn run(node: &Node, args: &[&str]) -> Output {
    Command::new(dctl())
        .args(args)
        .env("DRAFT_URL", &node.url)
        .output()
        .expect("run dctl")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "dctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kv_services_status_and_the_audit_trail() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    assert_eq!(
        stdout(&run(&node, &["kv", "put", "app/db", "one"])).trim(),
        "0"
    );
    assert_eq!(
        stdout(&run(
            &node,
            &["kv", "put", "app/db", "two", "--if-revision", "0"]
        ))
        .trim(),
        "1"
    );
    let conflict = run(
        &node,
        &["kv", "put", "app/db", "three", "--if-revision", "0"],
    );
    assert_eq!(conflict.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("412"), "{stderr}");
    assert_eq!(stdout(&run(&node, &["kv", "get", "app/db"])), "two");
    assert_eq!(
        stdout(&run(&node, &["kv", "get", "app/db", "--at", "0"])),
        "one"
    );
    let ls = stdout(&run(&node, &["kv", "ls", "app/"]));
    assert!(
        ls.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("app/db") && l.ends_with("two")),
        "{ls}"
    );
    let history = stdout(&run(&node, &["kv", "history", "app/db", "-o", "json"]));
    let history: serde_json::Value = serde_json::from_str(&history).expect("json");
    assert_eq!(history["changes"].as_array().map(Vec::len), Some(2));

    let registered = raw_http::register_web(&node.url);
    assert!(registered, "registration");
    let services = stdout(&run(&node, &["services"]));
    assert!(
        services.contains("web") && services.contains('1'),
        "{services}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run(&node, &["status", "-o", "json"]))).expect("json");
    assert_eq!(
        (status["revision"].as_u64(), status["services"].as_u64()),
        (Some(2), Some(1))
    );

    let routes = stdout(&run(&node, &["routes"]));
    assert!(
        routes
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("/api") && l.contains("web (since 2)")),
        "the route, its service and its owner: {routes}"
    );
    let explain = stdout(&run(
        &node,
        &["routes", "explain", "shop.example", "/api/users"],
    ));
    assert!(
        explain.starts_with("shop.example/api/users -> service web"),
        "{explain}"
    );
    let nothing = stdout(&run(&node, &["routes", "explain", "-", "/other"]));
    assert!(nothing.contains("no route (404)"), "{nothing}");
    let past = stdout(&run(&node, &["routes", "--at", "0"]));
    assert_eq!(
        past.lines().count(),
        1,
        "no routes at revision 0 (only the header): {past}"
    );

    let trail = stdout(&run(&node, &["log", "tail"]));
    let lines: Vec<&str> = trail.lines().collect();
    assert_eq!(lines.len(), 3, "{trail}");
    assert!(
        lines[0].contains("io.draft.kv.put") && lines[0].contains("app/db: (absent) -> one"),
        "{trail}"
    );
    assert!(lines[1].contains("app/db: one -> two"), "{trail}");
    assert!(
        lines[2].contains("io.draft.instance.registered") && lines[2].contains("web/w1"),
        "{trail}"
    );
    let only_kv = stdout(&run(
        &node,
        &["log", "tail", "--type", "io.draft.kv.*", "-o", "json"],
    ));
    assert_eq!(only_kv.lines().count(), 2);
    assert_eq!(
        run(&node, &["log", "tail", "--since", "ten"]).status.code(),
        Some(1)
    );
}

/// Registers `web/w1` with a plain HTTP request (std only, no async runtime in this test).
mod raw_http {
    use std::io::{Read, Write};

    pub(super) fn register_web(url: &str) -> bool {
        let addr = url.trim_start_matches("http://");
        let body = r#"{"address":"127.0.0.1:9001","routes":[{"prefix":"/api"}],"ttl_ms":60000}"#;
        let request = format!(
            "PUT /v1/services/web/instances/w1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer.starts_with("HTTP/1.1 200")
    }
}

#[test]
fn produce_over_http_and_over_a_websocket_print_the_offsets() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let args = ["produce", "cli", "--type", "t", "--id", "one"];
    assert_eq!(stdout(&run(&node, &args)).trim(), "0");
    let ws = ["produce", "cli", "--type", "t", "--id", "two", "--ws"];
    assert_eq!(stdout(&run(&node, &ws)).trim(), "1");
    let again = ["produce", "cli", "--type", "t", "--id", "one", "--ws"];
    assert_eq!(
        stdout(&run(&node, &again)).trim(),
        "0",
        "a duplicate gets its first offset"
    );
    let reserved = run(&node, &["produce", "_draft", "--type", "t", "--ws"]);
    assert!(!reserved.status.success());
    let stderr = String::from_utf8_lossy(&reserved.stderr);
    assert!(stderr.contains("reserved"), "{stderr}");
}
