//! Real PostgreSQL and NATS servers for tests: each starts from the binaries that
//! `scripts/install-test-tools.sh` installs into `target/tools` on first use, listens on
//! 127.0.0.1 only, keeps its files in the test's directory and is killed when dropped.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may take to exit once told to.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The user and password of the test cluster's superuser.
pub const POSTGRES_USER: &str = "draft";
/// The password of [`POSTGRES_USER`] (host connections use `scram-sha-256`).
pub const POSTGRES_PASSWORD: &str = "draft-test";

/// The uid and gid PostgreSQL runs as when the tests run as root (it refuses to run as root):
/// Debian's `nobody`/`nogroup`.
const NOBODY: u32 = 65534;

/// The directory holding `tool`'s binaries, installed on first use.
///
/// The script serializes concurrent installs across processes with a lock file; the
/// `OnceLock` runs it once per test binary.
///
/// # Panics
/// If the install fails.
#[must_use]
pub fn tool_bin(tool: &str) -> PathBuf {
    static POSTGRES: OnceLock<PathBuf> = OnceLock::new();
    static NATS: OnceLock<PathBuf> = OnceLock::new();
    let cell = match tool {
        "postgres" => &POSTGRES,
        "nats" => &NATS,
        other => panic!("no such test tool: {other}"),
    };
    cell.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-test-tools.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(tool)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "scripts/install-test-tools.sh {tool} failed ({})",
            output.status
        );
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        PathBuf::from(dir)
    })
    .clone()
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A `Command` for `program`, run as `nobody` when the tests run as root.
fn unprivileged(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Sends `signal` (a name such as `INT`) to `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `timeout` for `child` to exit; SIGKILLs it past that.
fn wait_or_kill(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The tail of a log file, for a panic message.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A running PostgreSQL server with a fresh cluster (`initdb`), on a free port of 127.0.0.1.
pub struct Postgres {
    child: Option<Child>,
    /// `postgres://draft:draft-test@127.0.0.1:<port>/postgres`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
}

impl Postgres {
    /// Creates a cluster in `dir/pgdata` and starts a server on it; waits until it accepts
    /// connections. Host connections need the password ([`POSTGRES_PASSWORD`]); there is no
    /// Unix socket. When the tests run as root, `dir` is handed to `nobody`, who runs the
    /// server.
    ///
    /// # Panics
    /// If the binaries cannot be installed or the server does not start within 30 s.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let bin = tool_bin("postgres");
        if is_root() {
            std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).expect("chown test dir");
        }
        let data = dir.join("pgdata");
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, POSTGRES_PASSWORD).expect("write pwfile");
        let initdb = unprivileged(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", POSTGRES_USER, "--auth-host=scram-sha-256"])
            .args([
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        // A free port can be taken before the server binds it: try a few.
        for attempt in 1..=5 {
            let port = crate::free_port();
            let log = dir.join(format!("postgres-{attempt}.log"));
            let mut server = Self {
                child: Some(Self::spawn(&bin, &data, port, &log)),
                url: format!(
                    "postgres://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{port}/postgres"
                ),
                port,
                log,
            };
            if server.wait_ready(&bin) {
                return server;
            }
            let text = log_tail(&server.log);
            assert!(
                text.contains("could not bind") || text.contains("already in use"),
                "postgres did not start:\n{text}"
            );
        }
        panic!("postgres found no free port in 5 attempts");
    }

    fn spawn(bin: &Path, data: &Path, port: u16, log: &Path) -> Child {
        let out = std::fs::File::create(log).expect("create postgres log");
        let err = out.try_clone().expect("clone log handle");
        unprivileged(&bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            // A test cluster is thrown away: no fsync.
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn postgres")
    }

    /// Polls `pg_isready` until the server accepts connections (`true`) or exits (`false`).
    fn wait_ready(&mut self, bin: &Path) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return false;
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", POSTGRES_USER, "-d", "postgres", "-t", "1"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within {START_TIMEOUT:?}:\n{}",
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: open connections are closed) and waits for it to
    /// exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "INT");
            wait_or_kill(&mut child, STOP_TIMEOUT);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the postmaster kills its backends, then exits.
            signal(child.id(), "QUIT");
            wait_or_kill(&mut child, STOP_TIMEOUT);
        }
    }
}

/// A running `nats-server` (core NATS, no JetStream) on a free port of 127.0.0.1.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server` on a port it picks itself (`-p -1`), logging to `dir/nats.log`,
    /// and waits until it has written the port it listens on into `dir`.
    ///
    /// # Panics
    /// If the binary cannot be installed or the server does not start within 30 s.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let bin = tool_bin("nats").join("nats-server");
        let log = dir.join("nats.log");
        let mut child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(dir)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        // nats-server writes `{"nats":["nats://127.0.0.1:PORT"]}` once it listens.
        let ports = dir.join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            let url = std::fs::read_to_string(&ports)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| v["nats"][0].as_str().map(str::to_owned));
            if let Some(url) = url {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nats-server exited ({status}):\n{}", log_tail(&log));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nats-server did not start within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, url }
    }

    /// SIGKILLs the server: its clients see the connection drop.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
