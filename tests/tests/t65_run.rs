//! `dctl run` with real processes: small shell scripts as services, the node it starts (or
//! finds), prefixed output, signals, process groups, restarts and bad manifests.

// These tests drive processes from plain threads (wait for output, send signals, poll for
// exits with deadlines): the standard clock and sleep are right here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use draft_tests::{Node, dctl, free_port};

/// How long anything in these tests may take (a node starting, a run stopping).
const DEADLINE: Duration = Duration::from_secs(30);

/// A folder with a manifest, its services' scripts, and the node's data.
struct Project {
    dir: tempfile::TempDir,
    port: u16,
}

impl Project {
    /// A manifest with `[node]` on a free port, its data in the folder, and `services`
    /// (TOML) after it.
    fn new(services: &str) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let manifest = format!(
            "[node]\nlisten = \"127.0.0.1:{port}\"\ningress = \"127.0.0.1:0\"\n\
             data_dir = \"{}\"\n\n{services}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("draft.toml"), manifest).expect("write manifest");
        Self { dir, port }
    }

    /// Writes an executable `#!/bin/sh` script `name` with `body`.
    fn script(&self, name: &str, body: &str) -> &Self {
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn manifest(&self) -> PathBuf {
        self.path("draft.toml")
    }

    /// The URL of the node the manifest configures.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The pid a script wrote to `name`, once it has.
    fn pid(&self, name: &str) -> u32 {
        let path = self.path(name);
        poll(&format!("{name} to be written"), || {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
    }

    /// `dctl run --manifest <this manifest> args…`.
    fn run(&self, args: &[&str]) -> Run {
        Run::start(&self.manifest(), args)
    }
}

/// A running `dctl run`, its stdout and stderr collected as they come.
struct Run {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Run {
    fn start(manifest: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(dctl())
            .arg("run")
            .arg("--manifest")
            .arg(manifest)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("DRAFT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dctl run");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until stdout has a line ending with `text`; returns all of stdout.
    fn wait_for_line(&self, text: &str) -> String {
        poll(&format!("a line ending with {text:?}"), || {
            let out = self.stdout();
            out.lines().any(|l| l.ends_with(text)).then_some(out)
        })
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for it to exit; its status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let status = poll("dctl run to exit", || self.child.try_wait().expect("wait"));
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        let (out, err) = (self.stdout(), self.stderr());
        (status, out, err)
    }
}

impl Drop for Run {
    /// A failed test still stops what it started: SIGTERM (so dctl stops its process
    /// groups), then SIGKILL.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + DEADLINE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A thread appending the lines of `pipe` to `into`.
fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().expect("lock");
            text.push_str(&line);
            text.push('\n');
        }
    })
}

/// Calls `f` until it gives something, for at most [`DEADLINE`].
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status of `GET <url>/healthz`, or `None` if nothing answers.
fn healthz(url: &str) -> Option<u16> {
    let addr = url.strip_prefix("http://")?;
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Whether process `pid` still runs (a zombie has exited).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// A service that says where the node is, and stays up until SIGTERM.
const TALKER: &str = "echo \"$1 says $DRAFT_URL\"\n\
                      echo \"$1 to stderr\" >&2\n\
                      trap 'exit 0' TERM\n\
                      while :; do sleep 0.1; done\n";

#[test]
fn output_is_prefixed_per_service_without_colour_and_the_node_is_started() {
    let p = Project::new(
        "[services.one]\ncommand = \"./talk.sh\"\nargs = [\"one\"]\n\n\
         [services.second]\ncommand = \"./talk.sh\"\nargs = [\"second\"]\n",
    );
    p.script("talk.sh", TALKER);
    let run = p.run(&[]);
    let url = p.url();
    run.wait_for_line(&format!("second says {url}"));
    let out = run.wait_for_line("one to stderr");
    assert_eq!(healthz(&url), Some(200), "the node it started answers");
    assert!(
        out.lines().any(|l| l == format!("one    | one says {url}")),
        "the names are padded to the longest (`second`), and DRAFT_URL is the node's:\n{out}"
    );
    assert!(out.contains("second | second to stderr\n"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("node   | ")),
        "the node's output is prefixed too:\n{out}"
    );
    run.signal("-INT");
    let (status, out, err) = run.finish();
    assert!(
        status.success(),
        "Ctrl-C stops it as SIGTERM does: {status}: {err}"
    );
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal:\n{out}"
    );
    assert_eq!(healthz(&url), None, "the node it started is stopped");
}

#[test]
fn a_node_that_answers_is_used_and_left_running() {
    let data = tempfile::tempdir().expect("dir");
    let node = Node::start(data.path(), &[]);
    // The manifest's node would listen elsewhere: nothing may answer there.
    let p = Project::new("[services.once]\ncommand = \"./once.sh\"\n");
    p.script("once.sh", "echo \"url=$DRAFT_URL\"\n");
    let run = p.run(&["--url", &node.url]);
    let (status, out, err) = run.finish();
    assert!(
        status.success(),
        "every service exited 0, so the run did: {status}: {err}"
    );
    assert!(out.contains(&format!("once | url={}\n", node.url)), "{out}");
    assert!(!out.contains("node |"), "no node started:\n{out}");
    assert_eq!(
        healthz(&p.url()),
        None,
        "nothing listens where the manifest says"
    );
    assert_eq!(healthz(&node.url), Some(200), "the node it used still runs");
}

#[test]
fn sigterm_stops_the_services_in_reverse_order_grandchildren_included() {
    let p = Project::new(
        "[services.first]\ncommand = \"./tree.sh\"\nargs = [\"first\"]\n\n\
         [services.second]\ncommand = \"./tree.sh\"\nargs = [\"second\"]\n",
    );
    // The child `sleep` is the grandchild: only a signal to the group reaches it.
    p.script(
        "tree.sh",
        "trap 'echo stopping; exit 0' TERM\n\
         sleep 1000 &\n\
         echo $! > \"$1.child\"\n\
         echo started\n\
         wait\n",
    );
    let run = p.run(&[]);
    let first = p.pid("first.child");
    let second = p.pid("second.child");
    run.wait_for_line("first  | started");
    run.wait_for_line("second | started");
    assert!(running(first) && running(second));
    run.signal("-TERM");
    let (status, out, err) = run.finish();
    assert!(status.success(), "{status}: {err}");
    assert!(!running(first), "first's grandchild {first} is gone");
    assert!(!running(second), "second's grandchild {second} is gone");
    let stopped: Vec<&str> = out.lines().filter(|l| l.ends_with("| stopping")).collect();
    assert_eq!(
        stopped,
        ["second | stopping", "first  | stopping"],
        "reverse manifest order:\n{out}"
    );
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(
        !err.contains("SIGKILL"),
        "SIGTERM to the group reached the grandchildren; nothing had to be killed: {err}"
    );
}

#[test]
fn a_service_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let p = Project::new("[services.stubborn]\ncommand = \"./stubborn.sh\"\n");
    p.script(
        "stubborn.sh",
        "trap '' TERM\necho $$ > pid\necho ready\nwhile :; do sleep 0.1; done\n",
    );
    let run = p.run(&["--grace-ms", "500"]);
    let pid = p.pid("pid");
    run.wait_for_line("stubborn | ready");
    let signalled = Instant::now();
    run.signal("-TERM");
    let (status, _, err) = run.finish();
    assert!(
        signalled.elapsed() >= Duration::from_millis(500),
        "it waited the grace period"
    );
    assert!(status.success(), "{status}: {err}");
    assert!(
        err.contains("service stubborn did not stop within 500 ms of SIGTERM: SIGKILL"),
        "{err}"
    );
    assert!(!running(pid), "the service {pid} is gone");
}

#[test]
fn a_second_signal_kills_everything_at_once() {
    let p = Project::new("[services.stubborn]\ncommand = \"./stubborn.sh\"\n");
    p.script(
        "stubborn.sh",
        "trap '' TERM\necho $$ > pid\necho ready\nwhile :; do sleep 0.1; done\n",
    );
    // The default grace period (10 s) would outlast the test's patience for the second one.
    let run = p.run(&[]);
    let pid = p.pid("pid");
    run.wait_for_line("stubborn | ready");
    run.signal("-TERM");
    poll("the first signal to be taken", || {
        run.stderr().contains("stopping").then_some(())
    });
    let second = Instant::now();
    run.signal("-TERM");
    let (status, _, err) = run.finish();
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "no grace period after the second signal"
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("killed every process at once"), "{err}");
    assert!(!running(pid), "the service {pid} is gone");
}

#[test]
fn a_node_that_cannot_start_ends_the_run_with_exit_1() {
    let p = Project::new("[services.idle]\ncommand = \"./idle.sh\"\n");
    p.script("idle.sh", "echo started\nexec sleep 1000\n");
    // Something that is not a node holds the manifest's port: the probe gets no answer, and
    // the node cannot listen there.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", p.port)).expect("bind");
    let (status, out, err) = p.run(&[]).finish();
    assert_eq!(status.code(), Some(1), "{out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("the node exited before it answered"), "{err}");
    assert!(
        out.contains("node | "),
        "the node's own error is passed on:\n{out}"
    );
    assert!(
        !out.contains("idle | started"),
        "no service started:\n{out}"
    );
}

#[test]
fn a_service_that_fails_stops_the_others_and_the_run_exits_1() {
    let p = Project::new(
        "[services.steady]\ncommand = \"./steady.sh\"\n\n\
         [services.crash]\ncommand = \"./crash.sh\"\n",
    );
    p.script(
        "steady.sh",
        "echo $$ > steady.pid\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n",
    );
    // It fails once steady runs, so there is something to stop.
    p.script(
        "crash.sh",
        "while [ ! -s steady.pid ]; do sleep 0.05; done\necho failing\nexit 3\n",
    );
    let run = p.run(&[]);
    let steady = p.pid("steady.pid");
    let (status, out, err) = run.finish();
    assert_eq!(status.code(), Some(1), "{out}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(
        err.contains("service crash") && err.contains("exit code 3"),
        "{err}"
    );
    assert!(out.contains("crash  | failing"), "{out}");
    assert!(!running(steady), "steady {steady} was stopped");
    assert_eq!(healthz(&p.url()), None, "the node was stopped");
}

#[test]
fn a_service_with_restart_on_failure_is_restarted() {
    let p = Project::new("[services.flaky]\ncommand = \"./flaky.sh\"\nrestart = \"on-failure\"\n");
    p.script(
        "flaky.sh",
        "if [ ! -e marker ]; then touch marker; echo failing; exit 1; fi\n\
         echo up\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n",
    );
    let run = p.run(&[]);
    let out = run.wait_for_line("flaky | up");
    assert!(out.contains("flaky | failing\n"), "{out}");
    run.signal("-TERM");
    let (status, _, err) = run.finish();
    assert!(status.success(), "{status}: {err}");
    assert!(
        err.contains("service flaky exited with exit code 1; restart 1 of 10 in 100 ms"),
        "the restart is logged: {err}"
    );
}

#[test]
fn a_bad_manifest_exits_1_with_one_line_and_starts_nothing() {
    let cases = [
        ("missing", None, "cannot read it"),
        ("unparsable", Some("[services.a\n"), "line 1"),
        (
            "unknown field",
            Some("[services.a]\ncommand = \"sh\"\nrestrat = \"never\"\n"),
            "unknown field `restrat`",
        ),
        (
            "empty command",
            Some("[services.a]\ncommand = \"\"\n"),
            "`command` is empty",
        ),
        ("no services", Some("[node]\n"), "no services"),
        (
            "command not found",
            Some("[services.a]\ncommand = \"./nonexistent.sh\"\n"),
            "does not exist",
        ),
    ];
    for (case, text, says) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let manifest = dir.path().join("draft.toml");
        if let Some(text) = text {
            std::fs::write(&manifest, text).expect("write");
        }
        let (status, out, err) = Run::start(&manifest, &[]).finish();
        assert_eq!(status.code(), Some(1), "{case}: {err}");
        assert_eq!(err.lines().count(), 1, "{case}: one line: {err}");
        assert!(
            err.starts_with("dctl: ") && err.contains(says),
            "{case}: {err}"
        );
        assert!(out.is_empty(), "{case}: nothing started:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_service_runs_beside_the_node_and_stops_with_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (api, ingress) = (free_port(), free_port());
    let manifest = format!(
        "[node]\nlisten = \"127.0.0.1:{api}\"\ningress = \"127.0.0.1:{ingress}\"\ndata_dir = \"{}\"\n\n\
         [services.orders]\ncommand = \"{}\"\nenv = {{ RUST_LOG = \"info\" }}\n",
        dir.path().join("data").display(),
        draft_tests::service::binary("orders").display()
    );
    std::fs::write(dir.path().join("draft.toml"), manifest).expect("write manifest");
    let run = Run::start(&dir.path().join("draft.toml"), &[]);
    tokio::task::block_in_place(|| {
        poll("the service to listen", || {
            run.stdout()
                .contains("orders | listening http://")
                .then_some(())
        });
    });
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let created = loop {
        let r = client
            .post(format!("http://127.0.0.1:{ingress}/orders"))
            .json(&serde_json::json!({"item": "book", "amount": 12}))
            .send()
            .await
            .expect("POST through the ingress");
        if r.status().as_u16() == 201 {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never routed: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(created.status().as_u16(), 201);
    run.signal("-TERM");
    let (status, out, err) = tokio::task::block_in_place(|| run.finish());
    assert!(status.success(), "{status}: {err}\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("orders | ") && l.contains("deregistered")),
        "{out}"
    );
}
