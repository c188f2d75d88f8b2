//! Durable consumer groups: `GET /v1/channels/{channel}/consume?group=NAME`.
//!
//! **The contract.** A group reads its channel once, at least once, in offset order, and
//! remembers how far it got across disconnects, consumer crashes and node restarts:
//!
//! - The first connection with a new name creates the group, starting at `from` (`earliest`,
//!   `latest` (the default), an offset or an RFC 3339 time). Its `type`/`source` filters and
//!   `timeout_ms` (default: the node's setting, 30 s) are **fixed at creation**: a committed
//!   offset means "everything up to here was handled", which only holds if every member
//!   reads the same events. Later connections may leave them out or repeat them; other values
//!   are refused with 409 (`conflict`), and their `from` is ignored.
//! - One member is active: the oldest connection. It receives the events from one past the
//!   group's last acknowledged offset, and acknowledges with text messages `{"ack": OFFSET}`,
//!   cumulatively (every event up to `OFFSET` is handled). Further connections are standbys:
//!   they receive nothing until the active member disconnects, or owes an acknowledgement for
//!   the group's timeout (events delivered, none acknowledged); then the oldest standby takes
//!   over from the last acknowledged offset, and a member that lost its place is closed with
//!   4001 and a reason. Events delivered but not acknowledged are delivered again.
//! - An acknowledgement past the last event delivered to that connection, one going
//!   backwards, one from a standby, or a message that is not `{"ack": N}` closes the socket
//!   with 1008 and a reason, and changes nothing (repeating the last acknowledgement is
//!   fine).
//! - Acknowledgements are stored in the reserved partition `_groups`, every group's new ones
//!   together in one append per commit interval (default 100 ms): one fsync per interval,
//!   not per event. So after a node crash a group resumes after its last *committed*
//!   acknowledgement, which may trail the last one sent by up to that interval: those events
//!   come again (at least once). A clean shutdown commits everything acknowledged.
//! - `DELETE …/groups/{group}` refuses (409) while members are connected, here or, on a
//!   shared log, on the node that holds the group's lock or on one that waits for it:
//!   deleting a group in use would
//!   silently restart its consumers from `from`. A connection that races a deletion is
//!   closed with 4004.
//! - Creating and deleting a group are control events in `_draft` (`io.draft.group.created`,
//!   `io.draft.group.deleted`, with their actor), recorded through the [`ControlLog`] the
//!   node gives (Blueprint's writer); acknowledgements are not.
//!
//! **Several nodes on one log.** When other nodes append to the same log
//! ([`Catalyst::shared`](crate::Catalyst::shared)), each follows the others' records of
//! `_groups` (so a group created, acknowledged or deleted on one node is known on all), and
//! a group is served by one node at a time: the one holding the group's lock in the
//! [`GroupLocks`] it was given. That node's oldest member is active; every member on the
//! other nodes stands by. A node takes the lock while it has members, renews it, and gives
//! it up once it has none left, after storing their acknowledgements; the node that takes
//! it next reads `_groups` first and resumes after them. A node that dies holding a lock
//! loses it one TTL later (at least once: acknowledgements not yet committed come again). A
//! member whose node could not renew the lock is closed with 4002, one whose group was
//! deleted on another node with 4004. Creations and snapshots are compare-and-set appends,
//! so two nodes never create one group twice, and a snapshot never trims away a record it
//! did not see.
//!
//! **Inside.** `state.rs` is one group as a pure state machine and `table.rs` every group;
//! `record.rs` the records of `_groups` and their fold, `store.rs` the partition itself
//! (snapshots and trims keep it bounded); `service.rs` puts them behind a lock with the
//! keeper task, and `service/shared.rs` is what only runs on a shared log; `locks.rs` is
//! the [`GroupLocks`] trait the node implements. Like the broker's other state, this folder knows nothing of HTTP: a member's
//! socket is `group_session.rs` and the endpoints are `group_api.rs`, beside the other
//! handlers.

mod control;
mod locks;
mod name;
mod record;
mod service;
mod state;
mod store;
mod table;

pub use self::control::ControlLog;
pub use self::locks::GroupLocks;
pub(crate) use self::name::GroupName;
pub(crate) use self::service::{Groups, Signal, Start, Wanted, not_found};
pub(crate) use self::state::{Group, MemberId};
pub(crate) use self::table::GroupKey;
