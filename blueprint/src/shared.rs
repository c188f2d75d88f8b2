//! [`Shared`]: what the [`Blueprint`](crate::Blueprint) handle and its background tasks (the
//! writer and the lease keeper) hold in common.
//!
//! The tasks hold it weakly while idle, so dropping the last handle closes the write queue
//! and ends them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use draft_log::{LogBackend, PartitionName};
use tokio::sync::{mpsc, watch};

use crate::applier::WriteRequest;
use crate::checkpoint::Checkpoints;
use crate::config::BlueprintConfig;
use crate::kv_values::ValueReader;
use crate::lease::Leases;
use crate::names::Revision;
use crate::peers::Keeping;
use crate::projection::Projection;
use crate::token_cache::TokenCache;
use crate::value_cache::ValueCache;

/// The state of one node's Blueprint, behind the handle's `Arc`.
pub(crate) struct Shared {
    pub(crate) log: Arc<dyn LogBackend>,
    pub(crate) control: PartitionName,
    pub(crate) config: BlueprintConfig,
    pub(crate) state: RwLock<Projection>,
    /// The revision last applied; watches and tests wait on it.
    pub(crate) applied: watch::Sender<Option<Revision>>,
    pub(crate) writes: mpsc::Sender<WriteRequest>,
    /// Lease deadlines of passing instances.
    pub(crate) leases: Mutex<Leases>,
    pub(crate) checkpoints: Checkpoints,
    /// The checkpoint a past read last loaded: reads `?at=` cluster, and parsing a checkpoint
    /// is most of their cost.
    pub(crate) loaded: Mutex<Option<Arc<Projection>>>,
    /// Verified tokens; cleared by the writer whenever it applies a token event.
    pub(crate) tokens: TokenCache,
    /// Values of keys read lately, by revision (never stale: a revision's value is fixed).
    pub(crate) values: ValueCache,
}

impl Shared {
    /// Reads the current state under a short read lock.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Projection) -> T) -> T {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current revision.
    pub(crate) fn revision(&self) -> Option<u64> {
        self.read(Projection::revision)
    }

    /// Reads keys' values from the log, through the cache.
    pub(crate) fn values(&self) -> ValueReader<'_> {
        ValueReader {
            log: &*self.log,
            control: &self.control,
            cache: &self.values,
        }
    }

    /// Which node keeps the leases, as this node sees it.
    pub(crate) fn keeping(&self) -> Keeping {
        match &self.config.peers {
            None => Keeping::Alone,
            Some(p) => p.0.term().map_or(Keeping::Another, Keeping::Keeper),
        }
    }

    /// The lease table, locked.
    pub(crate) fn leases(&self) -> MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
