//! [`SmallDisk`]: a node whose data directory is on a real, size-limited file system, so a
//! test can fill it.
//!
//! The file system is a tmpfs of a few MiB mounted in a private mount namespace
//! (`unshare --mount --map-root-user`, which needs no privilege where unprivileged user
//! namespaces are allowed): nothing is mounted outside the namespace, and the tmpfs goes with
//! it. Before the node starts, a filler file takes part of the space; the test fills the
//! rest by writing through the node. Stopping the node (SIGTERM) makes the shell inside the
//! namespace delete the filler and start the node again on the same data, so what was
//! acknowledged before the disk filled can be checked after a restart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::dctl;

/// How long a node may take to start, or to stop after SIGTERM.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs inside the namespace: `$1` mount point, `$2` tmpfs size, `$3` filler KiB, `$4` dctl,
/// the rest `dctl up`'s own arguments. It runs the node twice: the first time with the
/// filler, the second (after the first exited) without it.
const SCRIPT: &str = r#"
set -eu
mnt=$1; size=$2; filler_kib=$3; dctl=$4; shift 4
mount -t tmpfs -o "size=$size" tmpfs "$mnt"
dd if=/dev/zero of="$mnt/filler" bs=1024 count="$filler_kib" status=none
for round in 1 2; do
  "$dctl" up --data-dir "$mnt/data" --listen 127.0.0.1:0 --ingress 127.0.0.1:0 "$@" &
  node=$!
  echo "node pid $node"
  status=0
  wait "$node" || status=$?
  echo "node exited $status"
  rm -f "$mnt/filler"
done
"#;

/// A node on a small tmpfs in a mount namespace of its own (see the module's doc).
pub struct SmallDisk {
    shell: Child,
    lines: mpsc::Receiver<String>,
    node_pid: u32,
    /// The running node's API base URL.
    pub url: String,
    /// Keeps the (empty, outside the namespace) mount point alive.
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Starts a node on a tmpfs of `size` (`mount -o size=`, e.g. `"16m"`) of which a filler
    /// file takes `filler_kib` KiB, with `args` for `dctl up`.
    ///
    /// # Panics
    /// If the machine refuses an unprivileged mount namespace (the message says so), or the
    /// node does not start within 30 s.
    #[must_use]
    pub fn start(size: &str, filler_kib: u64, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mount_point = dir.path().join("disk");
        std::fs::create_dir(&mount_point).expect("mount point");
        let mut shell = spawn(&mount_point, size, filler_kib, args);
        let stdout = shell.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut disk = Self {
            shell,
            lines,
            node_pid: 0,
            url: String::new(),
            _dir: dir,
        };
        disk.wait_for_node();
        disk
    }

    /// Stops the node (SIGTERM) and waits for the second one, started on the same data with
    /// the filler deleted; returns the first node's exit status as the shell reported it.
    ///
    /// # Panics
    /// If the node does not stop, or the next one does not start, within 30 s.
    pub fn restart_with_space(&mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.node_pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.node_pid);
        let exit = self
            .next_line(|l| l.strip_prefix("node exited ").map(str::to_owned))
            .parse()
            .expect("an exit status");
        self.wait_for_node();
        exit
    }

    fn wait_for_node(&mut self) {
        self.node_pid = self
            .next_line(|l| l.strip_prefix("node pid ").map(str::to_owned))
            .parse()
            .expect("a pid");
        let api = self.next_line(|l| {
            let rest = l.strip_prefix("listening api=")?;
            Some(
                rest.split_once(" ingress=")
                    .map_or(rest, |(api, _)| api)
                    .to_owned(),
            )
        });
        self.url = api;
    }

    /// The first line of the shell's output that `pick` takes, skipping others.
    fn next_line(&mut self, pick: impl Fn(&str) -> Option<String>) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return found;
                    }
                }
                Err(e) => {
                    let exited = self.shell.try_wait().ok().flatten();
                    panic!(
                        "the node in the mount namespace did not report in time ({e}); shell: {exited:?}"
                    )
                }
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // The shell first (it would start the next node), then the node; the namespace and
        // its tmpfs go with the last of them.
        let _ = self.shell.kill();
        let _ = self.shell.wait();
        let _ = Command::new("kill")
            .args(["-KILL", &self.node_pid.to_string()])
            .status();
    }
}

fn spawn(mount_point: &Path, size: &str, filler_kib: u64, args: &[&str]) -> Child {
    let probe = Command::new("unshare")
        .args(["--mount", "--map-root-user", "true"])
        .stderr(Stdio::null())
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare --mount --map-root-user` (util-linux, and unprivileged \
         user namespaces: sysctl kernel.unprivileged_userns_clone=1)"
    );
    let dctl: PathBuf = dctl();
    Command::new("unshare")
        .args([
            "--mount",
            "--map-root-user",
            "sh",
            "-c",
            SCRIPT,
            "small-disk",
        ])
        .arg(mount_point)
        .arg(size)
        .arg(filler_kib.to_string())
        .arg(dctl)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn unshare")
}
