//! [`Refusals`]: refused connections and upgrades, counted and logged at most every
//! [`LOG_EVERY`], so a flood of them cannot flood the log.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How often one kind of refusal is logged, at most.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// One kind of refusal: how many since the last log line, and when that was.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    // A std mutex: two fields updated, never held across an await.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    since_logged: u64,
    logged: Option<Instant>,
}

impl Refusals {
    /// Counts one refusal at `now`; `Some(n)` when it is time to log the `n` refused since
    /// the last line.
    pub(crate) fn record(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.since_logged += 1;
        if state
            .logged
            .is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY)
        {
            return None;
        }
        state.logged = Some(now);
        Some(std::mem::take(&mut state.since_logged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_logged_then_one_line_per_period_with_the_count() {
        let refusals = Refusals::default();
        let start = Instant::now();
        assert_eq!(refusals.record(start), Some(1));
        assert_eq!(refusals.record(start + Duration::from_secs(1)), None);
        assert_eq!(refusals.record(start + Duration::from_secs(9)), None);
        assert_eq!(refusals.record(start + LOG_EVERY), Some(3));
        assert_eq!(refusals.record(start + LOG_EVERY), None);
    }
}
