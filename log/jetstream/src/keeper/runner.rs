//! [`Keeper`]: a task that campaigns and renews, and tells the node whether it is keeper.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::lease::{Plan, plan};
use super::{KeeperLock, Term};

/// A running election: campaigns every TTL/3 while another node is keeper, renews every
/// TTL/3 while this node is, and publishes this node's [`Term`] (or `None`) on a `watch`
/// channel.
///
/// The value turns `None` as soon as a renewal fails, is refused or takes a third of the
/// TTL or more, so at the latest two thirds of a TTL after the last successful renewal was
/// sent, before the lock can expire. Check it just before each keeper write, and make the
/// write compare-and-set with the term in it (see the [module docs](crate::keeper)).
///
/// Dropping the `Keeper` stops the task, which resigns; [`Keeper::shutdown`] also waits
/// for that.
///
/// # Examples
/// ```no_run
/// # async fn run(backend: draft_log_jetstream::JetStream) -> draft_log_jetstream::Result<()> {
/// use std::time::Duration;
/// use draft_log_jetstream::{Keeper, KeeperLock};
///
/// let lock = KeeperLock::new(&backend, "node-1", Duration::from_secs(10)).await?;
/// let keeper = Keeper::spawn(lock);
/// let mut role = keeper.watch();
/// while role.changed().await.is_ok() {
///     if let Some(term) = *role.borrow() {
///         println!("keeper in term {term}");
///     }
/// }
/// keeper.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Keeper {
    role: watch::Receiver<Option<Term>>,
    /// The term and until when its lease holds, as the task last left them.
    held: Held,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts campaigning with `lock` on a task of the current runtime.
    #[must_use]
    pub fn spawn(lock: KeeperLock) -> Self {
        let (tx, role) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let held = Held::default();
        let task = tokio::spawn(run(lock, tx, held.clone(), stopped));
        Self {
            role,
            held,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// This node's term while it is keeper, `None` while it is not.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<Option<Term>> {
        self.role.clone()
    }

    /// This node's term if its lease holds at this instant. Checked against the clock, not
    /// only the task's last word: after a pause that outlasted the lease (a stopped process,
    /// a starved runtime) it is `None` at once, before the task has run and stepped down.
    /// Ask it just before each keeper write.
    #[must_use]
    pub fn term(&self) -> Option<Term> {
        self.held.now(Instant::now())
    }

    /// Stops campaigning, resigns if this node is keeper, and waits for the task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task
                .await
                .inspect_err(|e| warn!(error = %e, "keeper task failed"));
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // The task sees the sender gone, resigns and ends on its own.
        self.stop.take();
    }
}

/// The election loop until `stopped` resolves (a stop or the `Keeper` dropped).
async fn run(
    mut lock: KeeperLock,
    role: watch::Sender<Option<Term>>,
    held: Held,
    mut stopped: oneshot::Receiver<()>,
) {
    let ttl = lock.ttl();
    let mut last_campaign = None;
    loop {
        let step = plan(lock.lease(), last_campaign, Instant::now(), ttl);
        if step == Plan::StepDown {
            warn!(node = %lock.node(), "keeper lease lapsed before its renewal ran: stepped down");
            lock.step_down();
        }
        held.set(lock.term().zip(lock.valid_until()));
        publish(&role, lock.term());
        let at = match step {
            Plan::Renew(at) | Plan::Campaign(at) => at,
            Plan::StepDown => Instant::now(),
        };
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep_until(at) => {}
        }
        if lock.lease().is_some() {
            // A failure is logged by the lock, which has stepped down: the next turn of the
            // loop publishes `None` before anything else.
            let _ = lock.renew().await;
        } else {
            last_campaign = Some(Instant::now());
            if let Err(e) = lock.campaign().await {
                warn!(node = %lock.node(), error = %e, "keeper campaign failed");
            }
        }
    }
    held.set(None);
    publish(&role, None);
    if let Err(e) = lock.resign().await {
        warn!(node = %lock.node(), error = %e, "could not resign as keeper");
    }
}

/// A term and the instant its lease lapses, shared by the task and its [`Keeper`].
#[derive(Clone, Debug, Default)]
struct Held(Arc<Mutex<Option<(Term, Instant)>>>);

impl Held {
    fn set(&self, to: Option<(Term, Instant)>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// The term, if its lease holds at `now`.
    fn now(&self, now: Instant) -> Option<Term> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .filter(|(_, until)| now < *until)
            .map(|(term, _)| term)
    }
}

/// Sets the role if it changed (receivers wake only on a change).
fn publish(role: &watch::Sender<Option<Term>>, term: Option<Term>) {
    role.send_if_modified(|now| {
        let changed = *now != term;
        *now = term;
        changed
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_term_is_held_only_until_its_lease_lapses() {
        let held = Held::default();
        let start = Instant::now();
        assert_eq!(held.now(start), None);
        held.set(Some((Term(4), start + Duration::from_secs(2))));
        assert_eq!(held.now(start + Duration::from_secs(1)), Some(Term(4)));
        assert_eq!(held.now(start + Duration::from_secs(2)), None, "lapsed");
        held.set(None);
        assert_eq!(held.now(start), None);
    }
}
