//! Checkpoints: the projection saved with its revision, so a restart replays only the log's
//! tail and a read `?at=` an old revision replays from the nearest checkpoint before it.
//!
//! One JSON file per checkpoint, `rev-<revision>.json`, written to a temporary file, fsync'ed
//! and renamed, so a crash leaves either the whole checkpoint or none.
//!
//! A checkpoint is only ever trusted up to the log: one of a revision the log does not hold
//! (the log lost its last appends to a power cut in `buffered` mode, say, while the
//! checkpoint had been fsync'ed) is removed at open, and the state is rebuilt from the log.
//! Trusting it would make the projection skip the new appends that reuse those revisions.
//! Only the newest few are kept (see [`BlueprintConfig::checkpoint_keep`]).
//!
//! [`BlueprintConfig::checkpoint_keep`]: crate::BlueprintConfig::checkpoint_keep

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::projection::Projection;

/// The checkpoints of one node.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The revisions that have a checkpoint, ascending.
    pub(crate) fn revisions(&self) -> std::io::Result<Vec<u64>> {
        let mut revs: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("rev-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        revs.sort_unstable();
        Ok(revs)
    }

    fn path(&self, revision: u64) -> PathBuf {
        self.dir.join(format!("rev-{revision:020}.json"))
    }

    /// Saves `projection` (which must have a revision).
    pub(crate) fn save(&self, projection: &Projection) -> std::io::Result<()> {
        let Some(revision) = projection.revision() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(projection).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!(".rev-{revision}.tmp"));
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, self.path(revision))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// Removes every checkpoint of a revision at or past `next`, the revision the log's next
    /// append will get (0 for an empty log): the log does not hold what they describe.
    /// Returns the revisions removed.
    pub(crate) fn discard_from(&self, next: u64) -> std::io::Result<Vec<u64>> {
        let ahead: Vec<u64> = self
            .revisions()?
            .into_iter()
            .filter(|r| *r >= next)
            .collect();
        for rev in &ahead {
            std::fs::remove_file(self.path(*rev))?;
        }
        if !ahead.is_empty() {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(ahead)
    }

    /// Removes all but the newest `keep` checkpoints (at least one is kept). Returns how many
    /// went.
    pub(crate) fn prune(&self, keep: usize) -> std::io::Result<usize> {
        let revs = self.revisions()?;
        let excess = revs.len().saturating_sub(keep.max(1));
        for rev in &revs[..excess] {
            match std::fs::remove_file(self.path(*rev)) {
                // A prune running beside this one removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(excess)
    }

    /// The newest checkpoint at or below `revision` (any, if `None`). A checkpoint that does
    /// not parse is skipped (and reported), never trusted.
    pub(crate) fn load_at_or_below(
        &self,
        revision: Option<u64>,
    ) -> std::io::Result<Option<Projection>> {
        for rev in self.revisions()?.into_iter().rev() {
            if revision.is_some_and(|r| rev > r) {
                continue;
            }
            match read(&self.path(rev)) {
                Ok(p) if p.revision() == Some(rev) => return Ok(Some(p)),
                Ok(_) => {
                    tracing::warn!(revision = rev, "checkpoint holds another revision; skipped");
                }
                Err(e) => {
                    tracing::warn!(revision = rev, error = %e, "unreadable checkpoint; skipped");
                }
            }
        }
        Ok(None)
    }
}

fn read(path: &Path) -> std::io::Result<Projection> {
    let bytes = std::fs::read(path)?;
    let mut projection: Projection =
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    projection.fill_missing_claims();
    Ok(projection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Applied, ControlEvent};

    #[test]
    fn saves_and_finds_the_nearest_checkpoint_below() {
        let dir = tempfile::tempdir().expect("dir");
        let cps = Checkpoints::new(dir.path()).expect("dir");
        let mut p = Projection::default();
        for rev in 0..30 {
            p.apply(&Applied {
                revision: rev,
                time_nanos: 0,
                actor: "a".into(),
                event: ControlEvent::KvPut {
                    key: "k".into(),
                    value: vec![rev as u8],
                },
            });
            if rev % 10 == 9 {
                cps.save(&p).expect("save");
            }
        }
        assert_eq!(cps.revisions().expect("list"), vec![9, 19, 29]);
        assert_eq!(
            cps.load_at_or_below(Some(25))
                .expect("load")
                .and_then(|p| p.revision()),
            Some(19)
        );
        assert_eq!(
            cps.load_at_or_below(None)
                .expect("load")
                .and_then(|p| p.revision()),
            Some(29)
        );
        assert!(cps.load_at_or_below(Some(5)).expect("load").is_none());
        std::fs::write(cps.path(29), b"garbage").expect("corrupt");
        assert_eq!(
            cps.load_at_or_below(None)
                .expect("load")
                .and_then(|p| p.revision()),
            Some(19),
            "garbage skipped"
        );
    }

    fn at(rev: u64) -> Projection {
        let mut p = Projection::default();
        p.apply(&Applied {
            revision: rev,
            time_nanos: 0,
            actor: "a".into(),
            event: ControlEvent::KvPut {
                key: "k".into(),
                value: vec![1],
            },
        });
        p
    }

    #[test]
    fn checkpoints_past_the_log_are_discarded_and_old_ones_pruned() {
        let dir = tempfile::tempdir().expect("dir");
        let cps = Checkpoints::new(dir.path()).expect("dir");
        for rev in [4, 9, 14, 19] {
            cps.save(&at(rev)).expect("save");
        }
        assert_eq!(cps.discard_from(15).expect("discard"), vec![19]);
        assert_eq!(cps.revisions().expect("list"), vec![4, 9, 14]);
        assert_eq!(cps.discard_from(15).expect("again"), Vec::<u64>::new());
        assert_eq!(cps.discard_from(14).expect("at next"), vec![14]);
        assert_eq!(cps.prune(1).expect("prune"), 1);
        assert_eq!(cps.revisions().expect("list"), vec![9]);
        assert_eq!(cps.prune(0).expect("keeps one"), 0);
        assert_eq!(cps.discard_from(0).expect("empty log"), vec![9]);
        assert!(cps.revisions().expect("list").is_empty());
    }
}
