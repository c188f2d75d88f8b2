//! [`Blueprint`]: the running registry and KV store of one node.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use draft_log::{LogBackend, PartitionName, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::info;

use crate::applier::{Condition, Op, Outcome};
use crate::checkpoint::Checkpoints;
use crate::config::BlueprintConfig;
use crate::error::{OpenError, ValueError, WriteError};
use crate::event::{CONTROL_PARTITION, is_foreign_type};
use crate::expiry;
use crate::follower::{self, Reached};
use crate::lease::Leases;
use crate::names::{InstanceId, Key, Revision, ServiceName};
use crate::ownership::TakeOver;
use crate::peers::{self, Keeping, PeerHeartbeat};
use crate::projection::{KvMeta, Projection};
use crate::reaper;
use crate::replay;
use crate::shared::Shared;
use crate::token_cache::TokenCache;
use crate::value_cache::ValueCache;
use crate::wire::{Health, Registration};
use crate::writer;

/// The registry and KV store. Cheap to clone.
#[derive(Clone)]
pub struct Blueprint {
    pub(crate) shared: Arc<Shared>,
}

impl Blueprint {
    /// Opens Blueprint on `log`: loads the newest checkpoint, replays the control log after
    /// it, gives every passing instance one full TTL (at most `restart_grace`), and starts the
    /// writer and lease tasks.
    ///
    /// # Errors
    /// [`OpenError`] if the control log or the checkpoints cannot be read.
    pub async fn open(
        log: Arc<dyn LogBackend>,
        config: BlueprintConfig,
    ) -> Result<Self, OpenError> {
        let started = tokio::time::Instant::now();
        let control = PartitionName::new(CONTROL_PARTITION).map_err(OpenError::Log)?;
        let checkpoints =
            Checkpoints::new(&config.checkpoint_dir).map_err(|source| OpenError::Checkpoints {
                path: config.checkpoint_dir.clone(),
                source,
            })?;
        let log_next = log
            .head(&control)
            .await
            .map_err(OpenError::Log)?
            .map_or(0, |h| h.next.0);
        let mut state =
            replay::newest_checkpoint(&checkpoints, &config.checkpoint_dir, log_next).await?;
        let from_checkpoint = state.revision();
        replay::replay(&*log, &control, &mut state, None).await?;
        let leases = Leases::of_passing(&state, Instant::now(), config.restart_grace);
        info!(
            revision = ?state.revision(),
            checkpoint = ?from_checkpoint,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "blueprint ready"
        );
        let (writes, rx) = mpsc::channel(16 * 1024);
        let values = ValueCache::new(config.value_cache_bytes);
        let blueprint = Self {
            shared: Arc::new(Shared {
                log,
                control,
                applied: watch::Sender::new(state.revision().map(Revision::new)),
                state: RwLock::new(state),
                config,
                writes,
                leases: Mutex::new(leases),
                checkpoints,
                loaded: Mutex::new(None),
                tokens: TokenCache::default(),
                values,
            }),
        };
        tokio::spawn(writer::run_writer(Arc::downgrade(&blueprint.shared), rx));
        tokio::spawn(expiry::keep_leases(Arc::downgrade(&blueprint.shared)));
        if blueprint.shared.config.follow_log {
            tokio::spawn(follower::follow(Arc::downgrade(&blueprint.shared)));
        }
        if blueprint.shared.config.peers.is_some() {
            tokio::spawn(peers::hear(Arc::downgrade(&blueprint.shared)));
        }
        if let Some(after) = blueprint.shared.config.remove_critical_after {
            tokio::spawn(reaper::remove_critical(
                Arc::downgrade(&blueprint.shared),
                after,
            ));
        }
        Ok(blueprint)
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &BlueprintConfig {
        &self.shared.config
    }

    /// Reads the current state under a short read lock.
    pub fn read<T>(&self, f: impl FnOnce(&Projection) -> T) -> T {
        self.shared.read(f)
    }

    /// The current revision.
    #[must_use]
    pub fn revision(&self) -> Option<Revision> {
        self.shared.revision().map(Revision::new)
    }

    /// Waits until this node has applied `revision` (read-your-writes across nodes: a write
    /// on one node answers with its revision, a read on another waits for it), at most
    /// `wait`.
    ///
    /// # Errors
    /// If the log's head cannot be read, or Blueprint closed.
    pub async fn reach(
        &self,
        revision: Revision,
        wait: Duration,
    ) -> Result<Reached, draft_log::Error> {
        self.shared.reach(revision.get(), wait).await
    }

    /// Applies everything the log holds now, when this Blueprint follows a log other nodes
    /// write: for a caller that must not act on a projection a moment behind (a heartbeat
    /// for an instance just registered on another node). Does nothing on a log of its own.
    ///
    /// # Errors
    /// If the log's head cannot be read, or a fatal error ([`draft_log::Error::is_fatal`])
    /// met while reading up to it.
    pub async fn catch_up(&self) -> Result<(), draft_log::Error> {
        if !self.shared.config.follow_log {
            return Ok(());
        }
        let head = self.shared.log.head(&self.shared.control).await?;
        self.shared.catch_up(head.map_or(0, |h| h.next.0)).await?;
        Ok(())
    }

    /// Which node keeps the leases (writes expiries), as this node sees it.
    #[must_use]
    pub fn keeping(&self) -> Keeping {
        self.shared.keeping()
    }

    /// A receiver of the last applied revision.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Option<Revision>> {
        self.shared.applied.subscribe()
    }

    /// The log this Blueprint reads and writes.
    #[must_use]
    pub fn log(&self) -> &Arc<dyn LogBackend> {
        &self.shared.log
    }

    /// The control partition.
    #[must_use]
    pub fn control(&self) -> &PartitionName {
        &self.shared.control
    }

    /// The value of `key`, which `meta` (from this node's state now or at any revision)
    /// describes: read from the control log at `meta.revision`, the key's put.
    ///
    /// # Errors
    /// [`ValueError`] if the log cannot be read there or does not hold that put.
    pub async fn value(&self, key: &str, meta: &KvMeta) -> Result<Bytes, ValueError> {
        self.shared.values().value(key, meta).await
    }

    /// The current metadata and value of `key` (`None`: it does not exist).
    ///
    /// # Errors
    /// As [`value`](Self::value).
    pub async fn get(&self, key: &str) -> Result<Option<(KvMeta, Bytes)>, ValueError> {
        let Some(meta) = self.read(|p| p.get(key).cloned()) else {
            return Ok(None);
        };
        let value = self.value(key, &meta).await?;
        Ok(Some((meta, value)))
    }

    /// The state as of `revision`: from the nearest checkpoint at or below it, plus replay.
    /// A revision at or past the current one is the current state.
    ///
    /// # Errors
    /// If the log or a checkpoint cannot be read.
    pub async fn state_at(&self, revision: Option<Revision>) -> Result<Projection, OpenError> {
        self.shared.state_at(revision.map(Revision::get)).await
    }

    /// The revision in force at `time`: the last control event appended at or before it
    /// (`None`: before the first).
    ///
    /// # Errors
    /// If the log cannot be read.
    pub async fn revision_at_time(
        &self,
        time: Timestamp,
    ) -> Result<Option<Revision>, draft_log::Error> {
        let revision = self.shared.revision_at_time(time).await?;
        Ok(revision.map(Revision::new))
    }

    /// Registers (or re-registers) an instance; the same registration of a passing instance
    /// appends nothing but renews the lease. It may take no route another service owns (see
    /// [`register_taking`](Self::register_taking)).
    ///
    /// # Errors
    /// As [`register_taking`](Self::register_taking).
    pub async fn register(
        &self,
        service: &ServiceName,
        instance: &InstanceId,
        registration: Registration,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        self.register_taking(service, instance, registration, actor, TakeOver::Nothing)
            .await
    }

    /// [`register`](Self::register), with what the actor's token may take from other
    /// routes' owners ([`TakeOver::of`] its policy).
    ///
    /// # Errors
    /// [`WriteError::RouteOwned`] for a route another service owns that `take_over` does not
    /// cover; [`WriteError::Log`] if the log refuses the append.
    pub async fn register_taking(
        &self,
        service: &ServiceName,
        instance: &InstanceId,
        registration: Registration,
        actor: &str,
        take_over: TakeOver,
    ) -> Result<Outcome, WriteError> {
        let ttl = Duration::from_millis(registration.ttl_ms);
        let op = Op::Register {
            service: service.clone(),
            instance: instance.clone(),
            registration,
            take_over,
        };
        let outcome = self.shared.write(op, actor).await?;
        self.shared
            .leases()
            .renew(service, instance, ttl, Instant::now());
        Ok(outcome)
    }

    /// Renews a passing instance's lease. `Ok(false)` if it is unknown or critical (the
    /// client should register again).
    ///
    /// # Errors
    /// [`WriteError::Log`] with [`draft_log::Error::ReadOnly`] once the log is read-only: a
    /// node that cannot write cannot record the instance's expiry or its deregistration
    /// either, so it does not pretend to keep the lease (the lease it holds is kept, and
    /// expires nothing: see [`expiry`](crate::expiry)).
    pub fn heartbeat(
        &self,
        service: &ServiceName,
        instance: &InstanceId,
    ) -> Result<bool, WriteError> {
        if let Some(failure) = self.shared.log.storage_failure() {
            return Err(WriteError::Log(draft_log::Error::ReadOnly(failure)));
        }
        let ttl = self.read(|s| {
            s.instance(service, instance)
                .filter(|i| i.health == Health::Passing)
                .map(|i| Duration::from_millis(i.registration.ttl_ms))
        });
        let Some(ttl) = ttl else { return Ok(false) };
        self.shared
            .leases()
            .renew(service, instance, ttl, Instant::now());
        if let Some(peers) = &self.shared.config.peers {
            peers.0.share(PeerHeartbeat {
                service: service.as_str().to_owned(),
                instance: instance.as_str().to_owned(),
                ttl,
            });
        }
        Ok(true)
    }

    /// Deregisters an instance.
    pub async fn deregister(
        &self,
        service: &ServiceName,
        instance: &InstanceId,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        let op = Op::Deregister {
            service: service.clone(),
            instance: instance.clone(),
        };
        self.shared.write(op, actor).await
    }

    /// Puts a key, if `condition` holds.
    pub async fn put(
        &self,
        key: &Key,
        value: Vec<u8>,
        condition: Condition,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        self.shared
            .write(
                Op::Put {
                    key: key.clone(),
                    value,
                    condition,
                },
                actor,
            )
            .await
    }

    /// Records a control event of another part of the node in `_draft` (Catalyst's
    /// `io.draft.group.created`, say), through the same writer as Blueprint's own changes, so
    /// every revision is one the projection has seen; returns its revision. The event is
    /// `{"type": ty, "source": "/draft/<node>", "draftactor": actor, "data": data, ..}` and
    /// changes nothing in the registry or the KV store.
    ///
    /// # Errors
    /// [`WriteError::NotRecorded`] if `ty` is not `io.draft.*` or is in one of Blueprint's
    /// own families (`io.draft.instance.*`, `io.draft.kv.*`); [`WriteError::Log`] if the
    /// append fails.
    pub async fn record(
        &self,
        ty: &str,
        data: serde_json::Value,
        actor: &str,
    ) -> Result<Revision, WriteError> {
        if !is_foreign_type(ty) {
            return Err(WriteError::NotRecorded(format!(
                "{ty:?} is not a control event type of another part of the node"
            )));
        }
        let op = Op::Record {
            ty: ty.to_owned(),
            data,
        };
        match self.shared.write(op, actor).await? {
            Outcome::Appended(revision) => Ok(revision),
            Outcome::Unchanged => Err(WriteError::NotRecorded(format!(
                "the writer appended no {ty} event"
            ))),
        }
    }

    /// Deletes a key, if it exists and `condition` holds.
    pub async fn delete(
        &self,
        key: &Key,
        condition: Condition,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        self.shared
            .write(
                Op::Delete {
                    key: key.clone(),
                    condition,
                },
                actor,
            )
            .await
    }
}
