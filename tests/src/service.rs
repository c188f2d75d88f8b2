//! Chassis services as the end-to-end tests run them: the example `orders` service and the
//! `probe-service`, started as real processes against a real node.

// Processes are driven from plain threads here, as in the rest of the harness.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::dctl;

/// How long a service may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A binary cargo built next to `dctl` (`orders`, `probe-service`).
///
/// # Panics
/// If it has not been built: `cargo test --workspace` builds them all, `cargo test -p
/// draft-tests` alone does not build `orders`.
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    let path = dctl().with_file_name(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --workspace`, or `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A running chassis service.
pub struct Service {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// Its instance id.
    pub instance: String,
    /// What it wrote to stderr (its logs), line by line.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts `binary` with `DRAFT_URL=node_url`, `envs` and working directory `cwd`, and
    /// waits for its `listening` line.
    ///
    /// # Panics
    /// If it exits or does not listen within 30 s.
    #[must_use]
    pub fn start(binary: &Path, node_url: &str, envs: &[(&str, &str)], cwd: &Path) -> Self {
        let mut child = Self::spawn(binary, node_url, envs, cwd);
        let logs = collect_stderr(&mut child);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // `listening http://ADDR instance=ID`
                if let Some(rest) = line.strip_prefix("listening http://") {
                    let (addr, instance) = rest.split_once(" instance=").unwrap_or((rest, ""));
                    let _ = tx.send((addr.to_owned(), instance.to_owned()));
                }
            }
        });
        let Ok((addr, instance)) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let logs = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!("{} did not start:\n{logs}", binary.display());
        };
        Self {
            child,
            addr,
            instance,
            logs,
        }
    }

    /// Runs `binary` as [`Service::start`] would, to its exit (for start failures): its exit
    /// status and stderr.
    ///
    /// # Panics
    /// If it does not exit within 30 s.
    #[must_use]
    pub fn run_to_exit(
        binary: &Path,
        node_url: &str,
        envs: &[(&str, &str)],
        cwd: &Path,
    ) -> (ExitStatus, String) {
        let mut child = Self::spawn(binary, node_url, envs, cwd);
        let logs = collect_stderr(&mut child);
        let status = wait_for(&mut child, Duration::from_secs(30)).expect("exited in time");
        std::thread::sleep(Duration::from_millis(50));
        let text = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
        (status, text)
    }

    fn spawn(binary: &Path, node_url: &str, envs: &[(&str, &str)], cwd: &Path) -> Child {
        Command::new(binary)
            .env("DRAFT_URL", node_url)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()))
    }

    /// Its base URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`, `INT`).
    ///
    /// # Panics
    /// If `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILLs it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(&mut self.child, timeout)
    }

    /// Its logs so far, joined.
    #[must_use]
    pub fn log_text(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill9();
    }
}

fn collect_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                if let Ok(mut l) = sink.lock() {
                    l.push(line.trim_end().to_owned());
                }
            }
        }
    });
    logs
}

fn wait_for(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
