//! `dctl` as a user runs it: exit codes and one-line errors. (Also makes cargo build the
//! `dctl` binary for the end-to-end tests in `tests/`.)

use std::process::{Command, Stdio};
use std::time::Duration;

fn dctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dctl"))
        .args(args)
        .output()
        .expect("run dctl")
}

#[test]
fn unreachable_node_is_exit_1_with_one_line() {
    let out = dctl(&[
        "produce",
        "orders",
        "--type",
        "t",
        "--url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("dctl: cannot reach the node"),
        "{stderr}"
    );
}

#[test]
fn bad_data_is_exit_1_before_sending() {
    let out = dctl(&[
        "produce",
        "orders",
        "--type",
        "t",
        "--data",
        "{not json",
        "--url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data must be JSON"));
}

#[test]
fn bad_config_file_is_exit_1() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("draft.toml");
    std::fs::write(&config, "[node]\nlisten = \"nowhere\"\n").expect("write");
    let out = dctl(&[
        "up",
        "--config",
        config.to_str().expect("utf8"),
        "--data-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid config"), "{stderr}");
}

/// `--max-json-depth` and `DRAFT_MAX_JSON_DEPTH` out of range (0, or past the 127 levels
/// `serde_json` reads) stop `dctl up` before it opens anything: exit 1, one line saying why.
#[test]
// A synchronous test waiting on a child process: there is no async worker to block.
#[allow(clippy::disallowed_methods)]
fn an_out_of_range_json_depth_is_exit_1_with_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().to_str().expect("utf8");
    let up = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dctl"));
        command
            .args(["up", "--data-dir", data_dir, "--listen", "127.0.0.1:0"])
            .args(["--ingress", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(levels) = env {
            command.env("DRAFT_MAX_JSON_DEPTH", levels);
        }
        let mut child = command.spawn().expect("run dctl up");
        // A node that took the setting would run until stopped: stop it after 20 s, and fail.
        let mut polls = 0;
        while child.try_wait().expect("wait").is_none() {
            polls += 1;
            if polls > 1000 {
                let _ = child.kill();
                panic!("dctl up {args:?} (DRAFT_MAX_JSON_DEPTH={env:?}) started");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("its output")
    };
    for out in [
        up(&["--max-json-depth", "0"], None),
        up(&["--max-json-depth", "128"], None),
        up(&[], Some("1000")),
        up(&["--max-json-depth", "200"], Some("8")),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("dctl: invalid settings: the max JSON depth must be 1 to 127"),
            "{stderr}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing was opened"
    );
}
