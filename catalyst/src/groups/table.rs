//! Every group of the node, by channel and name: joining and leaving, the periodic work
//! (timeouts, what to commit, snapshots) across groups. Pure, like [`Group`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::time::Instant;
use tracing::warn;

use super::name::GroupName;
use super::record::{Commit, GroupRecord, Keyed, StoredGroup, StoredKey};
use super::state::{Activation, Expiry, Group, Joined, MemberId};
use crate::channel_name::ChannelName;

/// A group's identity: its channel and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GroupKey {
    pub(crate) channel: ChannelName,
    pub(crate) group: GroupName,
}

impl GroupKey {
    fn stored(&self) -> StoredKey {
        (self.channel.to_string(), self.group.to_string())
    }
}

/// Every group, and the ids of their members.
#[derive(Debug, Default)]
pub(crate) struct Table {
    groups: BTreeMap<GroupKey, Group>,
    next_member: MemberId,
    /// Other nodes serve the same groups: each is served only while its lock is held.
    shared: bool,
}

/// A stored key as a group's key; `None`, with a warning, for a name no longer valid.
fn parse_key(channel: &str, group: &str) -> Option<GroupKey> {
    if let (Ok(channel), Ok(group)) = (ChannelName::parse(channel), GroupName::parse(group)) {
        Some(GroupKey { channel, group })
    } else {
        warn!(
            channel,
            group, "a stored consumer group has an invalid name"
        );
        None
    }
}

impl Table {
    /// The groups `_groups` holds, without members; `shared` if other nodes serve them too.
    /// A stored name that is no longer valid is left out, with a warning.
    pub(crate) fn restore(stored: &BTreeMap<StoredKey, StoredGroup>, shared: bool) -> Self {
        let mut table = Self {
            shared,
            ..Self::default()
        };
        for ((channel, group), state) in stored {
            if let Some(key) = parse_key(channel, group) {
                table.insert(key, Group::restore(state));
            }
        }
        table
    }

    /// Applies a record another node appended to `_groups`: a group it created or deleted,
    /// or acknowledgements it stored. The members of a group deleted there are returned
    /// (they are no longer members, and must be closed).
    pub(crate) fn apply_foreign(&mut self, record: GroupRecord) -> Vec<MemberId> {
        let known = |t: &mut Self, keyed: Keyed| {
            let Some(key) = parse_key(&keyed.channel, &keyed.group) else {
                return;
            };
            match t.groups.get_mut(&key) {
                Some(g) => {
                    if let Some(c) = keyed.state.committed {
                        g.seen_commit(c, keyed.state.last_ack_nanos.unwrap_or_default());
                    }
                }
                None => t.insert(key, Group::restore(&keyed.state)),
            }
        };
        match record {
            GroupRecord::Created(keyed) => known(self, keyed),
            GroupRecord::Snapshot { groups } => groups.into_iter().for_each(|k| known(self, k)),
            GroupRecord::Committed { acks } => {
                for ack in acks {
                    if let Some(key) = parse_key(&ack.channel, &ack.group)
                        && let Some(g) = self.groups.get_mut(&key)
                    {
                        g.seen_commit(ack.offset, ack.time);
                    }
                }
            }
            GroupRecord::Deleted { channel, group } => {
                if let Some(key) = parse_key(&channel, &group)
                    && let Some(g) = self.groups.remove(&key)
                {
                    return g.members().map(|m| m.id).collect();
                }
            }
        }
        Vec::new()
    }

    pub(crate) fn get(&self, key: &GroupKey) -> Option<&Group> {
        self.groups.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &GroupKey) -> Option<&mut Group> {
        self.groups.get_mut(key)
    }

    /// Adds a group (shared, on a shared table).
    pub(crate) fn insert(&mut self, key: GroupKey, group: Group) {
        let group = if self.shared { group.shared() } else { group };
        self.groups.insert(key, group);
    }

    pub(crate) fn remove(&mut self, key: &GroupKey) -> Option<Group> {
        self.groups.remove(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    /// Every group, by channel then name; only `channel`'s if given.
    pub(crate) fn groups<'a>(
        &'a self,
        channel: Option<&'a ChannelName>,
    ) -> impl Iterator<Item = (&'a GroupKey, &'a Group)> + 'a {
        self.groups
            .iter()
            .filter(move |(k, _)| channel.is_none_or(|c| &k.channel == c))
    }

    /// Whether any group has a member connected.
    pub(crate) fn has_members(&self) -> bool {
        self.groups.values().any(Group::has_members)
    }

    /// A new member of `key`: its id, and whether it is active at once. `None` if the group
    /// does not exist or is being deleted.
    pub(crate) fn join(
        &mut self,
        key: &GroupKey,
        address: SocketAddr,
        now_nanos: u64,
        now: Instant,
    ) -> Option<(MemberId, Option<Activation>)> {
        let id = self.next_member;
        let joined = self
            .groups
            .get_mut(key)?
            .join(id, address, now_nanos, now)?;
        self.next_member += 1;
        let activation = match joined {
            Joined::Active(a) => Some(a),
            Joined::Standby => None,
        };
        Some((id, activation))
    }

    /// A member leaves; the standby that takes over, if any.
    pub(crate) fn leave(
        &mut self,
        key: &GroupKey,
        id: MemberId,
        now_nanos: u64,
        now: Instant,
    ) -> Option<Activation> {
        self.groups.get_mut(key)?.leave(id, now_nanos, now)
    }

    /// Every active member that owed an acknowledgement for its group's timeout loses its
    /// place.
    pub(crate) fn expire(&mut self, now: Instant, now_nanos: u64) -> Vec<(GroupKey, Expiry)> {
        self.groups
            .iter_mut()
            .filter_map(|(k, g)| g.expire(now, now_nanos).map(|e| (k.clone(), e)))
            .collect()
    }

    /// The acknowledgements newer than the stored ones.
    pub(crate) fn to_commit(&self) -> Vec<Commit> {
        self.groups
            .iter()
            .filter_map(|(k, g)| {
                let offset = g.to_commit()?;
                let (channel, group) = k.stored();
                Some(Commit {
                    channel,
                    group,
                    offset,
                    time: g.last_ack_nanos().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Notes that `commits` are stored.
    pub(crate) fn committed(&mut self, commits: &[Commit]) {
        for commit in commits {
            let key = (
                ChannelName::parse(&commit.channel),
                GroupName::parse(&commit.group),
            );
            if let (Ok(channel), Ok(group)) = key
                && let Some(g) = self.groups.get_mut(&GroupKey { channel, group })
            {
                g.committed_up_to(commit.offset);
            }
        }
    }

    /// Every group's durable state, for a snapshot record.
    pub(crate) fn snapshot(&self) -> Vec<Keyed> {
        self.groups
            .iter()
            .map(|(k, g)| {
                let (channel, group) = k.stored();
                Keyed {
                    channel,
                    group,
                    state: g.stored(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{GroupRecord, Settings, apply};
    use super::*;

    fn key(channel: &str, group: &str) -> GroupKey {
        GroupKey {
            channel: ChannelName::parse(channel).expect("channel"),
            group: GroupName::parse(group).expect("group"),
        }
    }

    fn group(timeout_ms: u64) -> Group {
        let settings = Settings {
            types: vec![],
            sources: vec![],
            timeout_ms,
        };
        Group::new(settings, 0, 0, None)
    }

    #[tokio::test(start_paused = true)]
    async fn commits_and_snapshots_rebuild_the_same_durable_state() {
        let mut t = Table::default();
        t.insert(key("orders", "a"), group(30_000));
        t.insert(key("orders", "b"), group(30_000));
        t.insert(key("events", "c"), group(30_000));
        let a = key("orders", "a");
        let (id, activation) = t
            .join(&a, "127.0.0.1:1".parse().expect("addr"), 1, Instant::now())
            .expect("joined");
        assert_eq!(activation.map(|x| x.from), Some(0));
        assert!(
            t.join(
                &key("orders", "nope"),
                "127.0.0.1:1".parse().expect("addr"),
                1,
                Instant::now()
            )
            .is_none()
        );
        let g = t.get_mut(&a).expect("a");
        for o in 0..=9 {
            g.delivered(id, o, Instant::now());
        }
        g.ack(id, 6, Instant::now(), 66).expect("ack");
        let commits = t.to_commit();
        assert_eq!(
            commits,
            vec![Commit {
                channel: "orders".into(),
                group: "a".into(),
                offset: 6,
                time: 66
            }]
        );
        // What the store would hold: a snapshot taken before the commit, then its record.
        let mut stored = BTreeMap::new();
        apply(
            &mut stored,
            GroupRecord::Snapshot {
                groups: t.snapshot(),
            },
        );
        apply(
            &mut stored,
            GroupRecord::Committed {
                acks: commits.clone(),
            },
        );
        t.committed(&commits);
        assert!(t.to_commit().is_empty());
        let restored = Table::restore(&stored, false);
        assert_eq!(
            restored.snapshot(),
            t.snapshot(),
            "the fold rebuilds the table"
        );
        assert_eq!(restored.get(&a).map(Group::next), Some(7));
        assert_eq!(restored.groups(Some(&a.channel)).count(), 2);
        assert_eq!(restored.groups(None).count(), 3);
        assert!(!restored.has_members() && t.has_members());
    }

    #[tokio::test(start_paused = true)]
    async fn expiries_are_found_across_groups() {
        let mut t = Table::default();
        let (slow, fast) = (key("orders", "slow"), key("orders", "fast"));
        t.insert(slow.clone(), group(100));
        t.insert(fast.clone(), group(10_000));
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        for k in [&slow, &fast] {
            let (id, _) = t.join(k, addr, 0, Instant::now()).expect("joined");
            t.get_mut(k)
                .expect("group")
                .delivered(id, 0, Instant::now());
        }
        let (standby, _) = t.join(&slow, addr, 0, Instant::now()).expect("joined");
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        let expired = t.expire(Instant::now(), 0);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, slow);
        assert_eq!(
            expired[0].1.next.map(|a| (a.member, a.from)),
            Some((standby, 0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn another_nodes_records_merge_into_a_shared_table() {
        let mut t = Table::restore(&BTreeMap::new(), true);
        let a = key("orders", "a");
        let keyed = |committed| Keyed {
            channel: "orders".into(),
            group: "a".into(),
            state: StoredGroup {
                committed,
                ..group(30_000).stored()
            },
        };
        assert!(
            t.apply_foreign(GroupRecord::Created(keyed(None)))
                .is_empty()
        );
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let (id, activation) = t.join(&a, addr, 0, Instant::now()).expect("joined");
        assert_eq!(activation, None, "a shared group waits for its lock");
        let acks = vec![Commit {
            channel: "orders".into(),
            group: "a".into(),
            offset: 3,
            time: 9,
        }];
        t.apply_foreign(GroupRecord::Committed { acks });
        // A snapshot taken elsewhere before that commit does not move it back; nor does
        // the group's own creation, read again.
        t.apply_foreign(GroupRecord::Snapshot {
            groups: vec![keyed(Some(1))],
        });
        t.apply_foreign(GroupRecord::Created(keyed(None)));
        let g = t.get_mut(&a).expect("a");
        assert_eq!(g.committed(), Some(3));
        let until = Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(
            g.granted(until, 1).map(|x| (x.member, x.from)),
            Some((id, 4))
        );
        let deleted = GroupRecord::Deleted {
            channel: "orders".into(),
            group: "a".into(),
        };
        assert_eq!(t.apply_foreign(deleted), vec![id], "its member is closed");
        assert!(t.get(&a).is_none());
    }
}
