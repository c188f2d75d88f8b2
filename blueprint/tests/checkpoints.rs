//! Checkpoints are trusted only as far as the log goes: a log that lost its last appends
//! (a power cut in `buffered` mode) while a checkpoint past them survived is rebuilt from the
//! log, and new writes apply.

mod common;

use std::path::Path;

use common::open_in;
use draft_blueprint::{Condition, Key, Outcome};

/// Copies the directory `from` to `to`, files and folders.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

async fn put(h: &common::Harness, key: &str, value: &str) -> u64 {
    match h
        .blueprint
        .put(
            &Key::parse(key).expect("key"),
            value.as_bytes().to_vec(),
            Condition::None,
            "t",
        )
        .await
        .expect("put")
    {
        Outcome::Appended(revision) => revision.get(),
        Outcome::Unchanged => panic!("not appended"),
    }
}

async fn value(h: &common::Harness, key: &str) -> Option<Vec<u8>> {
    let got = h.blueprint.get(key).await.expect("value");
    got.map(|(_, value)| value.to_vec())
}

fn checkpoints(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("checkpoints")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rev-"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_ahead_of_the_log_is_discarded_and_the_state_rebuilt() {
    // Three writes, no checkpoint yet (one every 5). Keep a copy of the log as it is now.
    let h = open_in(tempfile::tempdir().expect("dir"), 5).await;
    for i in 0..3 {
        put(&h, "early", &format!("e{i}")).await;
    }
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let saved = tempfile::tempdir().expect("copy");
    copy_dir(&dir.path().join("log"), saved.path());

    // Twelve more writes: checkpoints at revisions 4, 9 (and maybe 14), past the saved log.
    let h = open_in(dir, 5).await;
    for i in 0..12 {
        put(&h, "late", &format!("l{i}")).await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while checkpoints(h.dir.path()).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoints");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let dir = h.dir;
    drop((h.blueprint, h.log));

    // The power cut: the log loses everything after the third write; the checkpoints stay.
    std::fs::remove_dir_all(dir.path().join("log")).expect("rm log");
    copy_dir(saved.path(), &dir.path().join("log"));
    let h = open_in(dir, 5).await;
    assert_eq!(
        h.blueprint.revision().map(draft_blueprint::Revision::get),
        Some(2),
        "the state is the log's"
    );
    assert_eq!(value(&h, "early").await.as_deref(), Some(&b"e2"[..]));
    assert_eq!(value(&h, "late").await, None, "nothing the log lost");
    assert!(
        checkpoints(h.dir.path()).is_empty(),
        "checkpoints past the log removed: {:?}",
        checkpoints(h.dir.path())
    );
    // New writes reuse revisions 3.. and apply.
    assert_eq!(put(&h, "after", "a").await, 3);
    assert_eq!(value(&h, "after").await.as_deref(), Some(&b"a"[..]));

    // And a restart of this node agrees with itself.
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let h = open_in(dir, 5).await;
    assert_eq!(
        h.blueprint.revision().map(draft_blueprint::Revision::get),
        Some(3)
    );
    assert_eq!(value(&h, "after").await.as_deref(), Some(&b"a"[..]));
}
