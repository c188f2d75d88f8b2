//! Replay: stored control events decoded and applied onto a [`Projection`], at open (after
//! the newest checkpoint) and for reads of a past revision or time (`?at=`), which start from
//! the nearest checkpoint at or below it (the last one loaded is cached).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use draft_log::{LogBackend, Offset, PartitionName, Record, Timestamp};

use crate::checkpoint::Checkpoints;
use crate::error::OpenError;
use crate::event::{Applied, ControlEvent, is_known_foreign_type};
use crate::projection::Projection;
use crate::shared::Shared;

/// How many control events are read from the log at a time when replaying.
const REPLAY_CHUNK: usize = 4096;

/// Decodes a stored control event. One of another part of the node is passed over (it only
/// moves the revision); a type this node has never heard of is logged, once per type.
pub(crate) fn decode(record: &Record) -> Result<Applied, OpenError> {
    let (event, actor) =
        ControlEvent::from_cloudevent(&record.payload).map_err(|reason| OpenError::BadEvent {
            revision: record.offset.0,
            reason,
        })?;
    if let ControlEvent::Other { ty, .. } = &event
        && !is_known_foreign_type(ty)
    {
        note_unknown_type(ty, record.offset.0);
    }
    Ok(Applied {
        revision: record.offset.0,
        time_nanos: record.time.as_unix_nanos(),
        actor,
        event,
    })
}

/// Logs a control event type this node does not know, the first time it meets it.
fn note_unknown_type(ty: &str, revision: u64) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = SEEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(ty.to_owned());
    if first {
        tracing::warn!(
            ty,
            revision,
            "control events of an unknown type are passed over (written by a newer node?)"
        );
    }
}

/// Replays control events `(from..=until)` onto `state` (all of them if `until` is `None`).
pub(crate) async fn replay(
    log: &dyn LogBackend,
    control: &PartitionName,
    state: &mut Projection,
    until: Option<u64>,
) -> Result<(), OpenError> {
    let mut next = Offset(state.revision().map_or(0, |r| r + 1));
    loop {
        if until.is_some_and(|u| next.0 > u) {
            return Ok(());
        }
        let limit = until.map_or(REPLAY_CHUNK, |u| {
            REPLAY_CHUNK.min((u + 1 - next.0) as usize)
        });
        let records = log.read(control, next, limit).await?;
        let Some(last) = records.last().map(|r| r.offset) else {
            return Ok(());
        };
        for record in &records {
            state.apply(&decode(record)?);
        }
        next = last.next();
    }
}

/// The newest checkpoint in `dir` that the log holds, or an empty state: where replay starts
/// at open. Checkpoints of revisions at or past `log_next` (the control log's next offset)
/// are removed first, with a warning: the log lost what they describe.
pub(crate) async fn newest_checkpoint(
    checkpoints: &Checkpoints,
    dir: &Path,
    log_next: u64,
) -> Result<Projection, OpenError> {
    let cp = checkpoints.clone();
    let discarded = off_thread(dir, move || cp.discard_from(log_next)).await?;
    if let Some(newest) = discarded.last() {
        tracing::warn!(
            checkpoints = discarded.len(),
            newest,
            log_next,
            "checkpoints ahead of the control log removed (the log lost its last appends); \
             the state is rebuilt from the log"
        );
    }
    let cp = checkpoints.clone();
    Ok(off_thread(dir, move || cp.load_at_or_below(None))
        .await?
        .unwrap_or_default())
}

/// Runs a blocking read of the checkpoint folder `dir` off the async threads; its failure
/// names the folder.
async fn off_thread<T: Send + 'static>(
    dir: &Path,
    read: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, OpenError> {
    let io = |source: std::io::Error| OpenError::Checkpoints {
        path: dir.to_path_buf(),
        source,
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)
}

impl Shared {
    /// The state as of `revision`: from the nearest checkpoint at or below it, plus replay.
    /// A revision at or past the current one is the current state.
    pub(crate) async fn state_at(&self, revision: Option<u64>) -> Result<Projection, OpenError> {
        let Some(revision) = revision else {
            return Ok(Projection::default());
        };
        if self.revision().is_none_or(|r| revision >= r) {
            return Ok(self.read(Clone::clone));
        }
        let mut state = self.checkpoint_at_or_below(revision).await?;
        replay(&*self.log, &self.control, &mut state, Some(revision)).await?;
        Ok(state)
    }

    /// The newest checkpoint at or below `revision` (cached), or an empty state.
    async fn checkpoint_at_or_below(&self, revision: u64) -> Result<Projection, OpenError> {
        let dir = &self.config.checkpoint_dir;
        let cp = self.checkpoints.clone();
        let nearest = off_thread(dir, move || cp.revisions())
            .await?
            .into_iter()
            .rev()
            .find(|r| *r <= revision);
        let Some(nearest) = nearest else {
            return Ok(Projection::default());
        };
        let cached = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(p) = cached.filter(|p| p.revision() == Some(nearest)) {
            return Ok((*p).clone());
        }
        let cp = self.checkpoints.clone();
        let loaded = off_thread(dir, move || cp.load_at_or_below(Some(nearest)))
            .await?
            .unwrap_or_default();
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(loaded.clone()));
        Ok(loaded)
    }

    /// The revision in force at `time`: the last control event appended at or before it
    /// (`None`: before the first).
    pub(crate) async fn revision_at_time(
        &self,
        time: Timestamp,
    ) -> Result<Option<u64>, draft_log::Error> {
        let after = Timestamp::from_unix_nanos(time.as_unix_nanos().saturating_add(1));
        Ok(match self.log.offset_at_time(&self.control, after).await? {
            Some(Offset(0)) => None,
            Some(Offset(o)) => Some(o - 1),
            None => self.revision(),
        })
    }
}
