//! [`Shutdown`]: one token for a whole process.
//!
//! Whatever must stop when the process stops (listeners, WebSocket loops, background tasks)
//! holds a clone and awaits [`Shutdown::triggered`]. Work that must be finished or closed
//! cleanly before the process exits (a WebSocket sending its close frame) holds a
//! [`DrainGuard`]; [`Shutdown::drain`] waits for the guards, up to a deadline.

use std::time::Duration;

use tokio::sync::watch;

/// The process's shutdown token. Cheap to clone; every clone sees the same trigger.
#[derive(Clone)]
pub struct Shutdown {
    triggered: watch::Sender<bool>,
    /// How many [`DrainGuard`]s are alive.
    active: watch::Sender<usize>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("active", &self.active())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token that has not been triggered.
    #[must_use]
    pub fn new() -> Self {
        Self {
            triggered: watch::Sender::new(false),
            active: watch::Sender::new(0),
        }
    }

    /// Starts the shutdown: every [`triggered`](Self::triggered) future resolves.
    pub fn trigger(&self) {
        self.triggered.send_replace(true);
    }

    /// Whether the shutdown has started.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        *self.triggered.borrow()
    }

    /// Resolves once the shutdown has started (at once if it has). The future owns what it
    /// needs, so it can be moved into a task.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.triggered.subscribe();
        async move {
            // The guard `wait_for` returns is dropped inside, so the future stays `Send`.
            let _ = rx.wait_for(|stopping| *stopping).await.is_ok();
        }
    }

    /// A guard for work the drain waits for; drop it when the work is done.
    #[must_use]
    pub fn guard(&self) -> DrainGuard {
        self.active.send_modify(|n| *n += 1);
        DrainGuard {
            active: self.active.clone(),
        }
    }

    /// How many guards are alive.
    #[must_use]
    pub fn active(&self) -> usize {
        *self.active.borrow()
    }

    /// Waits until every guard is dropped, for at most `deadline`. `true` if they all were.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let mut rx = self.active.subscribe();
        tokio::time::timeout(deadline, async move {
            let _ = rx.wait_for(|n| *n == 0).await.is_ok();
        })
        .await
        .is_ok()
    }
}

/// Held by work that [`Shutdown::drain`] waits for.
#[derive(Debug)]
pub struct DrainGuard {
    active: watch::Sender<usize>,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        self.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn triggered_resolves_for_every_clone_even_one_made_after() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.triggered());
        assert!(!shutdown.is_triggered());
        shutdown.clone().trigger();
        early.await.expect("task");
        assert!(shutdown.is_triggered());
        // Already triggered: resolves at once.
        shutdown.triggered().await;
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_guards_up_to_the_deadline() {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard();
        let second = shutdown.guard();
        assert_eq!(shutdown.active(), 2);
        drop(second);
        assert!(
            !shutdown.drain(Duration::from_secs(1)).await,
            "one guard is alive"
        );
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(guard);
        });
        assert!(shutdown.drain(Duration::from_secs(1)).await);
        releaser.await.expect("task");
        assert_eq!(shutdown.active(), 0);
    }
}
