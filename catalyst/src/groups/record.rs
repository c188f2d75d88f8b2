//! What the reserved partition `_groups` holds: one JSON record per change, and the pure fold
//! that rebuilds every group from them.
//!
//! ```text
//! {"op":"created","channel":"orders","group":"billing","start":0,"committed":null,...}
//! {"op":"committed","acks":[{"channel":"orders","group":"billing","offset":41,"time":...}]}
//! {"op":"deleted","channel":"orders","group":"billing"}
//! {"op":"snapshot","groups":[{"channel":"orders","group":"billing","start":0,...}]}
//! ```
//!
//! A snapshot replaces everything before it, so the partition is trimmed up to its newest
//! snapshot (see `store.rs`); a `committed` record for a group that does not exist (any more)
//! is passed over, and a commit never moves a group backwards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A group's settings, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// Its `type` filters (as given: exact, or a prefix ending in `*`).
    #[serde(default)]
    pub(crate) types: Vec<String>,
    /// Its `source` filters.
    #[serde(default)]
    pub(crate) sources: Vec<String>,
    /// How long the active member may owe an acknowledgement before it loses its place.
    pub(crate) timeout_ms: u64,
}

/// A group's durable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredGroup {
    #[serde(flatten)]
    pub(crate) settings: Settings,
    /// Where delivery began when it was created.
    pub(crate) start: u64,
    /// The last committed acknowledgement.
    pub(crate) committed: Option<u64>,
    /// When it was created (unix nanos).
    pub(crate) created_nanos: u64,
    /// The `_draft` revision of its `io.draft.group.created` event.
    pub(crate) revision: Option<u64>,
    /// When its last committed acknowledgement was received (unix nanos).
    pub(crate) last_ack_nanos: Option<u64>,
}

/// A group's place in `_groups`: its channel and name.
pub(crate) type StoredKey = (String, String);

/// A stored group with its key, as records hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Keyed {
    pub(crate) channel: String,
    pub(crate) group: String,
    #[serde(flatten)]
    pub(crate) state: StoredGroup,
}

/// One acknowledgement made durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Commit {
    pub(crate) channel: String,
    pub(crate) group: String,
    /// Every event up to this offset is acknowledged.
    pub(crate) offset: u64,
    /// When the acknowledgement was received (unix nanos).
    pub(crate) time: u64,
}

/// One record of `_groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum GroupRecord {
    /// A group was created.
    Created(Keyed),
    /// Acknowledgements of one or more groups, stored together.
    Committed { acks: Vec<Commit> },
    /// A group was deleted.
    Deleted { channel: String, group: String },
    /// Every group at this point: the records before it are no longer needed.
    Snapshot { groups: Vec<Keyed> },
}

impl GroupRecord {
    /// The bytes stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A record of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored record.
    ///
    /// # Errors
    /// Why the bytes are not a `_groups` record.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Applies one record to the stored groups. Pure.
pub(crate) fn apply(groups: &mut BTreeMap<StoredKey, StoredGroup>, record: GroupRecord) {
    match record {
        GroupRecord::Created(keyed) => {
            groups.insert((keyed.channel, keyed.group), keyed.state);
        }
        GroupRecord::Committed { acks } => {
            for ack in acks {
                if let Some(g) = groups.get_mut(&(ack.channel, ack.group))
                    && g.committed.is_none_or(|c| ack.offset > c)
                {
                    g.committed = Some(ack.offset);
                    g.last_ack_nanos = Some(ack.time);
                }
            }
        }
        GroupRecord::Deleted { channel, group } => {
            groups.remove(&(channel, group));
        }
        GroupRecord::Snapshot { groups: all } => {
            *groups = all
                .into_iter()
                .map(|k| ((k.channel, k.group), k.state))
                .collect();
        }
    }
}

/// Folded groups as the records of a snapshot (tests build snapshots from a model this way).
#[cfg(test)]
pub(crate) fn snapshot_of(groups: &BTreeMap<StoredKey, StoredGroup>) -> Vec<Keyed> {
    groups
        .iter()
        .map(|((channel, group), state)| Keyed {
            channel: channel.clone(),
            group: group.clone(),
            state: state.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(channel: &str, group: &str, start: u64) -> Keyed {
        Keyed {
            channel: channel.into(),
            group: group.into(),
            state: StoredGroup {
                settings: Settings {
                    types: vec!["order.*".into()],
                    sources: vec![],
                    timeout_ms: 30_000,
                },
                start,
                committed: None,
                created_nanos: 1,
                revision: Some(7),
                last_ack_nanos: None,
            },
        }
    }

    fn commit(group: &str, offset: u64) -> GroupRecord {
        GroupRecord::Committed {
            acks: vec![Commit {
                channel: "orders".into(),
                group: group.into(),
                offset,
                time: offset * 10,
            }],
        }
    }

    #[test]
    fn records_round_trip_and_read_as_documented() {
        let records = [
            GroupRecord::Created(keyed("orders", "billing", 3)),
            commit("billing", 41),
            GroupRecord::Deleted {
                channel: "orders".into(),
                group: "billing".into(),
            },
            GroupRecord::Snapshot {
                groups: vec![keyed("orders", "a", 0), keyed("events", "b", 9)],
            },
        ];
        for record in records {
            let bytes = record.encode();
            assert_eq!(GroupRecord::decode(&bytes), Ok(record));
        }
        let text = String::from_utf8(GroupRecord::Created(keyed("orders", "billing", 3)).encode())
            .expect("utf-8");
        assert!(
            text.starts_with(r#"{"op":"created","channel":"orders","group":"billing","types""#),
            "{text}"
        );
        assert!(GroupRecord::decode(br#"{"op":"renamed"}"#).is_err());
    }

    #[test]
    fn the_fold_follows_creates_commits_deletes_and_snapshots() {
        let mut groups = BTreeMap::new();
        let key = |g: &str| ("orders".to_owned(), g.to_owned());
        apply(&mut groups, GroupRecord::Created(keyed("orders", "a", 0)));
        apply(&mut groups, GroupRecord::Created(keyed("orders", "b", 5)));
        apply(&mut groups, commit("a", 9));
        apply(&mut groups, commit("a", 4));
        apply(&mut groups, commit("ghost", 4));
        let a = &groups[&key("a")];
        assert_eq!(
            (a.committed, a.last_ack_nanos),
            (Some(9), Some(90)),
            "never back"
        );
        assert_eq!(groups.len(), 2, "a commit creates no group");
        apply(
            &mut groups,
            GroupRecord::Deleted {
                channel: "orders".into(),
                group: "a".into(),
            },
        );
        apply(&mut groups, commit("a", 20));
        assert!(
            !groups.contains_key(&key("a")),
            "a commit after a delete is dropped"
        );
        let snapshot = snapshot_of(&groups);
        let mut rebuilt = BTreeMap::new();
        apply(
            &mut rebuilt,
            GroupRecord::Created(keyed("orders", "stale", 0)),
        );
        apply(&mut rebuilt, GroupRecord::Snapshot { groups: snapshot });
        assert_eq!(rebuilt, groups, "a snapshot replaces what came before");
    }
}
