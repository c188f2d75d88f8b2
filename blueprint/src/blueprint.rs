//! [`Blueprint`]: the running registry and KV store of one node.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use draft_log::{LogBackend, NewRecord, PartitionName, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::applier::{self, Condition, Op, Outcome, WriteRequest};
use crate::checkpoint::Checkpoints;
use crate::config::BlueprintConfig;
use crate::error::{OpenError, WriteError};
use crate::event::{Applied, CONTROL_PARTITION, ControlEvent};
use crate::lease::Leases;
use crate::projection::Projection;
use crate::replay;
use crate::shared::Shared;
use crate::wire::{Health, Registration};

/// The registry and KV store. Cheap to clone.
#[derive(Clone)]
pub struct Blueprint {
    shared: Arc<Shared>,
}

impl Blueprint {
    /// Opens Blueprint on `log`: loads the newest checkpoint, replays the control log after
    /// it, gives every passing instance one full TTL, and starts the writer and lease tasks.
    ///
    /// # Errors
    /// [`OpenError`] if the control log or the checkpoints cannot be read.
    pub async fn open(
        log: Arc<dyn LogBackend>,
        config: BlueprintConfig,
    ) -> Result<Self, OpenError> {
        let started = std::time::Instant::now();
        let control = PartitionName::new(CONTROL_PARTITION).map_err(OpenError::Log)?;
        let checkpoints =
            Checkpoints::new(&config.checkpoint_dir).map_err(|source| OpenError::Checkpoints {
                path: config.checkpoint_dir.clone(),
                source,
            })?;
        let mut state = replay::newest_checkpoint(&checkpoints, &config.checkpoint_dir).await?;
        let from_checkpoint = state.revision();
        replay::replay(&*log, &control, &mut state, None).await?;
        let now = Instant::now();
        let mut leases = Leases::default();
        for (service, instance, i) in state.instances() {
            if i.health == Health::Passing {
                let ttl = Duration::from_millis(i.registration.ttl_ms);
                leases.renew(service, instance, ttl, now);
            }
        }
        info!(
            revision = ?state.revision(),
            checkpoint = ?from_checkpoint,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "blueprint ready"
        );
        let (writes, rx) = mpsc::channel(16 * 1024);
        let blueprint = Self {
            shared: Arc::new(Shared {
                log,
                control,
                applied: watch::Sender::new(state.revision()),
                state: RwLock::new(state),
                config,
                writes,
                leases: Mutex::new(leases),
                checkpoints,
                loaded: Mutex::new(None),
                shutdown: watch::Sender::new(false),
            }),
        };
        tokio::spawn(run_writer(Arc::downgrade(&blueprint.shared), rx));
        tokio::spawn(keep_leases(Arc::downgrade(&blueprint.shared)));
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
    pub fn revision(&self) -> Option<u64> {
        self.shared.revision()
    }

    /// A receiver of the last applied revision.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.shared.applied.subscribe()
    }

    /// Closes every watch with 1001 (going away); call it when the node stops.
    pub fn close_watches(&self) {
        self.shared.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
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

    /// The state as of `revision`: from the nearest checkpoint at or below it, plus replay.
    /// A revision at or past the current one is the current state.
    ///
    /// # Errors
    /// If the log or a checkpoint cannot be read.
    pub async fn state_at(&self, revision: Option<u64>) -> Result<Projection, OpenError> {
        self.shared.state_at(revision).await
    }

    /// The revision in force at `time`: the last control event appended at or before it
    /// (`None`: before the first).
    ///
    /// # Errors
    /// If the log cannot be read.
    pub async fn revision_at_time(&self, time: Timestamp) -> Result<Option<u64>, draft_log::Error> {
        self.shared.revision_at_time(time).await
    }

    async fn write(&self, op: Op, actor: &str) -> Result<Outcome, WriteError> {
        let (reply, rx) = oneshot::channel();
        let request = WriteRequest {
            op,
            actor: actor.to_owned(),
            reply,
        };
        self.shared
            .writes
            .send(request)
            .await
            .map_err(|_| WriteError::Log(draft_log::Error::Closed))?;
        rx.await
            .map_err(|_| WriteError::Log(draft_log::Error::Closed))?
    }

    /// Registers (or re-registers) an instance; the same registration of a passing instance
    /// appends nothing but renews the lease.
    pub async fn register(
        &self,
        service: &str,
        instance: &str,
        registration: Registration,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        let ttl = Duration::from_millis(registration.ttl_ms);
        let op = Op::Register {
            service: service.to_owned(),
            instance: instance.to_owned(),
            registration,
        };
        let outcome = self.write(op, actor).await?;
        self.shared
            .leases()
            .renew(service, instance, ttl, Instant::now());
        Ok(outcome)
    }

    /// Renews a passing instance's lease. `false` if it is unknown or critical (the client
    /// should register again).
    #[must_use]
    pub fn heartbeat(&self, service: &str, instance: &str) -> bool {
        let ttl = self.read(|s| {
            s.instance(service, instance)
                .filter(|i| i.health == Health::Passing)
                .map(|i| Duration::from_millis(i.registration.ttl_ms))
        });
        let Some(ttl) = ttl else { return false };
        self.shared
            .leases()
            .renew(service, instance, ttl, Instant::now());
        true
    }

    /// Deregisters an instance.
    pub async fn deregister(
        &self,
        service: &str,
        instance: &str,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        let op = Op::Deregister {
            service: service.to_owned(),
            instance: instance.to_owned(),
        };
        self.write(op, actor).await
    }

    /// Puts a key, if `condition` holds.
    pub async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: Condition,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        self.write(
            Op::Put {
                key: key.to_owned(),
                value,
                condition,
            },
            actor,
        )
        .await
    }

    /// Deletes a key, if it exists and `condition` holds.
    pub async fn delete(
        &self,
        key: &str,
        condition: Condition,
        actor: &str,
    ) -> Result<Outcome, WriteError> {
        self.write(
            Op::Delete {
                key: key.to_owned(),
                condition,
            },
            actor,
        )
        .await
    }

    /// Decides, appends and answers one group of writes.
    async fn handle_group(&self, requests: Vec<WriteRequest>, last_checkpoint: &mut Option<u64>) {
        let next = self.revision().map_or(0, |r| r + 1);
        let group = {
            let leases = self.shared.leases();
            let now = Instant::now();
            // An expiry whose lease was renewed meanwhile is dropped.
            let keep = |op: &Op| match op {
                Op::Expire { service, instance } => !leases.still_held(service, instance, now),
                _ => true,
            };
            self.read(|state| applier::decide_group(state, next, requests, keep))
        };
        let revisions = match self.append(&group.events).await {
            Ok(revisions) => revisions,
            Err(e) => {
                warn!(error = %e, "control write failed");
                for request in group.requests {
                    let _ = request.reply.send(Err(WriteError::Log(e.clone())));
                }
                return;
            }
        };
        for (request, decision) in group.requests.into_iter().zip(group.decisions) {
            if let (
                Op::Deregister { service, instance } | Op::Expire { service, instance },
                Ok(Some(_)),
            ) = (&request.op, &decision)
            {
                self.shared.leases().remove(service, instance);
            }
            let answer =
                decision.map(|d| d.map_or(Outcome::Unchanged, |i| Outcome::Appended(revisions[i])));
            let _ = request.reply.send(answer);
        }
        if let Some(revision) = self.revision()
            && revision
                >= last_checkpoint.map_or(0, |c| c + 1) + self.shared.config.checkpoint_every - 1
        {
            *last_checkpoint = Some(revision);
            self.checkpoint();
        }
    }

    /// Appends a group's events as one atomic batch and applies them; returns their revisions.
    async fn append(
        &self,
        events: &[(ControlEvent, String)],
    ) -> Result<Vec<u64>, draft_log::Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let source = format!("/draft/{}", self.shared.config.node);
        let records = events
            .iter()
            .map(|(event, actor)| {
                let id = uuid::Uuid::now_v7().to_string();
                let json = event.to_cloudevent(&id, &self.shared.config.node, actor, &now);
                let key = format!("{}\0{source}\0{id}", event.ty());
                NewRecord {
                    key: Some(Bytes::from(key)),
                    payload: Bytes::from(json.to_string()),
                }
            })
            .collect();
        let ack = self
            .shared
            .log
            .append(&self.shared.control, records)
            .await?;
        let revisions: Vec<u64> = ack.offsets().map(|o| o.0).collect();
        {
            let mut state = self
                .shared
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((event, actor), revision) in events.iter().zip(&revisions) {
                state.apply(&Applied {
                    revision: *revision,
                    time_nanos: ack.time.as_unix_nanos(),
                    actor: actor.clone(),
                    event: event.clone(),
                });
            }
        }
        self.shared.applied.send_replace(revisions.last().copied());
        Ok(revisions)
    }

    /// Writes a checkpoint of the current state in the background.
    fn checkpoint(&self) {
        let state = self.read(Clone::clone);
        let checkpoints = self.shared.checkpoints.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = checkpoints.save(&state) {
                warn!(error = %e, "checkpoint failed; restarts replay more of the log");
            }
        });
    }
}

/// The writer task: groups, validates, appends, applies, answers. It holds Blueprint weakly
/// while idle, so dropping the last handle closes the queue and ends it.
async fn run_writer(shared: std::sync::Weak<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut last_checkpoint = shared
        .upgrade()
        .and_then(|i| i.checkpoints.revisions().ok())
        .and_then(|r| r.last().copied());
    while let Some(requests) = applier::next_group(&mut rx).await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        Blueprint { shared }
            .handle_group(requests, &mut last_checkpoint)
            .await;
    }
}

/// Appends `io.draft.instance.expired` for every lease that lapsed, until Blueprint is gone.
async fn keep_leases(shared: std::sync::Weak<Shared>) {
    loop {
        let Some(every) = shared.upgrade().map(|i| i.config.lease_check) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let blueprint = Blueprint { shared };
        let now = Instant::now();
        // Taken out of the table here, so each lapse is sent once; a heartbeat that arrives
        // before the expiry is written puts the lease back, and the writer then drops it.
        let lapsed = blueprint.shared.leases().take_lapsed(now);
        for (service, instance) in lapsed {
            let op = Op::Expire {
                service: service.clone(),
                instance: instance.clone(),
            };
            let blueprint = blueprint.clone();
            // The writer drops it if the lease was renewed or the instance left meanwhile.
            tokio::spawn(async move {
                if let Err(e) = blueprint.write(op, "draft").await {
                    warn!(service, instance, error = %e, "could not record an expiry");
                }
            });
        }
    }
}
