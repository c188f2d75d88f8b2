//! The way down: the services in reverse order, then the node, each sent SIGTERM and given
//! its grace period, then SIGKILL; a second signal sends SIGKILL to everything at once.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::{Outcome, Supervisor};
use crate::run::group::Group;

/// How often a stopping process group is checked.
const POLL: Duration = Duration::from_millis(20);
/// How long killed processes may take to be gone (the kernel frees their memory first).
const KILL_WAIT: Duration = Duration::from_secs(5);

impl Supervisor {
    /// Stops the services in reverse order, then the node; `outcome` unless a second signal
    /// cut the stop short.
    pub(super) async fn shutdown(&mut self, outcome: Outcome) -> Outcome {
        for index in (0..self.slots.len()).rev() {
            let Some(group) = self.slots[index].group.take() else {
                continue;
            };
            let slot = &self.slots[index];
            let grace = slot.service.grace.unwrap_or(self.grace);
            let what = format!("service {}", slot.service.name);
            if self.stop(group, grace, &what).await.is_err() {
                self.kill_all(Some(group)).await;
                return Outcome::Killed;
            }
        }
        if self.stop_node().await.is_err() {
            return Outcome::Killed;
        }
        outcome
    }

    /// Stops the node `dctl run` started, if it did.
    pub(super) async fn stop_node(&mut self) -> Result<(), SecondSignal> {
        let Some(node) = self.node.take() else {
            return Ok(());
        };
        if self.stop(node, self.grace, "the node").await.is_err() {
            self.kill_all(Some(node)).await;
            return Err(SecondSignal);
        }
        Ok(())
    }

    /// SIGTERM to `group`, then SIGKILL if it still runs after `grace`. A signal meanwhile
    /// stops the wait: the caller kills everything.
    async fn stop(
        &mut self,
        group: Group,
        grace: Duration,
        what: &str,
    ) -> Result<(), SecondSignal> {
        if !group.is_alive() {
            return Ok(());
        }
        group.terminate();
        let deadline = Instant::now() + grace;
        while group.is_alive() {
            if Instant::now() >= deadline {
                eprintln!(
                    "dctl: {what} did not stop within {} ms of SIGTERM: SIGKILL",
                    grace.as_millis()
                );
                group.kill();
                gone(&[group], KILL_WAIT).await;
                return Ok(());
            }
            tokio::select! {
                signal = self.signals.recv() => {
                    eprintln!("dctl: {signal} again: SIGKILL to everything");
                    return Err(SecondSignal);
                }
                () = sleep(POLL) => {}
            }
        }
        Ok(())
    }

    /// SIGKILL to every group still running (`also` besides the ones held), at once.
    async fn kill_all(&mut self, also: Option<Group>) {
        let groups: Vec<Group> = self
            .slots
            .iter_mut()
            .filter_map(|s| s.group.take())
            .chain(self.node.take())
            .chain(also)
            .collect();
        for group in &groups {
            group.kill();
        }
        gone(&groups, KILL_WAIT).await;
    }
}

/// A signal arrived while processes were being stopped one by one.
#[derive(Debug)]
pub(super) struct SecondSignal;

/// Waits until none of `groups` runs, for at most `within`.
async fn gone(groups: &[Group], within: Duration) {
    let deadline = Instant::now() + within;
    while groups.iter().any(|g| g.is_alive()) && Instant::now() < deadline {
        sleep(POLL).await;
    }
}
