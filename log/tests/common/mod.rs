//! Helpers shared by the crash and corruption tests: a child process that appends and
//! reports acknowledgements, and checks of what a reopened log holds.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use draft_log::{Log, LogConfig, NewRecord, Offset, PartitionName};

/// Environment variable that turns the child test into an appender on that directory.
pub const CHILD_DIR: &str = "DRAFT_LOG_CHILD_DIR";
/// How many records the child appends before exiting on its own (0 = until killed).
pub const CHILD_LIMIT: &str = "DRAFT_LOG_CHILD_LIMIT";

/// The partitions the child appends to.
pub const PARTITIONS: [&str; 2] = ["crash-a", "crash-b"];

/// A random number without a dependency: `RandomState` is seeded randomly per process.
pub fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A test binary's child entry point: when the parent started it with [`CHILD_DIR`] set, run
/// the appender there ([`run_child`]); otherwise (a normal test run) do nothing.
pub fn child_entry_point() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let limit = std::env::var(CHILD_LIMIT)
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        run_child(Path::new(&dir), limit);
    }
}

/// The child's body: many concurrent appenders (single records and batches of 5), each
/// printing `ACK <partition> <offset> <payload>` once the append is acknowledged.
pub fn run_child(dir: &Path, limit: usize) {
    let log = Log::open(LogConfig::new(dir)).expect("child opens the log");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let generation = random_u64();
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..32u64 {
            let (log, acked) = (log.clone(), Arc::clone(&acked));
            tasks.push(tokio::spawn(async move {
                let partition = PartitionName::new(PARTITIONS[(task % 2) as usize]).expect("name");
                for seq in 0u64.. {
                    if limit > 0 && acked.load(std::sync::atomic::Ordering::Relaxed) >= limit {
                        return;
                    }
                    let n = if seq % 3 == 0 { 5 } else { 1 };
                    let payloads: Vec<String> = (0..n)
                        .map(|i| format!("{generation:x}/{task}/{seq}/{i}"))
                        .collect();
                    let records = payloads.iter().map(|p| NewRecord::new(p.clone())).collect();
                    let ack = log.append(&partition, records).await.expect("append");
                    for (offset, payload) in ack.offsets().zip(&payloads) {
                        println!("ACK {partition} {offset} {payload}");
                    }
                    acked.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("appender task");
        }
    });
    // Exit without closing the log: what is on disk is what a crash would leave.
    std::process::exit(0);
}

/// A running child appender and the acknowledgements it has printed so far.
pub struct ChildAppender {
    child: Child,
    reader: Option<JoinHandle<()>>,
    acks: Arc<Mutex<Vec<(String, u64, String)>>>,
}

impl ChildAppender {
    /// Starts this test binary again, running only `child_test` with the child's settings.
    pub fn spawn(child_test: &str, dir: &Path, limit: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_LIMIT, limit.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child appender");
        let stdout = child.stdout.take().expect("piped stdout");
        let acks = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&acks);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness prints `test <name> ... ` without a newline just before the
                // child's first line, so an acknowledgement may start mid-line.
                let Some(start) = line.find("ACK ") else {
                    continue;
                };
                let mut parts = line[start..].splitn(4, ' ');
                parts.next();
                let (Some(p), Some(o), Some(payload)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let offset = o.parse().expect("offset");
                sink.lock()
                    .expect("acks")
                    .push((p.to_owned(), offset, payload.to_owned()));
            }
        });
        Self {
            child,
            reader: Some(reader),
            acks,
        }
    }

    /// How many acknowledgements have been read so far.
    pub fn acked(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    /// SIGKILLs the child and returns every acknowledgement it printed.
    pub fn kill(mut self) -> Vec<(String, u64, String)> {
        self.child.kill().expect("SIGKILL the child");
        self.finish()
    }

    /// Waits for the child to exit by itself and returns its acknowledgements.
    pub fn wait(mut self) -> Vec<(String, u64, String)> {
        let status = self.child.wait().expect("wait for the child");
        assert!(status.success(), "child appender failed: {status}");
        self.finish()
    }

    fn finish(&mut self) -> Vec<(String, u64, String)> {
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader thread");
        }
        std::mem::take(&mut *self.acks.lock().expect("acks"))
    }
}

/// Reopens the log and checks it: every partition is dense from its first offset, every record
/// decodes, and every acknowledged record is present, intact, at its offset.
pub fn check_acknowledged(dir: &Path, acks: &[(String, u64, String)]) -> HashMap<String, u64> {
    let log = Log::open(LogConfig::new(dir)).expect("reopen after the crash");
    let mut sizes = HashMap::new();
    for name in PARTITIONS {
        let partition = PartitionName::new(name).expect("name");
        let records = log
            .read(&partition, Offset(0), usize::MAX)
            .expect("read everything");
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                record.offset,
                Offset(i as u64),
                "{name}: offsets dense from 0"
            );
        }
        let head = log.head(&partition).map_or(0, |h| h.next.0);
        assert_eq!(
            head,
            records.len() as u64,
            "{name}: head matches the records"
        );
        sizes.insert(name.to_owned(), records.len() as u64);
        for (p, offset, payload) in acks.iter().filter(|(p, _, _)| p == name) {
            let record = records.get(*offset as usize).unwrap_or_else(|| {
                panic!(
                    "{p}: acknowledged offset {offset} missing (log has {})",
                    records.len()
                )
            });
            assert_eq!(
                record.payload,
                payload.as_bytes(),
                "{p}: record at {offset} intact"
            );
        }
    }
    sizes
}
