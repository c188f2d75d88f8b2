//! Finding a batch JetStream says it already holds (its answer to an atomic batch that
//! repeats message ids in the stream): a retry of an append that landed, answered with where
//! it was stored, or a batch only partly there, refused as
//! [`draft_log::Error::DuplicateMismatch`].

use draft_log::{Offset, PartitionName};

use crate::api::Step;
use crate::error::{Error, Result};
use crate::read::{self, CHUNK};
use crate::stream::Streams;

/// How far back from the head a batch that JetStream says it already holds is looked for.
const MAX_SCAN: u64 = 64 * CHUNK as u64;

/// Where a batch JetStream already holds (it said some of its ids are in the stream) was
/// stored: the sequence of its last message, found by reading back from the leader's head for
/// the newest message with one of its ids and checking that every id is there, in order,
/// around it. A batch only partly there (its ids stored before in another grouping) is
/// [`draft_log::Error::DuplicateMismatch`]. A replica behind the leader may not show it yet:
/// then it is looked for again, until the deadline.
pub(crate) async fn locate(
    streams: &Streams,
    partition: &PartitionName,
    stream: &str,
    ids: &[String],
) -> Result<u64> {
    let mismatch = |offset: u64| {
        Step::Fail(Error::Log(draft_log::Error::DuplicateMismatch {
            partition: partition.to_string(),
            offset: Offset(offset),
        }))
    };
    streams
        .api
        .retrying("find a retried append", stream, || async {
            let head = streams.state(partition).await?.map_or(0, |s| s.head.next.0);
            let (seq, index) = match find_back(streams, stream, head, ids).await? {
                Scan::Found { seq, index } => (seq, index),
                Scan::Unsure => {
                    return Err(Step::Transient("a replica behind the head".into()));
                }
                // Repeated, JetStream says, but not within the scan of the head (appends
                // come fast): ask again until the deadline, as for a replica behind.
                Scan::Absent => {
                    return Err(Step::Transient(format!(
                        "no id of a retried batch within {MAX_SCAN} messages of the head"
                    )));
                }
            };
            let Some(at) = seq.checked_sub(index as u64).filter(|at| *at >= 1) else {
                return Err(mismatch(seq - 1));
            };
            let run = read_run(streams, stream, at, ids.len()).await?;
            if run.len() < ids.len() && at + run.len() as u64 <= head {
                return Err(Step::Transient("a replica behind the head".into()));
            }
            let matches =
                run.len() == ids.len()
                    && run.iter().zip(ids).enumerate().all(|(i, (m, id))| {
                        m.seq == at + i as u64 && m.msg_id.as_deref() == Some(id)
                    });
            if matches {
                return Ok(at + ids.len() as u64 - 1);
            }
            // The first of the ids stored, where the run would have started.
            let first = run
                .iter()
                .filter(|m| m.seq <= seq)
                .find(|m| m.msg_id.as_ref().is_some_and(|id| ids.contains(id)))
                .map_or(seq, |m| m.seq);
            Err(mismatch(first - 1))
        })
        .await
}

/// What reading back from the head found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The newest message with one of the ids: its sequence, and which id it has.
    Found { seq: u64, index: usize },
    /// None within [`MAX_SCAN`] messages of the head, every one of them read.
    Absent,
    /// The replica that answered was behind the head: ask again.
    Unsure,
}

/// The newest message with one of `ids`, read back from `head` at most [`MAX_SCAN`] messages.
async fn find_back(
    streams: &Streams,
    stream: &str,
    head: u64,
    ids: &[String],
) -> Result<Scan, Step> {
    let mut hi = head;
    while hi > 0 && head - hi < MAX_SCAN {
        let lo = hi.saturating_sub(CHUNK as u64 - 1).max(1);
        let chunk = read_run(streams, stream, lo, (hi - lo + 1) as usize).await?;
        if chunk.last().is_none_or(|m| m.seq < hi) {
            return Ok(Scan::Unsure);
        }
        let found = chunk.iter().rev().find_map(|m| {
            let id = m.msg_id.as_deref()?;
            let index = ids.iter().position(|i| i == id)?;
            Some(Scan::Found { seq: m.seq, index })
        });
        if let Some(found) = found {
            return Ok(found);
        }
        hi = lo - 1;
    }
    Ok(Scan::Absent)
}

/// Up to `count` messages from `seq` on, in as many direct gets as their bytes need (one
/// answers at most 8 MiB); fewer only where the replica that answered has no more.
async fn read_run(
    streams: &Streams,
    stream: &str,
    seq: u64,
    count: usize,
) -> Result<Vec<read::Raw>, Step> {
    let mut run: Vec<read::Raw> = Vec::new();
    while run.len() < count {
        let from = run.last().map_or(seq, |m| m.seq + 1);
        let more = read::direct_batch(streams, stream, from, count - run.len()).await?;
        if more.is_empty() {
            break;
        }
        run.extend(more);
    }
    Ok(run)
}
