//! The group state machine's tests, with paused tokio time.

use super::*;

fn settings(timeout_ms: u64) -> Settings {
    Settings {
        types: vec![],
        sources: vec![],
        timeout_ms,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn joined(g: &mut Group, id: MemberId) -> Option<Activation> {
    match g
        .join(id, addr(id as u16), id, Instant::now())
        .expect("not deleting")
    {
        Joined::Active(a) => Some(a),
        Joined::Standby => None,
    }
}

fn deliver(g: &mut Group, id: MemberId, offsets: std::ops::RangeInclusive<u64>) {
    for o in offsets {
        assert!(g.delivered(id, o, Instant::now()), "{id} is active");
    }
}

#[tokio::test(start_paused = true)]
async fn the_oldest_member_is_active_and_a_standby_takes_over_after_the_last_ack() {
    let mut g = Group::new(settings(30_000), 10, 0, Some(3));
    assert_eq!(
        joined(&mut g, 1),
        Some(Activation {
            member: 1,
            from: 10
        })
    );
    assert_eq!(joined(&mut g, 2), None, "a standby");
    assert_eq!(joined(&mut g, 3), None, "a standby");
    assert!(!g.delivered(2, 10, Instant::now()), "standbys get nothing");
    deliver(&mut g, 1, 10..=14);
    g.ack(1, 12, Instant::now(), 100).expect("ack");
    assert_eq!(
        (g.acked(), g.next(), g.last_ack_nanos()),
        (Some(12), 13, Some(100))
    );
    // The active member goes: the oldest standby resumes after the last ack, so 13 and
    // 14 are delivered again (at least once).
    assert_eq!(
        g.leave(1, 200, Instant::now()),
        Some(Activation {
            member: 2,
            from: 13
        })
    );
    assert!(!g.delivered(1, 15, Instant::now()), "gone");
    assert_eq!(g.ack(1, 14, Instant::now(), 0), Err(AckError::NotMember));
    assert_eq!(g.ack(3, 14, Instant::now(), 0), Err(AckError::Standby));
    let active: Vec<_> = g.members().map(|m| (m.id, m.active_since_nanos)).collect();
    assert_eq!(active, vec![(2, Some(200)), (3, None)]);
    assert_eq!(
        g.leave(3, 300, Instant::now()),
        None,
        "a standby leaving changes nothing"
    );
    assert_eq!(g.leave(3, 300, Instant::now()), None, "twice is harmless");
}

#[tokio::test(start_paused = true)]
async fn bad_acks_are_refused_and_change_nothing() {
    let mut g = Group::new(settings(30_000), 0, 0, None);
    joined(&mut g, 1);
    assert_eq!(
        g.ack(1, 0, Instant::now(), 1),
        Err(AckError::Beyond {
            offset: 0,
            delivered: None
        })
    );
    deliver(&mut g, 1, 0..=5);
    g.ack(1, 3, Instant::now(), 1).expect("ack");
    let before = g.clone();
    assert_eq!(
        g.ack(1, 6, Instant::now(), 2),
        Err(AckError::Beyond {
            offset: 6,
            delivered: Some(5)
        })
    );
    assert_eq!(
        g.ack(1, 2, Instant::now(), 2),
        Err(AckError::Backwards {
            offset: 2,
            acked: 3
        })
    );
    assert_eq!(g, before, "refused acks change nothing");
    g.ack(1, 3, Instant::now(), 9).expect("the same ack again");
    assert_eq!(g, before, "and a repeated ack changes nothing either");
    g.ack(1, 5, Instant::now(), 3)
        .expect("up to the last delivered");
    assert_eq!(g.acked(), Some(5));
}

#[tokio::test(start_paused = true)]
async fn a_member_that_stops_acknowledging_loses_its_place_after_the_timeout() {
    let timeout = Duration::from_millis(500);
    let just_short = Duration::from_millis(499);
    let mut g = Group::new(settings(500), 0, 0, None);
    joined(&mut g, 1);
    joined(&mut g, 2);
    // Nothing delivered: nothing owed, however long it waits.
    tokio::time::advance(timeout * 4).await;
    assert_eq!(g.expire(Instant::now(), 0), None);
    deliver(&mut g, 1, 0..=9);
    tokio::time::advance(just_short).await;
    assert_eq!(g.expire(Instant::now(), 0), None, "not yet");
    // An ack with events still owed restarts the clock.
    g.ack(1, 4, Instant::now(), 1).expect("ack");
    tokio::time::advance(just_short).await;
    assert_eq!(g.expire(Instant::now(), 0), None, "progress restarts it");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        g.expire(Instant::now(), 7),
        Some(Expiry {
            lost: 1,
            resume: 5,
            next: Some(Activation { member: 2, from: 5 }),
            timeout_ms: 500,
        })
    );
    assert_eq!(g.ack(1, 9, Instant::now(), 8), Err(AckError::NotMember));
    // The new member owes nothing yet.
    tokio::time::advance(timeout * 2).await;
    assert_eq!(g.expire(Instant::now(), 0), None);
    // Acknowledging everything delivered owes nothing.
    deliver(&mut g, 2, 5..=6);
    g.ack(2, 6, Instant::now(), 9).expect("ack");
    tokio::time::advance(timeout * 2).await;
    assert_eq!(g.expire(Instant::now(), 0), None);
    // Alone, a stalled member still loses its place (it can reconnect and resume).
    deliver(&mut g, 2, 7..=7);
    tokio::time::advance(timeout).await;
    let expiry = g.expire(Instant::now(), 0).expect("expired");
    assert_eq!((expiry.lost, expiry.resume, expiry.next), (2, 7, None));
    assert!(!g.has_members());
}

#[tokio::test(start_paused = true)]
async fn commits_trail_acks_and_a_restore_resumes_after_the_committed_offset() {
    let mut g = Group::new(settings(30_000), 0, 5, Some(1));
    joined(&mut g, 1);
    assert_eq!(g.to_commit(), None);
    deliver(&mut g, 1, 0..=9);
    g.ack(1, 4, Instant::now(), 1).expect("ack");
    assert_eq!(g.to_commit(), Some(4));
    g.committed_up_to(4);
    assert_eq!(g.to_commit(), None, "nothing newer");
    g.ack(1, 8, Instant::now(), 2).expect("ack");
    assert_eq!(g.to_commit(), Some(8));
    // Only what was committed survives: a restore resumes at 5, not 9.
    let restored = Group::restore(&g.stored());
    assert_eq!((restored.next(), restored.committed()), (5, Some(4)));
    assert_eq!(restored.committed_next(), 5);
    assert!(!restored.has_members());
    g.committed_up_to(3);
    assert_eq!(g.committed(), Some(4), "commits never go backwards");
}

#[tokio::test(start_paused = true)]
async fn nobody_joins_a_group_being_deleted_and_a_group_with_members_is_not_deleted() {
    let mut g = Group::new(settings(30_000), 0, 0, None);
    joined(&mut g, 1);
    assert!(!g.set_deleting(true), "it has a member");
    g.leave(1, 0, Instant::now());
    assert!(g.set_deleting(true));
    assert_eq!(g.join(2, addr(2), 0, Instant::now()), None);
    assert!(g.set_deleting(false), "a failed delete is undone");
    assert!(g.join(2, addr(2), 0, Instant::now()).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_shared_group_is_served_only_while_its_lock_is_held() {
    let mut g = Group::new(settings(30_000), 0, 0, None).shared();
    assert_eq!(joined(&mut g, 1), None, "nobody is active before the lock");
    assert_eq!(joined(&mut g, 2), None);
    assert!(!g.delivered(1, 0, Instant::now()), "not active");
    assert_eq!(g.ack(1, 0, Instant::now(), 0), Err(AckError::Standby));
    // Another node committed up to 4 meanwhile: this node resumes after it.
    g.seen_commit(4, 50);
    g.seen_commit(2, 60);
    assert_eq!((g.committed(), g.next()), (Some(4), 5), "never backwards");
    let until = Instant::now() + Duration::from_secs(10);
    assert_eq!(
        g.granted(until, 70),
        Some(Activation { member: 1, from: 5 })
    );
    assert!(g.holds_lock());
    assert_eq!(g.granted(until, 80), None, "a renewal activates nobody");
    deliver(&mut g, 1, 5..=6);
    // While its member is active, a commit from elsewhere does not move its place.
    g.seen_commit(9, 90);
    assert_eq!((g.committed(), g.next()), (Some(9), 5));
    g.ack(1, 6, Instant::now(), 95).expect("ack");
    // The lease lapses by the clock: nothing more is delivered, even before the node
    // learns it lost the lock.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!g.delivered(1, 7, Instant::now()), "past the lease");
    // A leaving active member hands over to a standby only while the lock is held.
    let mut h = g.clone();
    assert_eq!(h.leave(1, 100, Instant::now()), None, "lease lapsed");
    assert_eq!(g.revoked(), Some(1), "the active member loses its place");
    assert_eq!(g.revoked(), None, "the standby was never active");
    assert!(!g.holds_lock());
    assert_eq!(g.members().map(|m| m.id).collect::<Vec<_>>(), vec![2]);
    let until = Instant::now() + Duration::from_secs(10);
    assert_eq!(
        g.granted(until, 110),
        Some(Activation { member: 2, from: 7 })
    );
}
