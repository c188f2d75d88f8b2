//! [`Restart`] and [`Backoff`]: what `dctl run` does when a service's process exits. Pure:
//! the supervisor tells it how the process ended and how long it ran, and does what it says.

use std::time::Duration;

use serde::Deserialize;

/// The first restart waits this long; each failure in a row doubles the wait.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// A process that ran this long before it failed counts as having started well: the failures
/// before it are forgotten and the next restart waits [`FIRST_DELAY`] again.
pub const RESET_AFTER: Duration = Duration::from_secs(10);
/// The most restarts in a row (each run shorter than [`RESET_AFTER`]); the next failure ends
/// the run as a failure with `restart = "never"` would. With the delays above they span about
/// 26 s.
pub const MAX_RESTARTS: u32 = 10;

/// A service's `restart` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// A failure stops every service and ends `dctl run` with exit code 1 (the default).
    #[default]
    Never,
    /// A failure restarts the service after a back-off, up to [`MAX_RESTARTS`] in a row.
    OnFailure,
}

/// What to do after a service's process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It exited 0: it is done; the others keep running.
    Done,
    /// Restart it after `delay`; this is restart number `attempt` in a row (from 1).
    Restart {
        /// How long to wait first.
        delay: Duration,
        /// Which restart in a row this is.
        attempt: u32,
    },
    /// It failed and is not restarted (`restart = "never"`): stop everything.
    Fail,
    /// It failed after [`MAX_RESTARTS`] restarts in a row: stop everything.
    GiveUp,
}

/// One service's failures in a row: a small state machine, fed each exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Restarts in a row so far.
    restarts: u32,
}

impl Backoff {
    /// Decides what follows an exit: `success` is exit status 0, `ran` how long the process
    /// ran. Records the restart it decides on.
    #[must_use]
    pub fn after_exit(&mut self, policy: Restart, success: bool, ran: Duration) -> Decision {
        if success {
            return Decision::Done;
        }
        if policy == Restart::Never {
            return Decision::Fail;
        }
        if ran >= RESET_AFTER {
            self.restarts = 0;
        }
        if self.restarts >= MAX_RESTARTS {
            return Decision::GiveUp;
        }
        self.restarts += 1;
        Decision::Restart {
            delay: delay(self.restarts),
            attempt: self.restarts,
        }
    }
}

/// The wait before restart number `attempt` in a row (from 1): [`FIRST_DELAY`] doubled per
/// earlier attempt, at most [`MAX_DELAY`].
fn delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(50);

    fn delays(backoff: &mut Backoff, n: usize) -> Vec<u64> {
        (0..n)
            .map(
                |_| match backoff.after_exit(Restart::OnFailure, false, QUICK) {
                    Decision::Restart { delay, .. } => delay.as_millis() as u64,
                    other => panic!("expected a restart, got {other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn an_exit_0_is_done_whatever_the_policy() {
        for policy in [Restart::Never, Restart::OnFailure] {
            assert_eq!(
                Backoff::default().after_exit(policy, true, QUICK),
                Decision::Done
            );
        }
    }

    #[test]
    fn a_failure_with_restart_never_stops_everything() {
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.after_exit(Restart::Never, false, RESET_AFTER * 2),
            Decision::Fail
        );
    }

    #[test]
    fn restarts_wait_100_ms_doubling_to_5_s() {
        let mut backoff = Backoff::default();
        assert_eq!(
            delays(&mut backoff, 10),
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    #[test]
    fn attempts_are_numbered_from_1_and_bounded() {
        let mut backoff = Backoff::default();
        for expected in 1..=MAX_RESTARTS {
            let Decision::Restart { attempt, .. } =
                backoff.after_exit(Restart::OnFailure, false, QUICK)
            else {
                panic!("restart {expected} expected");
            };
            assert_eq!(attempt, expected);
        }
        assert_eq!(
            backoff.after_exit(Restart::OnFailure, false, QUICK),
            Decision::GiveUp
        );
        assert_eq!(
            backoff.after_exit(Restart::OnFailure, false, QUICK),
            Decision::GiveUp,
            "it stays given up"
        );
    }

    #[test]
    fn a_long_run_resets_the_back_off() {
        let mut backoff = Backoff::default();
        let _ = delays(&mut backoff, MAX_RESTARTS as usize);
        assert_eq!(
            backoff.after_exit(Restart::OnFailure, false, RESET_AFTER),
            Decision::Restart {
                delay: FIRST_DELAY,
                attempt: 1
            }
        );
        assert_eq!(
            delays(&mut backoff, 1),
            [200],
            "and it doubles again from there"
        );
    }

    #[test]
    fn an_exit_0_does_not_reset_the_count() {
        // A service that exits 0 is done and never restarted, so the count no longer matters;
        // the decision must not change state it does not own.
        let mut backoff = Backoff::default();
        let _ = delays(&mut backoff, 3);
        let before = backoff;
        assert_eq!(
            backoff.after_exit(Restart::OnFailure, true, QUICK),
            Decision::Done
        );
        assert_eq!(backoff, before);
    }

    #[test]
    fn restart_reads_as_in_the_manifest() {
        #[derive(Deserialize)]
        struct S {
            restart: Restart,
        }
        let parse = |s: &str| toml::from_str::<S>(s).map(|s| s.restart);
        assert_eq!(parse("restart = \"never\"").ok(), Some(Restart::Never));
        assert_eq!(
            parse("restart = \"on-failure\"").ok(),
            Some(Restart::OnFailure)
        );
        assert!(parse("restart = \"always\"").is_err());
    }
}
