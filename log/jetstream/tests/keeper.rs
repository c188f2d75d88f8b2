//! The lease keeper's election on a real three-server cluster: two nodes, two clients.

use std::future::Future;
use std::time::Duration;

use draft_log_jetstream::testing::Cluster;
use draft_log_jetstream::{Error, JetStream, KEEPER_BUCKET, KEEPER_KEY, Keeper, KeeperLock, Term};
use tokio::time::Instant;

/// Polls `check` every 50 ms until it gives a value, for at most `within`.
async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lock(cluster: &Cluster, node: &str, ttl: Duration) -> KeeperLock {
    let backend = JetStream::connect(cluster.config()).await.expect("connect");
    KeeperLock::new(&backend, node, ttl)
        .await
        .expect("bind the lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_wins_keeps_the_lock_by_renewing_and_the_other_wins_a_ttl_after_it_stops() {
    const TTL: Duration = Duration::from_secs(1);
    let cluster = Cluster::start();
    let (mut a, mut b) = (
        lock(&cluster, "a", TTL).await,
        lock(&cluster, "b", TTL).await,
    );

    let (won_a, won_b) = tokio::join!(a.campaign(), b.campaign());
    let (won_a, won_b) = (won_a.expect("campaign a"), won_b.expect("campaign b"));
    assert!(won_a.is_some() != won_b.is_some(), "{won_a:?} {won_b:?}");
    let (keeper, other) = if won_a.is_some() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let first = keeper.term().expect("the winner is keeper");
    assert_eq!(Some(first), won_a.or(won_b));
    assert_eq!(
        other.holder().await.expect("holder"),
        Some((keeper.node().to_owned(), first))
    );

    // Renewing every TTL/3 keeps it for three TTLs: every campaign of the other node fails.
    let renewing_until = Instant::now() + TTL * 3;
    while Instant::now() < renewing_until {
        tokio::time::sleep(TTL / 3).await;
        assert!(keeper.renew().await.expect("renew"), "renewal refused");
        assert_eq!(other.campaign().await.expect("campaign"), None);
    }
    assert_eq!(keeper.term(), Some(first), "renewals keep the term");
    let (_, renewed_term) = other.holder().await.expect("holder").expect("held");
    assert_eq!(renewed_term, first, "renewals write the term");

    // The keeper stops renewing (a crash): the entry expires a TTL after its last write.
    let stopped = Instant::now();
    assert!(keeper.renew().await.expect("last renewal"));
    until("the lock to expire", TTL * 5, || async {
        other
            .holder()
            .await
            .expect("holder")
            .is_none()
            .then_some(())
    })
    .await;
    let expired_after = stopped.elapsed();
    assert!(expired_after >= TTL, "expired after only {expired_after:?}");
    assert_eq!(keeper.term(), None, "the old keeper's lease lapsed");
    let second = other
        .campaign()
        .await
        .expect("campaign")
        .expect("free lock");
    assert!(second > first, "{second} after {first}");

    // The old keeper wakes: its renewal is refused and it stays down.
    assert!(!keeper.renew().await.expect("renew"));
    assert_eq!(keeper.term(), None);
    assert_eq!(keeper.campaign().await.expect("campaign"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_hands_over_at_once_with_ever_greater_terms() {
    // A long TTL: a takeover that waited for expiry would fail the test.
    const TTL: Duration = Duration::from_secs(30);
    let cluster = Cluster::start();
    let (mut a, mut b) = (
        lock(&cluster, "a", TTL).await,
        lock(&cluster, "b", TTL).await,
    );
    let mut terms: Vec<Term> = Vec::new();
    for round in 0..4 {
        let (keeper, other) = if round % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let term = keeper
            .campaign()
            .await
            .expect("campaign")
            .expect("free lock");
        assert_eq!(other.campaign().await.expect("campaign"), None);
        assert_eq!(
            other.holder().await.expect("holder"),
            Some((keeper.node().to_owned(), term))
        );
        keeper.resign().await.expect("resign");
        assert_eq!(keeper.term(), None);
        assert_eq!(other.holder().await.expect("holder"), None);
        terms.push(term);
    }
    assert!(terms.windows(2).all(|w| w[0] < w[1]), "{terms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_after_another_writer_took_the_lock_is_refused() {
    const TTL: Duration = Duration::from_secs(30);
    let cluster = Cluster::start();
    let backend = JetStream::connect(cluster.config()).await.expect("connect");
    let mut a = KeeperLock::new(&backend, "a", TTL).await.expect("bind");
    let term = a.campaign().await.expect("campaign").expect("free lock");
    // Another writer overwrites the entry while a's lease still holds by its own clock (a
    // paused keeper whose lock expired and was taken, seen from the keeper's side).
    let kv = async_nats::jetstream::new(backend.client().clone())
        .get_key_value(KEEPER_BUCKET)
        .await
        .expect("the bucket");
    kv.put(KEEPER_KEY, br#"{"node":"b","term":999}"#.to_vec().into())
        .await
        .expect("put");
    assert_eq!(a.term(), Some(term), "a's own clock says it still holds");
    assert!(!a.renew().await.expect("renew"));
    assert_eq!(a.term(), None);
    // Its resignation deletes nothing of the other's.
    a.resign().await.expect("resign");
    assert_eq!(
        a.holder().await.expect("holder"),
        Some(("b".to_owned(), Term(999)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_bound_while_the_cluster_has_no_meta_leader_waits_for_one() {
    let mut cluster = Cluster::start();
    let first = cluster.urls()[0].clone();
    let backend =
        JetStream::connect(draft_log_jetstream::JetStreamConfig::new(vec![first]).replicas(3))
            .await
            .expect("connect");
    // One server of three: no meta leader, so JetStream answers 503 (as while a cluster
    // that has just started elects its first one).
    cluster.stop(1, "KILL");
    cluster.stop(2, "KILL");
    let binding =
        tokio::spawn(async move { KeeperLock::new(&backend, "a", Duration::from_secs(2)).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !binding.is_finished(),
        "bound, or gave up, without a cluster"
    );
    cluster.restart(1);
    cluster.restart(2);
    binding
        .await
        .expect("the task")
        .expect("bound once the cluster has its meta leader again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_refuse_short_ttls_and_buckets_that_expire_sooner_than_their_ttl() {
    let cluster = Cluster::start();
    let backend = JetStream::connect(cluster.config()).await.expect("connect");
    let short = KeeperLock::new(&backend, "a", Duration::from_millis(500)).await;
    assert!(
        matches!(short, Err(Error::Misconfigured { .. })),
        "{short:?}"
    );
    let nameless = KeeperLock::new(&backend, "", Duration::from_secs(2)).await;
    assert!(
        matches!(nameless, Err(Error::Misconfigured { .. })),
        "{nameless:?}"
    );
    KeeperLock::new(&backend, "a", Duration::from_secs(2))
        .await
        .expect("creates the bucket");
    KeeperLock::new(&backend, "b", Duration::from_secs(2))
        .await
        .expect("binds the same bucket");
    let longer = KeeperLock::new(&backend, "c", Duration::from_secs(5)).await;
    assert!(
        matches!(&longer, Err(e @ Error::Misconfigured { .. }) if e.is_fatal()),
        "{longer:?}"
    );
    KeeperLock::new(&backend, "d", Duration::from_secs(1))
        .await
        .expect("a shorter TTL than the bucket's is safe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_never_overlap_step_down_when_the_lock_is_lost_and_hand_over_on_shutdown() {
    const TTL: Duration = Duration::from_secs(1);
    let cluster = Cluster::start();
    let a = Keeper::spawn(lock(&cluster, "a", TTL).await);
    let b = Keeper::spawn(lock(&cluster, "b", TTL).await);
    let (role_a, role_b) = (a.watch(), b.watch());
    let term_of = |role: &tokio::sync::watch::Receiver<Option<Term>>| *role.borrow();
    let first = until("a keeper", TTL * 5, || async {
        term_of(&role_a).or(term_of(&role_b))
    })
    .await;
    // For three TTLs of renewals: one keeper, always the same.
    let watching_until = Instant::now() + TTL * 3;
    while Instant::now() < watching_until {
        let (ta, tb) = (term_of(&role_a), term_of(&role_b));
        assert!(ta.is_none() || tb.is_none(), "two keepers: {ta:?} {tb:?}");
        assert_eq!(ta.or(tb), Some(first), "the keeper changed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Someone else overwrites the lock: the keeper steps down at its next renewal, and the
    // other runner does not take a lock that is not free.
    let (keeper, follower) = if term_of(&role_a).is_some() {
        (a, b)
    } else {
        (b, a)
    };
    let backend = JetStream::connect(cluster.config()).await.expect("connect");
    let kv = async_nats::jetstream::new(backend.client().clone())
        .get_key_value(KEEPER_BUCKET)
        .await
        .expect("the bucket");
    kv.put(KEEPER_KEY, br#"{"node":"x"}"#.to_vec().into())
        .await
        .expect("put");
    let lost = Instant::now();
    until("the keeper to step down", TTL, || async {
        keeper.term().is_none().then_some(())
    })
    .await;
    assert!(
        lost.elapsed() < TTL / 2,
        "stepped down after {:?}",
        lost.elapsed()
    );
    assert_eq!(follower.term(), None);

    // The foreign entry expires; one of them takes over with a greater term, and when it
    // shuts down (resigning) the other follows within a campaign period or so.
    let second = until("a new keeper", TTL * 5, || async {
        keeper.term().or(follower.term())
    })
    .await;
    assert!(second > first, "{second} after {first}");
    let (keeper, follower) = if keeper.term().is_some() {
        (keeper, follower)
    } else {
        (follower, keeper)
    };
    let resigned = Instant::now();
    keeper.shutdown().await;
    let third = until("the follower to take over", TTL * 2, || async {
        follower.term()
    })
    .await;
    assert!(third > second, "{third} after {second}");
    assert!(
        resigned.elapsed() < TTL,
        "took over {:?} after a resignation (waited for expiry?)",
        resigned.elapsed()
    );
    follower.shutdown().await;
}
