use super::*;
use draft_log::testing::hooked::{Hooked, Hooks};

fn retention(max_age_secs: Option<u64>, max_bytes: Option<u64>) -> Retention {
    Retention {
        max_age_secs,
        max_bytes,
    }
}

#[test]
fn limits_in_range_pass_and_others_name_the_limit() {
    for ok in [
        retention(None, None),
        retention(Some(1), Some(1)),
        retention(Some(MAX_AGE_SECS), Some(u64::MAX)),
    ] {
        assert!(check(&ok).is_ok(), "{ok:?}");
    }
    for (bad, names) in [
        (retention(Some(0), None), "max_age_secs"),
        (retention(Some(MAX_AGE_SECS + 1), None), "max_age_secs"),
        (retention(None, Some(0)), "max_bytes"),
    ] {
        let e = check(&bad).expect_err("refused");
        assert_eq!(e.code(), Code::InvalidSettings);
        assert!(e.message().contains(names), "{bad:?}: {}", e.message());
    }
}

#[test]
fn the_log_retention_round_trips() {
    for r in [
        retention(None, None),
        retention(Some(60), None),
        retention(None, Some(5)),
        retention(Some(7), Some(9)),
    ] {
        assert_eq!(from_log(to_log(r)), r);
    }
}

/// A retention setting of `slow_age` takes `delay` to land (a node whose call to the shared
/// engine is slow).
struct SlowSetting {
    slow_age: Duration,
    delay: Duration,
}

impl Hooks for SlowSetting {
    fn set_retention_delay(&self, retention: Option<&draft_log::Retention>) -> Duration {
        if retention.is_some_and(|r| r.max_age == Some(self.slow_age)) {
            self.delay
        } else {
            Duration::ZERO
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_setting_lands_late_is_overtaken_by_the_newer_record() {
    let dir = tempfile::tempdir().expect("dir");
    let log = draft_log::Log::open(draft_log::LogConfig::new(dir.path())).expect("log");
    let shared: Arc<dyn LogBackend> = Arc::new(Hooked {
        log,
        hooks: SlowSetting {
            slow_age: Duration::from_secs(100),
            delay: Duration::from_millis(300),
        },
    });
    // Two nodes on one log: each with its own copy of the table.
    let control: Arc<dyn ControlLog> = Arc::new(Audit::default());
    let a = Retentions::open(Arc::clone(&shared), Arc::clone(&control))
        .await
        .expect("a");
    let b = Retentions::open(Arc::clone(&shared), control)
        .await
        .expect("b");
    let channel = ChannelName::parse("orders").expect("name");
    let actor = Actor::new("admin");
    let set = |age: u64| Some(retention(Some(age), None));
    // A's record is written first, its setting lands late; B's is written after it and its
    // setting lands at once.
    let (on_a, on_b) = tokio::join!(a.set(&channel, set(100), &actor), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.set(&channel, set(200), &actor).await
    });
    on_a.expect("a's change");
    on_b.expect("b's change");
    b.refresh().await.expect("refresh");
    assert_eq!(b.own("orders"), set(200), "B's record is the last");
    let kept = shared
        .retention(channel.partition())
        .await
        .expect("retention");
    assert_eq!(
        kept.max_age,
        Some(Duration::from_secs(200)),
        "the log keeps what the last record says, not the setting that landed last"
    );
}

/// Audit records, each given the next revision, or refused while `failing` is set.
#[derive(Default)]
struct Audit {
    failing: std::sync::atomic::AtomicBool,
    recorded: std::sync::atomic::AtomicU64,
}

impl ControlLog for Audit {
    fn record<'a>(
        &'a self,
        _ty: &'static str,
        _data: serde_json::Value,
        _actor: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<u64, ApiError>> {
        use std::sync::atomic::Ordering::SeqCst;
        let answer = if self.failing.load(SeqCst) {
            Err(ApiError::new(
                Code::StorageFailed,
                "the control log is read-only",
            ))
        } else {
            Ok(self.recorded.fetch_add(1, SeqCst))
        };
        Box::pin(std::future::ready(answer))
    }
}

/// Compare-and-set appends fail while `failing` is set, as on an engine that lost quorum.
#[derive(Default)]
struct Unavailable {
    failing: std::sync::atomic::AtomicBool,
}

impl Hooks for Unavailable {
    fn append_expecting<'a>(
        &'a self,
        log: &'a draft_log::Log,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> futures::future::BoxFuture<'a, draft_log::Result<draft_log::AppendAck>> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(draft_log::Error::Unavailable(
                "no quorum".to_owned(),
            ))));
        }
        LogBackend::append_expecting(log, partition, expected_next, records)
    }
}

/// One node on a real log whose appends and audit can be made to fail.
async fn failing_node(dir: &std::path::Path) -> (Arc<Hooked<Unavailable>>, Arc<Audit>, Retentions) {
    let log = draft_log::Log::open(draft_log::LogConfig::new(dir)).expect("log");
    let shared = Arc::new(Hooked {
        log,
        hooks: Unavailable::default(),
    });
    let audit = Arc::new(Audit::default());
    let retentions = Retentions::open(
        Arc::clone(&shared) as Arc<dyn LogBackend>,
        Arc::clone(&audit) as Arc<dyn ControlLog>,
    )
    .await
    .expect("open");
    (shared, audit, retentions)
}

#[tokio::test]
async fn a_change_whose_audit_record_fails_is_taken_back() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().expect("dir");
    let (shared, audit, retentions) = failing_node(dir.path()).await;
    let channel = ChannelName::parse("orders").expect("name");
    let actor = Actor::new("admin");
    let kept = retention(Some(100), None);
    retentions
        .set(&channel, Some(kept), &actor)
        .await
        .expect("first change");
    audit.failing.store(true, SeqCst);
    let e = retentions
        .set(&channel, Some(retention(Some(5), None)), &actor)
        .await
        .expect_err("no audit, no change");
    assert_eq!(e.code(), Code::StorageFailed);
    assert_eq!(retentions.own("orders"), Some(kept));
    let in_force = shared
        .retention(channel.partition())
        .await
        .expect("setting");
    assert_eq!(in_force.max_age, Some(Duration::from_secs(100)));
    // What is stored says the same: a node that opens the log now reads the old table.
    let reopened = Retentions::open(
        Arc::clone(&shared) as Arc<dyn LogBackend>,
        Arc::new(Audit::default()) as Arc<dyn ControlLog>,
    )
    .await
    .expect("reopen");
    assert_eq!(reopened.own("orders"), Some(kept));
    assert_eq!(audit.recorded.load(SeqCst), 1, "one change was recorded");
}

#[tokio::test]
async fn a_change_that_cannot_be_stored_is_not_audited() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().expect("dir");
    let (shared, audit, retentions) = failing_node(dir.path()).await;
    let channel = ChannelName::parse("orders").expect("name");
    shared.hooks.failing.store(true, SeqCst);
    let e = retentions
        .set(
            &channel,
            Some(retention(Some(5), None)),
            &Actor::new("admin"),
        )
        .await
        .expect_err("not stored");
    assert_eq!(e.code(), Code::LogUnavailable);
    assert_eq!(audit.recorded.load(SeqCst), 0, "nothing audited");
    assert_eq!(retentions.own("orders"), None);
    let in_force = shared
        .retention(channel.partition())
        .await
        .expect("setting");
    assert_eq!(in_force.max_age, None, "the node's default still holds");
}
