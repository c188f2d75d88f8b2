//! End-to-end tests of Draft: each test under `tests/tests/` starts real `dctl up` processes
//! on free ports and talks to them over HTTP and WebSocket as a user would. This library is
//! their harness; [`servers`] starts the real PostgreSQL and NATS servers the chassis plugins
//! are tested against.

// The harness drives processes from plain threads (waits for output, SIGTERM, exit), not from
// async code: the standard clock and sleep are right here (`clippy.toml` bans them in async
// code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod auth;
pub mod group_member;
pub mod load;
pub mod prometheus;
pub mod raw;
pub mod servers;
pub mod small_disk;

pub use servers::{NatsServer, Postgres};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod service;

/// How long a node may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `dctl` binary: `DRAFT_DCTL` if set, else the one cargo built next to this test.
///
/// # Panics
/// If it cannot be found (build it with `cargo build -p dctl`).
#[must_use]
pub fn dctl() -> PathBuf {
    if let Some(path) = std::env::var_os("DRAFT_DCTL") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/dctl
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("dctl");
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p dctl` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// A sample file from `fixtures/`.
///
/// # Panics
/// If it does not exist.
#[must_use]
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A running `dctl up` process.
pub struct Node {
    child: Child,
    /// The API's base URL.
    pub url: String,
    /// The ingress (Fuse) base URL.
    pub ingress: String,
    /// The node's data directory.
    pub data_dir: PathBuf,
}

impl Node {
    /// Starts `dctl up` on a free port with `data_dir` and `args`, and waits until it listens.
    ///
    /// # Panics
    /// If it does not start within 30 s.
    #[must_use]
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_listening(data_dir, "127.0.0.1:0", args)
    }

    /// [`Node::start`] on the JetStream backend with three replicas, on the servers `urls`,
    /// with `args` after.
    ///
    /// # Panics
    /// If it does not start within 30 s.
    #[must_use]
    pub fn start_on_jetstream(data_dir: &Path, urls: &[String], args: &[&str]) -> Self {
        let urls = urls.join(",");
        let mut all = vec![
            "--backend",
            "jetstream",
            "--nats-url",
            &urls,
            "--replicas",
            "3",
        ];
        all.extend_from_slice(args);
        Self::start(data_dir, &all)
    }

    /// [`Node::start`] with the API on `listen` (`host:port`): for a test that restarts a
    /// node where its clients expect it (see [`free_port`]).
    ///
    /// # Panics
    /// If it does not start within 30 s.
    #[must_use]
    pub fn start_listening(data_dir: &Path, listen: &str, args: &[&str]) -> Self {
        let mut child = Command::new(dctl())
            .args([
                "up",
                "--listen",
                listen,
                "--ingress",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dctl up");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // `listening api=http://A ingress=http://B`
                if let Some(rest) = line.strip_prefix("listening api=") {
                    let (api, ingress) = rest.split_once(" ingress=").unwrap_or((rest, ""));
                    let _ = tx.send((api.to_owned(), ingress.to_owned()));
                }
            }
        });
        let Ok((url, ingress)) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            panic!("dctl up did not report its address within {START_TIMEOUT:?}");
        };
        Self {
            child,
            url,
            ingress,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The node's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's resident memory (`VmRSS`), in KiB.
    ///
    /// # Panics
    /// If `/proc/<pid>/status` cannot be read (not Linux, or the node is gone).
    #[must_use]
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// SIGKILLs the node: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to 20 s) for the node to exit.
    ///
    /// # Panics
    /// If it does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "node did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A TCP port that was free a moment ago (bound, then released).
///
/// # Panics
/// If no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Every event of `channel`, oldest first (the JSON objects `GET …/events` returns).
///
/// # Panics
/// If the node cannot be reached.
pub async fn stored(node: &Node, channel: &str) -> Vec<serde_json::Value> {
    let client = draft_catalyst::client::Client::new(&node.url);
    let mut options = draft_catalyst::client::ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    let mut events = Vec::new();
    loop {
        let page = client.page(channel, &options, 1000).await;
        let Ok(page) = page else {
            return events; // no such channel yet
        };
        if page.events.is_empty() {
            return events;
        }
        events.extend(page.events);
        options.from = Some(page.next_offset.to_string());
    }
}

/// Posts `body` with `content_type` to `channel`; returns the status and the JSON answer.
///
/// # Panics
/// If the node cannot be reached or answers with something other than JSON.
pub async fn post(
    node: &Node,
    channel: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/channels/{channel}/events", node.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// How many events `channel` holds (0 if it does not exist).
///
/// # Panics
/// If the node cannot be reached.
pub async fn count(node: &Node, channel: &str) -> u64 {
    let client = draft_catalyst::client::Client::new(&node.url);
    client.channel(channel).await.map_or(0, |c| c.count)
}

/// A minimal valid event with this id and type.
#[must_use]
pub fn event(id: &str, ty: &str) -> serde_json::Value {
    serde_json::json!({"specversion": "1.0", "id": id, "source": "/test", "type": ty, "data": {"id": id}})
}

/// A running `echo-upstream` process (see `src/bin/echo_upstream.rs`).
pub struct Upstream {
    child: Child,
    /// Its `host:port`.
    pub address: String,
}

impl Upstream {
    /// Starts an upstream that answers with `name`.
    ///
    /// # Panics
    /// If it does not start within 30 s.
    #[must_use]
    pub fn start(name: &str) -> Self {
        let exe = dctl().with_file_name("echo-upstream");
        let mut child = Command::new(&exe)
            .arg(name)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening http://") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let Ok(address) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            panic!("echo-upstream did not start");
        };
        Self { child, address }
    }

    /// SIGKILLs it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Registers `service/instance` at `address` with `routes` (JSON) and a TTL.
///
/// # Panics
/// If the node refuses.
pub async fn register(
    node: &Node,
    service: &str,
    instance: &str,
    address: &str,
    routes: serde_json::Value,
    ttl_ms: u64,
) {
    let body = serde_json::json!({"address": address, "routes": routes, "ttl_ms": ttl_ms});
    let r = reqwest::Client::new()
        .put(format!(
            "{}/v1/services/{service}/instances/{instance}",
            node.url
        ))
        .json(&body)
        .send()
        .await
        .expect("register");
    assert_eq!(
        r.status().as_u16(),
        200,
        "register {service}/{instance}: {}",
        r.text().await.unwrap_or_default()
    );
}
