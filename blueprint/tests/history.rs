//! Time: leases that lapse, reads `?at=` checked against a recorded history, restarts from a
//! checkpoint with a long tail.

// Each test is one scenario, told in order; splitting it would hide the story.
#![allow(clippy::too_many_lines)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{call, instance, open, open_configured, open_in, service};
use draft_blueprint::wire::Registration;
use draft_blueprint::{Condition, Key, Revision};

fn registration(ttl_ms: u64) -> Registration {
    Registration {
        address: "127.0.0.1:1".into(),
        routes: vec![],
        metadata: BTreeMap::new(),
        ttl_ms,
    }
}

/// Polls `f` every 10 ms until it holds or 10 s pass.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lapses_without_heartbeats_and_is_logged_as_expired() {
    let h = open(10_000).await;
    let bp = &h.blueprint;
    bp.register(&service("api"), &instance("kept"), registration(300), "t")
        .await
        .expect("register");
    bp.register(
        &service("api"),
        &instance("dropped"),
        registration(300),
        "t",
    )
    .await
    .expect("register");
    // Heartbeat one of them for three TTLs; the other lapses.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            bp.heartbeat(&service("api"), &instance("kept"))
                .expect("writable"),
            "kept is passing"
        );
    }
    let health = |i: &str| bp.read(|p| p.instance("api", i).map(|x| x.health));
    assert_eq!(
        health("dropped"),
        Some(draft_blueprint::wire::Health::Critical)
    );
    assert_eq!(health("kept"), Some(draft_blueprint::wire::Health::Passing));
    assert!(
        !bp.heartbeat(&service("api"), &instance("dropped"))
            .expect("writable"),
        "a lapsed lease answers 404: register again"
    );
    // The expiry is in the audit trail, with Draft as its actor.
    let records = h
        .log
        .read(bp.control(), draft_log::Offset(0), 100)
        .expect("read");
    let expired: Vec<_> = records
        .iter()
        .filter_map(|r| draft_blueprint::ControlEvent::from_cloudevent(&r.payload).ok())
        .filter(|(e, _)| matches!(e, draft_blueprint::ControlEvent::Expired { .. }))
        .collect();
    assert_eq!(expired.len(), 1, "one expiry");
    assert_eq!(expired[0].1, "draft");
    // Stop heartbeating the other: it lapses too.
    eventually("kept to lapse", || {
        health("kept") == Some(draft_blueprint::wire::Health::Critical)
    })
    .await;
    // Registering again makes it passing.
    bp.register(&service("api"), &instance("kept"), registration(300), "t")
        .await
        .expect("register");
    assert_eq!(health("kept"), Some(draft_blueprint::wire::Health::Passing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_any_revision_match_the_recorded_history() {
    // A checkpoint every 7 events, so reads mix checkpoints and replay.
    let h = open(7).await;
    let bp = &h.blueprint;
    let mut recorded: Vec<(u64, BTreeMap<String, Vec<u8>>)> = Vec::new();
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0u64..120 {
        let key = format!("k{}", i % 9);
        let outcome = if i % 5 == 4 && model.contains_key(&key) {
            model.remove(&key);
            bp.delete(&Key::parse(&key).expect("key"), Condition::None, "t")
                .await
        } else {
            let value = format!("v{i}").into_bytes();
            model.insert(key.clone(), value.clone());
            bp.put(&Key::parse(&key).expect("key"), value, Condition::None, "t")
                .await
        };
        let draft_blueprint::Outcome::Appended(revision) = outcome.expect("write") else {
            panic!("appended")
        };
        recorded.push((revision.get(), model.clone()));
    }
    // 17 checkpoints are written and the newest 8 kept: reads before the oldest kept one
    // replay the log from its start.
    eventually("checkpoints", || {
        std::fs::read_dir(h.dir.path().join("checkpoints")).map_or(0, Iterator::count) >= 8
    })
    .await;
    for (revision, expected) in recorded.iter().step_by(7).chain(recorded.last()) {
        let state = bp
            .state_at(Some(Revision::new(*revision)))
            .await
            .expect("state at");
        let mut got: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (k, v) in state.range("", None, usize::MAX) {
            got.insert(k.clone(), bp.value(k, v).await.expect("value").to_vec());
        }
        assert_eq!(&got, expected, "state at revision {revision}");
        let answer = call(
            &h,
            "GET",
            &format!("/v1/kv?at={revision}&limit=100"),
            &[],
            "",
        )
        .await
        .json();
        assert_eq!(answer["revision"].as_u64(), Some(*revision));
        assert_eq!(
            answer["entries"].as_array().map(Vec::len),
            Some(expected.len()),
            "HTTP at {revision}"
        );
    }
    // By time: a moment between two writes answers as of the earlier one.
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = Key::parse("late").expect("key");
    bp.put(&late, b"x".to_vec(), Condition::None, "t")
        .await
        .expect("put");
    let at = before.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let r = call(&h, "GET", &format!("/v1/kv/late?at={at}"), &[], "").await;
    assert_eq!(
        r.status,
        axum::http::StatusCode::NOT_FOUND,
        "not yet written at {at}"
    );
    let listed = call(&h, "GET", &format!("/v1/kv?at={at}"), &[], "").await;
    assert_eq!(
        listed.revision,
        recorded.last().map(|(rev, _)| *rev),
        "as of the last write before {at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_the_checkpoint_and_replays_the_tail() {
    let h = open(100).await;
    for i in 0..1050u64 {
        h.blueprint
            .put(
                &Key::parse(&format!("key/{}", i % 50)).expect("key"),
                i.to_string().into_bytes(),
                Condition::None,
                "t",
            )
            .await
            .expect("put");
    }
    h.blueprint
        .register(&service("svc"), &instance("a"), registration(60_000), "t")
        .await
        .expect("register");
    let before = h.blueprint.read(Clone::clone);
    // 1,051 events, a checkpoint every 100: the last is at revision 999, so the restart loads
    // it and replays the 51 events after it.
    eventually("the checkpoint at revision 999", || {
        std::fs::read_dir(h.dir.path().join("checkpoints")).is_ok_and(|d| {
            d.filter_map(Result::ok).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .contains("00000000000000000999")
            })
        })
    })
    .await;
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let again = open_in(dir, 100).await;
    assert_eq!(
        again.blueprint.read(Clone::clone),
        before,
        "same state after restart"
    );
    // The restarted node gives the instance a full TTL: it is passing and can heartbeat.
    assert!(
        again
            .blueprint
            .heartbeat(&service("svc"), &instance("a"))
            .expect("writable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_grace_caps_the_first_lease_of_a_long_ttl() {
    let h = open(10_000).await;
    for id in ["a", "b"] {
        h.blueprint
            .register(&service("svc"), &instance(id), registration(600_000), "t")
            .await
            .expect("register");
    }
    let dir = h.dir;
    drop((h.blueprint, h.log));
    // Without a grace, the restart gives both ten minutes; with 300 ms, the silent one lapses
    // at once while the one that heartbeats stays.
    let h = open_configured(dir, 10_000, |c| {
        c.restart_grace = Some(Duration::from_millis(300));
    })
    .await;
    let bp = &h.blueprint;
    let health = |i: &str| bp.read(|p| p.instance("svc", i).map(|x| x.health));
    assert_eq!(health("a"), Some(draft_blueprint::wire::Health::Passing));
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            bp.heartbeat(&service("svc"), &instance("b"))
                .expect("writable"),
            "b renews"
        );
    }
    eventually("a to lapse within the grace", || {
        health("a") == Some(draft_blueprint::wire::Health::Critical)
    })
    .await;
    assert_eq!(health("b"), Some(draft_blueprint::wire::Health::Passing));
    // The heartbeat renewed b for its full TTL, not the grace.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(health("b"), Some(draft_blueprint::wire::Health::Passing));

    // The same restart without a grace keeps the silent one passing past 300 ms.
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let h = open_in(dir, 10_000).await;
    h.blueprint
        .register(&service("svc"), &instance("a"), registration(600_000), "t")
        .await
        .expect("register again");
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let h = open_in(dir, 10_000).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        h.blueprint
            .read(|p| p.instance("svc", "a").map(|x| x.health)),
        Some(draft_blueprint::wire::Health::Passing)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_critical_past_the_delay_is_removed_and_audited() {
    let h = open_configured(tempfile::tempdir().expect("dir"), 10_000, |c| {
        c.remove_critical_after = Some(Duration::from_millis(300));
    })
    .await;
    let bp = &h.blueprint;
    let health = |i: &str| bp.read(|p| p.instance("api", i).map(|x| x.health));
    for id in ["gone", "back"] {
        bp.register(&service("api"), &instance(id), registration(100), "t")
            .await
            .expect("register");
    }
    eventually("both to lapse", || {
        health("gone") == Some(draft_blueprint::wire::Health::Critical)
            && health("back") == Some(draft_blueprint::wire::Health::Critical)
    })
    .await;
    // One registers again while critical, and heartbeats: it stays.
    bp.register(&service("api"), &instance("back"), registration(100), "t")
        .await
        .expect("register again");
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            bp.heartbeat(&service("api"), &instance("back"))
                .expect("writable")
        );
    }
    eventually("the silent one to be removed", || health("gone").is_none()).await;
    assert_eq!(health("back"), Some(draft_blueprint::wire::Health::Passing));
    let records = h
        .log
        .read(bp.control(), draft_log::Offset(0), 100)
        .expect("read");
    let removed: Vec<_> = records
        .iter()
        .filter_map(|r| draft_blueprint::ControlEvent::from_cloudevent(&r.payload).ok())
        .filter(|(e, _)| matches!(e, draft_blueprint::ControlEvent::Removed { .. }))
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0].1, "draft");
    assert!(matches!(
        &removed[0].0,
        draft_blueprint::ControlEvent::Removed { instance, .. } if instance == "gone"
    ));
    // A replay of the log agrees.
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let again = open_in(dir, 10_000).await;
    assert!(
        again
            .blueprint
            .read(|p| p.instance("api", "gone").is_none())
    );
    assert!(
        again
            .blueprint
            .read(|p| p.instance("api", "back").is_some())
    );
}
