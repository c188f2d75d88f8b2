//! [`Groups`]: the node's consumer groups at run time. The pure [`Table`] behind a lock, the
//! `_groups` store, the signals to each member's session, and the keeper task that expires
//! stalled members and commits acknowledgements (one append per interval for every group
//! acknowledged meanwhile).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use draft_http::{Actor, ApiError, Code, Shutdown};
use draft_log::{LogBackend, Timestamp};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::control::ControlLog;
use super::locks::GroupLocks;
use super::record::{GroupRecord, Keyed, Settings};
use super::state::{AckError, Activation, Group, MemberId};
use super::store::Store;
use super::table::{GroupKey, Table};
use crate::error::log_error;

mod deleting;
mod shared;

/// The most groups one node keeps (a snapshot holds them all).
pub(crate) const MAX_GROUPS: usize = 10_000;
/// How long, on the way down, the keeper waits for members to leave before its last commit.
const LAST_COMMIT_WAIT: Duration = Duration::from_secs(1);
/// How often a group's creation is decided again when other nodes keep appending to
/// `_groups` first.
const CREATE_ATTEMPTS: usize = 8;

/// What a member's session is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Start delivering from this offset: the member is active.
    Activate { from: u64 },
    /// The member owed an acknowledgement for `timeout_ms` and lost its place; delivery
    /// resumes at `resume` (for whoever is next).
    Lost { timeout_ms: u64, resume: u64 },
    /// This node stopped serving the group (it lost the group's lock): the active member
    /// lost its place.
    Moved,
    /// The group was deleted on another node.
    Deleted,
}

/// The settings a connection asks for: what it leaves out, the group's own (or, for a new
/// group, the defaults) apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    pub(crate) types: Vec<String>,
    pub(crate) sources: Vec<String>,
    pub(crate) timeout_ms: Option<u64>,
}

/// A new group: where it starts, and how the connection said so (for the audit trail).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start<'a> {
    pub(crate) offset: u64,
    pub(crate) from: &'a str,
}

struct Live {
    table: Table,
    signals: HashMap<MemberId, mpsc::UnboundedSender<Signal>>,
    /// When each group's lock is next to be taken or renewed (shared groups only).
    lock_due: HashMap<GroupKey, Instant>,
}

impl Live {
    fn signal(&self, id: MemberId, signal: Signal) {
        if let Some(tx) = self.signals.get(&id) {
            let _ = tx.send(signal);
        }
    }

    fn activate(&self, activation: Option<Activation>) {
        if let Some(a) = activation {
            self.signal(a.member, Signal::Activate { from: a.from });
        }
    }

    /// Sends `id` its last signal: it is no longer a member.
    fn close(&mut self, id: MemberId, signal: Signal) {
        self.signal(id, signal);
        self.signals.remove(&id);
    }
}

/// The node's consumer groups. Shared by every request through [`crate::Catalyst`].
pub(crate) struct Groups {
    store: Store,
    control: Arc<dyn ControlLog>,
    /// The groups' locks when other nodes share the log (`None`: this node serves every
    /// group itself).
    locks: Option<Arc<dyn GroupLocks>>,
    live: Mutex<Live>,
    /// Serializes what appends to `_groups` in more than one step or from a state read
    /// first: creating, deleting, committing, snapshots.
    changes: tokio::sync::Mutex<()>,
    default_timeout: Duration,
    commit_every: Duration,
}

fn now_nanos() -> u64 {
    Timestamp::now().as_unix_nanos()
}

/// A type and source list in one order, without repeats: how a group's filter is stored
/// and compared.
fn canonical(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values.dedup();
    values
}

impl Groups {
    /// The groups stored in `log`'s `_groups`, and the keeper task (it holds a
    /// [`Shutdown::guard`] until its last commit on the way down). With `locks`, other
    /// nodes share the log: the store follows their records, and a group is served only
    /// while this node holds its lock.
    pub(crate) async fn open(
        log: Arc<dyn LogBackend>,
        control: Arc<dyn ControlLog>,
        locks: Option<Arc<dyn GroupLocks>>,
        (default_timeout, commit_every): (Duration, Duration),
        shutdown: &Shutdown,
    ) -> draft_log::Result<Arc<Self>> {
        let shared = locks.is_some();
        let (store, stored) = Store::open(log, shared).await?;
        let groups = Arc::new(Self {
            store,
            control,
            locks,
            live: Mutex::new(Live {
                table: Table::restore(&stored, shared),
                signals: HashMap::new(),
                lock_due: HashMap::new(),
            }),
            changes: tokio::sync::Mutex::new(()),
            default_timeout,
            commit_every,
        });
        tokio::spawn(keep(Arc::downgrade(&groups), shutdown.clone()));
        Ok(groups)
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the table under the lock.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Table) -> T) -> T {
        f(&self.live().table)
    }

    /// The group's settings; creates it first (recording `io.draft.group.created` by `actor`)
    /// if it does not exist.
    ///
    /// # Errors
    /// 409 if the connection asks for other settings than the group's, or the node holds
    /// [`MAX_GROUPS`]; 500 if it cannot be stored.
    pub(crate) async fn ensure(
        &self,
        key: &GroupKey,
        wanted: &Wanted,
        start: Start<'_>,
        actor: &Actor,
    ) -> Result<Settings, ApiError> {
        let _changes = self.changes.lock().await;
        self.follow().await;
        if let Some(group) = self.live().table.get(key) {
            return same_settings(key, group.settings(), wanted).map(|()| group.settings().clone());
        }
        if self.live().table.len() >= MAX_GROUPS {
            return Err(ApiError::new(
                Code::Conflict,
                format!("the node holds {MAX_GROUPS} consumer groups, its most; delete one first"),
            ));
        }
        let settings = Settings {
            types: canonical(&wanted.types),
            sources: canonical(&wanted.sources),
            timeout_ms: wanted
                .timeout_ms
                .unwrap_or(self.default_timeout.as_millis() as u64),
        };
        let data = serde_json::json!({
            "channel": key.channel.as_str(),
            "group": key.group.as_str(),
            "from": start.from,
            "start_offset": start.offset,
            "type": settings.types,
            "source": settings.sources,
            "timeout_ms": settings.timeout_ms,
        });
        let revision = self.record("io.draft.group.created", data, actor).await?;
        let group = Group::new(settings.clone(), start.offset, now_nanos(), Some(revision));
        let created = GroupRecord::Created(Keyed {
            channel: key.channel.to_string(),
            group: key.group.to_string(),
            state: group.stored(),
        });
        // On a shared log another node may create the same group meanwhile: the creation
        // is appended only if nothing came between, and otherwise decided again.
        let mut attempts = 0;
        loop {
            match self.store.append_if_followed(&created).await {
                Ok(_) => break,
                Err(draft_log::Error::Conflict { .. }) if attempts < CREATE_ATTEMPTS => {
                    attempts += 1;
                    self.follow().await;
                    if let Some(group) = self.live().table.get(key) {
                        return same_settings(key, group.settings(), wanted)
                            .map(|()| group.settings().clone());
                    }
                }
                Err(e) => return Err(log_error(&e)),
            }
        }
        self.live().table.insert(key.clone(), group);
        Ok(settings)
    }

    async fn record(
        &self,
        ty: &'static str,
        data: serde_json::Value,
        actor: &Actor,
    ) -> Result<u64, ApiError> {
        self.control.record(ty, data, actor.name()).await
    }

    /// A new member of `key`, and the receiver of its signals (an `Activate` is waiting in it
    /// if it is active at once). `None` if the group is gone or being deleted.
    pub(crate) fn join(
        &self,
        key: &GroupKey,
        address: SocketAddr,
    ) -> Option<(MemberId, mpsc::UnboundedReceiver<Signal>)> {
        let mut live = self.live();
        let (id, activation) = live.table.join(key, address, now_nanos(), Instant::now())?;
        let (tx, rx) = mpsc::unbounded_channel();
        live.signals.insert(id, tx);
        live.activate(activation);
        Some((id, rx))
    }

    /// A member leaves (its socket closed); the oldest standby takes over if it was active.
    pub(crate) fn leave(&self, key: &GroupKey, id: MemberId) {
        let mut live = self.live();
        live.signals.remove(&id);
        let next = live.table.leave(key, id, now_nanos(), Instant::now());
        live.activate(next);
    }

    /// Notes the delivery of `offset` to `id`; `false` if `id` is not the active member.
    pub(crate) fn delivered(&self, key: &GroupKey, id: MemberId, offset: u64) -> bool {
        self.live()
            .table
            .get_mut(key)
            .is_some_and(|g| g.delivered(id, offset, Instant::now()))
    }

    /// `id` acknowledges every event up to `offset`.
    pub(crate) fn ack(&self, key: &GroupKey, id: MemberId, offset: u64) -> Result<(), AckError> {
        self.live()
            .table
            .get_mut(key)
            .ok_or(AckError::NotMember)?
            .ack(id, offset, Instant::now(), now_nanos())
    }

    /// The periodic work: other nodes' records are followed, stalled members lose their
    /// place, new acknowledgements are stored (one record for every group), shared groups'
    /// locks are taken, renewed or given up, and a snapshot is taken when one is due.
    async fn tick(&self) {
        let _changes = self.changes.lock().await;
        self.follow().await;
        {
            let mut live = self.live();
            for (_, expiry) in live.table.expire(Instant::now(), now_nanos()) {
                live.close(
                    expiry.lost,
                    Signal::Lost {
                        timeout_ms: expiry.timeout_ms,
                        resume: expiry.resume,
                    },
                );
                live.activate(expiry.next);
            }
        }
        // A read-only log stores nothing: the acknowledgements stay in memory (members keep
        // their place), and after a restart groups resume from their last stored commit.
        if !self.store.is_writable() {
            return;
        }
        self.commit().await;
        if let Some(locks) = &self.locks {
            self.lock(&**locks).await;
        }
        if self.store.snapshot_due() {
            // On a shared log the snapshot is appended only right after what was followed:
            // follow again first, past this tick's own commit.
            self.follow().await;
            let groups = self.live().table.snapshot();
            match self.store.snapshot(groups).await {
                Ok(()) | Err(draft_log::Error::Conflict { .. }) => {}
                Err(e) => warn!(error = %e, "cannot snapshot the consumer groups"),
            }
        }
    }

    /// Stores the acknowledgements newer than the stored ones, in one record.
    async fn commit(&self) {
        let commits = self.live().table.to_commit();
        if commits.is_empty() {
            return;
        }
        let record = GroupRecord::Committed {
            acks: commits.clone(),
        };
        match self.store.append(&record).await {
            Ok(_) => self.live().table.committed(&commits),
            Err(e) => warn!(error = %e, "cannot store consumer group acknowledgements"),
        }
    }
}

/// Whether a connection's settings fit the group's: what it gives must be what the group has.
fn same_settings(key: &GroupKey, has: &Settings, wanted: &Wanted) -> Result<(), ApiError> {
    let differs = |what: &str, given: String, has: String| {
        ApiError::new(
            Code::Conflict,
            format!(
                "group {} of channel {} was created with {what} {has}, not {given}; a group's \
                 settings are fixed when it is created: leave {what} out, or delete the group",
                key.group, key.channel
            ),
        )
    };
    if !wanted.types.is_empty() && canonical(&wanted.types) != has.types {
        return Err(differs(
            "type",
            format!("{:?}", wanted.types),
            format!("{:?}", has.types),
        ));
    }
    if !wanted.sources.is_empty() && canonical(&wanted.sources) != has.sources {
        return Err(differs(
            "source",
            format!("{:?}", wanted.sources),
            format!("{:?}", has.sources),
        ));
    }
    if let Some(t) = wanted.timeout_ms
        && t != has.timeout_ms
    {
        return Err(differs(
            "timeout_ms",
            t.to_string(),
            has.timeout_ms.to_string(),
        ));
    }
    Ok(())
}

/// 404 for a group that does not exist.
pub(crate) fn not_found(key: &GroupKey) -> ApiError {
    ApiError::new(
        Code::NotFound,
        format!(
            "channel {} has no consumer group {}; a consumer creates it with ?group=",
            key.channel, key.group
        ),
    )
}

/// The keeper: ticks every `commit_every` until the groups are dropped or the node stops;
/// on the way down it waits (briefly) for members to leave, then commits what they
/// acknowledged.
async fn keep(groups: Weak<Groups>, shutdown: Shutdown) {
    let _draining = shutdown.guard();
    let Some(every) = groups.upgrade().map(|g| g.commit_every) else {
        return;
    };
    let mut stopping = std::pin::pin!(shutdown.triggered());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => break,
        }
        let Some(groups) = groups.upgrade() else {
            return;
        };
        groups.tick().await;
    }
    let Some(groups) = groups.upgrade() else {
        return;
    };
    let deadline = Instant::now() + LAST_COMMIT_WAIT;
    while groups.read(Table::has_members) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    groups.tick().await;
}
