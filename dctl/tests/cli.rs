//! `dctl` as a user runs it: exit codes and one-line errors. (Also makes cargo build the
//! `dctl` binary for the end-to-end tests in `tests/`.)

use std::process::Command;

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
