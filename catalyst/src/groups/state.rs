//! One consumer group as a pure state machine: its members (the oldest connected one is
//! active, the others stand by), what was delivered to the active member, its cumulative
//! acknowledgements, and what of them is durable. No I/O and no clock of its own: every call
//! that needs the time is given it, so tests drive it with paused tokio time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{Settings, StoredGroup};

/// A member's id, unique within the node's run.
pub(crate) type MemberId = u64;

/// A connection of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) id: MemberId,
    /// The client's address.
    pub(crate) address: SocketAddr,
    /// When it connected (unix nanos).
    pub(crate) joined_nanos: u64,
    /// Since when it is the active member (unix nanos), if it is.
    pub(crate) active_since_nanos: Option<u64>,
}

/// Start delivering to `member` from offset `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Activation {
    pub(crate) member: MemberId,
    pub(crate) from: u64,
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The only member: active at once.
    Active(Activation),
    /// Another member is active.
    Standby,
}

/// The active member stopped acknowledging for the group's timeout and lost its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// The member that lost its place (it is no longer a member).
    pub(crate) lost: MemberId,
    /// Where delivery resumes: one past the last acknowledged offset.
    pub(crate) resume: u64,
    /// The standby that took over, if one was waiting.
    pub(crate) next: Option<Activation>,
    /// The group's timeout.
    pub(crate) timeout_ms: u64,
}

/// Why an acknowledgement was refused. It changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AckError {
    /// A standby has been sent nothing.
    #[error("this connection is a standby of the group: it was sent nothing to acknowledge")]
    Standby,
    /// The connection lost its place or left.
    #[error("this connection is no longer a member of the group")]
    NotMember,
    /// Past the last event delivered to this member.
    #[error(
        "ack {offset} is beyond what this connection was sent (last offset delivered: {})",
        .delivered.map_or_else(|| "none".to_owned(), |d| d.to_string())
    )]
    Beyond { offset: u64, delivered: Option<u64> },
    /// Before what the group has acknowledged already.
    #[error("ack {offset} goes backwards: the group is acknowledged up to offset {acked}")]
    Backwards { offset: u64, acked: u64 },
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    settings: Settings,
    created_nanos: u64,
    /// The `_draft` revision of its `io.draft.group.created` event.
    revision: Option<u64>,
    /// Where delivery began when the group was created.
    start: u64,
    /// The last offset acknowledged (in memory; at least `committed`).
    acked: Option<u64>,
    /// The last acknowledgement stored in `_groups`.
    committed: Option<u64>,
    last_ack_nanos: Option<u64>,
    /// Connected members, oldest first; the first is the active one.
    members: VecDeque<Member>,
    /// The highest offset delivered to the active member since it became active.
    delivered: Option<u64>,
    /// Since when the active member owes an acknowledgement (delivered past its last ack).
    owing_since: Option<Instant>,
    /// Being deleted: nobody may join.
    deleting: bool,
}

impl Group {
    /// A new group that delivers from `start`.
    pub(crate) fn new(
        settings: Settings,
        start: u64,
        created_nanos: u64,
        revision: Option<u64>,
    ) -> Self {
        Self::restore(&StoredGroup {
            settings,
            start,
            committed: None,
            created_nanos,
            revision,
            last_ack_nanos: None,
        })
    }

    /// A group as stored, with no members.
    pub(crate) fn restore(stored: &StoredGroup) -> Self {
        Self {
            settings: stored.settings.clone(),
            created_nanos: stored.created_nanos,
            revision: stored.revision,
            start: stored.start,
            acked: stored.committed,
            committed: stored.committed,
            last_ack_nanos: stored.last_ack_nanos,
            members: VecDeque::new(),
            delivered: None,
            owing_since: None,
            deleting: false,
        }
    }

    /// What `_groups` holds of it: its durable state (acknowledgements not yet committed
    /// are left out).
    pub(crate) fn stored(&self) -> StoredGroup {
        StoredGroup {
            settings: self.settings.clone(),
            start: self.start,
            committed: self.committed,
            created_nanos: self.created_nanos,
            revision: self.revision,
            last_ack_nanos: self.last_ack_nanos,
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where delivery resumes: one past the last acknowledged offset.
    pub(crate) fn next(&self) -> u64 {
        self.acked.map_or(self.start, |a| a + 1)
    }

    /// Where delivery resumes after a restart: one past the last committed offset.
    pub(crate) fn committed_next(&self) -> u64 {
        self.committed.map_or(self.start, |c| c + 1)
    }

    pub(crate) fn acked(&self) -> Option<u64> {
        self.acked
    }

    pub(crate) fn committed(&self) -> Option<u64> {
        self.committed
    }

    pub(crate) fn last_ack_nanos(&self) -> Option<u64> {
        self.last_ack_nanos
    }

    pub(crate) fn created_nanos(&self) -> u64 {
        self.created_nanos
    }

    pub(crate) fn revision(&self) -> Option<u64> {
        self.revision
    }

    /// The active member, then the standbys, oldest first.
    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter()
    }

    pub(crate) fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// Marks the group as being deleted (`true`) or not; `false` if it has members.
    pub(crate) fn set_deleting(&mut self, deleting: bool) -> bool {
        if deleting && self.has_members() {
            return false;
        }
        self.deleting = deleting;
        true
    }

    /// Adds a member: active at once if it is the only one, else a standby. `None` while the
    /// group is being deleted.
    pub(crate) fn join(
        &mut self,
        id: MemberId,
        address: SocketAddr,
        now_nanos: u64,
    ) -> Option<Joined> {
        if self.deleting {
            return None;
        }
        self.members.push_back(Member {
            id,
            address,
            joined_nanos: now_nanos,
            active_since_nanos: None,
        });
        Some(if self.members.len() == 1 {
            Joined::Active(self.activate_front(now_nanos))
        } else {
            Joined::Standby
        })
    }

    /// Removes a member; if it was the active one, the oldest standby takes over.
    pub(crate) fn leave(&mut self, id: MemberId, now_nanos: u64) -> Option<Activation> {
        let at = self.members.iter().position(|m| m.id == id)?;
        self.members.remove(at);
        (at == 0 && !self.members.is_empty()).then(|| self.activate_front(now_nanos))
    }

    fn activate_front(&mut self, now_nanos: u64) -> Activation {
        self.delivered = None;
        self.owing_since = None;
        let from = self.next();
        let front = &mut self.members[0];
        front.active_since_nanos = Some(now_nanos);
        Activation {
            member: front.id,
            from,
        }
    }

    fn is_active(&self, id: MemberId) -> bool {
        self.members.front().is_some_and(|m| m.id == id)
    }

    /// Notes that the event at `offset` is being sent to `id`; `false` if `id` is not the
    /// active member (it must stop reading).
    pub(crate) fn delivered(&mut self, id: MemberId, offset: u64, now: Instant) -> bool {
        if !self.is_active(id) {
            return false;
        }
        if self.owing_since.is_none() {
            self.owing_since = Some(now);
        }
        self.delivered = Some(self.delivered.map_or(offset, |d| d.max(offset)));
        true
    }

    /// `id` acknowledges every event up to `offset` (cumulative). Repeating the last
    /// acknowledgement is allowed and changes nothing.
    pub(crate) fn ack(
        &mut self,
        id: MemberId,
        offset: u64,
        now: Instant,
        now_nanos: u64,
    ) -> Result<(), AckError> {
        if !self.is_active(id) {
            return Err(if self.members.iter().any(|m| m.id == id) {
                AckError::Standby
            } else {
                AckError::NotMember
            });
        }
        let next = self.next();
        if offset + 1 < next {
            return Err(AckError::Backwards {
                offset,
                acked: next - 1,
            });
        }
        if offset + 1 == next {
            return Ok(());
        }
        if self.delivered.is_none_or(|d| offset > d) {
            return Err(AckError::Beyond {
                offset,
                delivered: self.delivered,
            });
        }
        self.acked = Some(offset);
        self.last_ack_nanos = Some(now_nanos);
        self.owing_since = self.delivered.is_some_and(|d| d > offset).then_some(now);
        Ok(())
    }

    /// The active member loses its place if it has owed an acknowledgement for the group's
    /// timeout; the oldest standby, if any, takes over from the last acknowledged offset.
    pub(crate) fn expire(&mut self, now: Instant, now_nanos: u64) -> Option<Expiry> {
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let since = self.owing_since?;
        if now.duration_since(since) < timeout {
            return None;
        }
        let lost = self.members.front()?.id;
        let next = self.leave(lost, now_nanos);
        self.delivered = None;
        self.owing_since = None;
        Some(Expiry {
            lost,
            resume: self.next(),
            next,
            timeout_ms: self.settings.timeout_ms,
        })
    }

    /// The acknowledgement to store, if one is newer than the stored one.
    pub(crate) fn to_commit(&self) -> Option<u64> {
        self.acked.filter(|a| self.committed.is_none_or(|c| *a > c))
    }

    /// Notes that `offset` is stored.
    pub(crate) fn committed_up_to(&mut self, offset: u64) {
        self.committed = Some(self.committed.map_or(offset, |c| c.max(offset)));
    }
}

#[cfg(test)]
mod tests {
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
        match g.join(id, addr(id as u16), id).expect("not deleting") {
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
            g.leave(1, 200),
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
        assert_eq!(g.leave(3, 300), None, "a standby leaving changes nothing");
        assert_eq!(g.leave(3, 300), None, "twice is harmless");
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
        g.leave(1, 0);
        assert!(g.set_deleting(true));
        assert_eq!(g.join(2, addr(2), 0), None);
        assert!(g.set_deleting(false), "a failed delete is undone");
        assert!(g.join(2, addr(2), 0).is_some());
    }
}
