//! Crash test: a child process appends with many concurrent appenders and prints each
//! acknowledged offset; the parent SIGKILLs it at a random moment, reopens the log and checks
//! that every acknowledged record is present, intact, at its offset, with no gaps.

// A synchronous test: it drives child processes from plain threads, where the standard clock
// and sleep are right (`clippy.toml` bans them in async code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::{ChildAppender, check_acknowledged, random_u64};

/// The child's entry point. It only runs when the crash test starts this binary with
/// `DRAFT_LOG_CHILD_DIR` set; run on its own it has nothing to do.
#[test]
fn crash_child_process() {
    common::child_entry_point();
}

#[test]
fn acknowledged_appends_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut total_acked = 0;
    for round in 0..5 {
        let child = ChildAppender::spawn("crash_child_process", dir.path(), 0);
        // Wait until the child is appending, then let it run a random while before the kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.acked() < 100 {
            assert!(
                Instant::now() < deadline,
                "round {round}: child acknowledged nothing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(random_u64() % 400));
        let acks = child.kill();
        assert!(!acks.is_empty());
        total_acked += acks.len();
        let sizes = check_acknowledged(dir.path(), &acks);
        eprintln!(
            "round {round}: {} acknowledged, log sizes {sizes:?}",
            acks.len()
        );
    }
    assert!(total_acked >= 500, "the child appended during every round");
}
