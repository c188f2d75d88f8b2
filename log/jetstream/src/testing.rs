//! A real JetStream cluster for tests, and the conformance harness on it.
//!
//! [`Cluster::start`] runs three `nats-server` processes (installed on first use into
//! `target/tools` by `scripts/install-test-tools.sh nats`) on free ports of 127.0.0.1, with
//! JetStream on, `sync_interval: always` and their stores in a temporary directory, waits
//! until the cluster has a meta leader, and kills them when dropped.

// Test support: the standard clock and sleeps are right for child processes, and a failure
// to start is a panic with the reason, like any test.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::missing_panics_doc
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use draft_log::testing::Harness;
use draft_log::{PartitionName, Retention};
use futures::future::BoxFuture;

use crate::{JetStream, JetStreamConfig};

/// How long the cluster may take to start and elect a meta leader.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory of `nats-server`, installed on first use (once per test binary; the script
/// serializes installs across processes).
#[must_use]
pub fn nats_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-test-tools.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("nats")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "scripts/install-test-tools.sh nats failed ({})",
            output.status
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("nats-server")
    })
    .clone()
}

/// A free TCP port on 127.0.0.1 (free when asked: a server may still lose a race for it).
/// How often [`Cluster::start`] tries new ports when one was taken meanwhile.
const START_ATTEMPTS: usize = 5;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One server of the cluster.
struct Server {
    name: String,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// Three `nats-server`s with JetStream, clustered on loopback.
pub struct Cluster {
    dir: tempfile::TempDir,
    servers: Vec<Server>,
}

impl Cluster {
    /// Starts the cluster and waits until JetStream answers. A port taken by another
    /// process between being picked and being bound (tests start clusters in parallel) is
    /// not a failure: the cluster starts again on new ports, up to [`START_ATTEMPTS`] times.
    #[must_use]
    pub fn start() -> Self {
        let bin = nats_bin();
        let mut attempt = 1;
        loop {
            match Self::start_once(&bin) {
                Ok(cluster) => return cluster,
                Err(log) if attempt < START_ATTEMPTS && log.contains("address already in use") => {
                    attempt += 1;
                }
                Err(log) => panic!("{log}"),
            }
        }
    }

    fn start_once(bin: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let mut servers = Vec::new();
        for (i, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let client_port = free_port();
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client_port}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: draft-test, listen: 127.0.0.1:{route_port}, routes: [{}] }}\n",
                store.display(),
                routes.join(", ")
            );
            std::fs::write(&config, text).expect("write a server's config");
            servers.push(Server {
                name,
                client_port,
                config,
                child: None,
            });
        }
        let mut cluster = Self { dir, servers };
        for i in 0..3 {
            cluster.start_server(i, bin);
        }
        cluster.wait_for_meta_leader()?;
        Ok(cluster)
    }

    fn start_server(&mut self, i: usize, bin: &Path) {
        let server = &mut self.servers[i];
        let log = self.dir.path().join(format!("{}.log", server.name));
        let child = Command::new(bin)
            .arg("-c")
            .arg(&server.config)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        server.child = Some(child);
    }

    /// `nats://127.0.0.1:<port>` of every server.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// Polls `$JS.API.INFO` (answered only once the cluster has a meta leader).
    /// `Err` with the log's tail if a server exited; panics if none did and there is still
    /// no meta leader at the deadline.
    fn wait_for_meta_leader(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = self.urls()[0].clone();
        // On a thread of its own: the cluster is often started from inside a test's runtime.
        let check = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the readiness check");
            runtime.block_on(Self::meta_leader_by(&url, deadline))
        };
        let ready = std::thread::spawn(check)
            .join()
            .expect("the readiness check");
        for server in &mut self.servers {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                let log = self.dir.path().join(format!("{}.log", server.name));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(10).collect();
                return Err(format!(
                    "nats-server {} exited: {status}: {:?}",
                    server.name, tail
                ));
            }
        }
        assert!(
            ready,
            "the JetStream cluster had no meta leader within {START_TIMEOUT:?}"
        );
        Ok(())
    }

    /// Whether `$JS.API.INFO` is answered without error before `deadline`.
    async fn meta_leader_by(url: &str, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if let Ok(client) = async_nats::connect(url).await {
                // Without a meta leader the request goes unanswered: ask again soon.
                let request = async_nats::Request::new().timeout(Some(Duration::from_millis(250)));
                let reply = client
                    .send_request("$JS.API.INFO", request)
                    .await
                    .ok()
                    .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).ok());
                if reply.is_some_and(|v| v.get("error").is_none()) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// A backend configuration for this cluster (R3).
    #[must_use]
    pub fn config(&self) -> JetStreamConfig {
        JetStreamConfig::new(self.urls()).replicas(3)
    }

    /// Stops server `i` (0, 1 or 2) with `signal` (`"KILL"`, `"TERM"`) and waits until it
    /// has exited. A server already stopped is left as it is.
    pub fn stop(&mut self, i: usize, signal: &str) {
        let Some(mut child) = self.servers[i].child.take() else {
            return;
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.servers[i].name);
        let _ = child.wait();
    }

    /// Starts server `i` again, on its ports and store, if it is stopped, and waits until its
    /// client port takes connections.
    pub fn restart(&mut self, i: usize) {
        if self.servers[i].child.is_some() {
            return;
        }
        self.start_server(i, &nats_bin());
        let address = format!("127.0.0.1:{}", self.servers[i].client_port);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen again within {START_TIMEOUT:?}",
                self.servers[i].name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Which server leads `stream` (by the stream's name, e.g. `DRAFT___draft`), as the
    /// running servers say: `None` while it has no leader.
    pub async fn leader(&self, stream: &str) -> Option<usize> {
        for server in &self.servers {
            if server.child.is_none() {
                continue;
            }
            let url = format!("nats://127.0.0.1:{}", server.client_port);
            let Ok(client) = async_nats::connect(url).await else {
                continue;
            };
            let request = async_nats::Request::new().timeout(Some(Duration::from_millis(500)));
            let Ok(reply) = client
                .send_request(format!("$JS.API.STREAM.INFO.{stream}"), request)
                .await
            else {
                continue;
            };
            let info: serde_json::Value =
                serde_json::from_slice(&reply.payload).unwrap_or_default();
            let Some(leader) = info["cluster"]["leader"].as_str() else {
                continue;
            };
            return self.servers.iter().position(|s| s.name == leader);
        }
        None
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The conformance [`Harness`] on a fresh [`Cluster`]: every open is a new client on the
/// same cluster. The partition the suite trims (`trimmed`) is made trimmable.
pub struct JetStreamHarness {
    cluster: Cluster,
}

impl JetStreamHarness {
    /// Starts a cluster for one test.
    #[must_use]
    pub fn new() -> Self {
        Self {
            cluster: Cluster::start(),
        }
    }
}

impl Default for JetStreamHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for JetStreamHarness {
    type Backend = JetStream;

    fn open(
        &self,
        retention: Vec<(PartitionName, Retention)>,
    ) -> BoxFuture<'_, draft_log::Result<JetStream>> {
        let mut config = self
            .cluster
            .config()
            .trimmable(PartitionName::new("trimmed").expect("a valid name"));
        for (partition, r) in retention {
            config = config.retention(partition, r);
        }
        Box::pin(async move { Ok(JetStream::connect(config).await?) })
    }
}
