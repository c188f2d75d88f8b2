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

/// Whether this node may serve a group (activate one of its members).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// No other node serves the group: this node always may.
    Always,
    /// This node holds the group's lock until then (another node shares the log).
    Until(Instant),
    /// Another node holds the group's lock, or nobody does yet.
    Not,
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
    /// Whether this node may serve the group now.
    hold: Hold,
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
            hold: Hold::Always,
        }
    }

    /// The group is shared with other nodes: this node serves it only while it holds its
    /// lock ([`granted`](Self::granted)), and until then every member stands by.
    pub(crate) fn shared(mut self) -> Self {
        self.hold = Hold::Not;
        self
    }

    /// Whether this node may serve the group at `now`.
    fn may_serve(&self, now: Instant) -> bool {
        match self.hold {
            Hold::Always => true,
            Hold::Until(until) => now < until,
            Hold::Not => false,
        }
    }

    /// Whether this node holds the group's lock (it may have lapsed by the clock).
    pub(crate) fn holds_lock(&self) -> bool {
        matches!(self.hold, Hold::Until(_))
    }

    /// This node holds the group's lock until `until`: the oldest member is activated if
    /// none is active yet.
    pub(crate) fn granted(&mut self, until: Instant, now_nanos: u64) -> Option<Activation> {
        self.hold = Hold::Until(until);
        let waiting = self
            .members
            .front()
            .is_some_and(|m| m.active_since_nanos.is_none());
        waiting.then(|| self.activate_front(now_nanos))
    }

    /// This node no longer holds the group's lock: its active member, if any, loses its
    /// place (it is no longer a member), and the others stand by.
    pub(crate) fn revoked(&mut self) -> Option<MemberId> {
        self.hold = Hold::Not;
        let lost = self
            .members
            .front()
            .filter(|m| m.active_since_nanos.is_some())?
            .id;
        self.members.pop_front();
        self.delivered = None;
        self.owing_since = None;
        Some(lost)
    }

    /// Another node stored an acknowledgement of this group. Commits never go backwards,
    /// and while a member of this node is active its own acknowledgements stand.
    pub(crate) fn seen_commit(&mut self, offset: u64, time_nanos: u64) {
        if self.committed.is_some_and(|c| c >= offset) {
            return;
        }
        self.committed = Some(offset);
        let active = self
            .members
            .front()
            .is_some_and(|m| m.active_since_nanos.is_some());
        if !active && self.acked.is_none_or(|a| a < offset) {
            self.acked = Some(offset);
            self.last_ack_nanos = Some(time_nanos);
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

    /// Adds a member: active at once if it is the only one and this node may serve the
    /// group, else a standby. `None` while the group is being deleted.
    pub(crate) fn join(
        &mut self,
        id: MemberId,
        address: SocketAddr,
        now_nanos: u64,
        now: Instant,
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
        Some(if self.members.len() == 1 && self.may_serve(now) {
            Joined::Active(self.activate_front(now_nanos))
        } else {
            Joined::Standby
        })
    }

    /// Removes a member; if it was the active one, the oldest standby takes over (if this
    /// node may serve the group).
    pub(crate) fn leave(
        &mut self,
        id: MemberId,
        now_nanos: u64,
        now: Instant,
    ) -> Option<Activation> {
        let at = self.members.iter().position(|m| m.id == id)?;
        let removed = self.members.remove(at)?;
        let was_active = removed.active_since_nanos.is_some();
        (was_active && !self.members.is_empty() && self.may_serve(now))
            .then(|| self.activate_front(now_nanos))
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
        self.members
            .front()
            .is_some_and(|m| m.id == id && m.active_since_nanos.is_some())
    }

    /// Notes that the event at `offset` is being sent to `id`; `false` if `id` is not the
    /// active member, or this node may no longer serve the group (it must stop reading).
    pub(crate) fn delivered(&mut self, id: MemberId, offset: u64, now: Instant) -> bool {
        if !self.is_active(id) || !self.may_serve(now) {
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
        let next = self.leave(lost, now_nanos, now);
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
mod tests;
