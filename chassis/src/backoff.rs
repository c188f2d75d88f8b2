//! Exponential back-off with jitter, for reconnecting and for retrying a hook's handler.

use std::time::Duration;

/// Delays that double from `first` up to `max`, each with up to a quarter of jitter
/// subtracted, so replicas that lost the node together do not come back in lock step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, never above `max`.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The next delay (and doubles the one after).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        jittered(delay, jitter_fraction())
    }

    /// Back to the first delay (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The delay `n` (0-based) of a sequence doubling from `first` up to `max`, without jitter.
pub(crate) fn nth_delay(first: Duration, max: Duration, n: u32) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(n.min(31)))
        .min(max)
}

/// `delay` less `fraction` (0..1) of a quarter of it.
pub(crate) fn jittered(delay: Duration, fraction: f64) -> Duration {
    delay.mul_f64(1.0 - 0.25 * fraction.clamp(0.0, 1.0))
}

/// A number in 0..1 that differs between calls and processes (random enough for jitter).
pub(crate) fn jitter_fraction() -> f64 {
    // 32 random bits are plenty for jitter, and convert to f64 exactly.
    let bits = (uuid::Uuid::new_v4().as_u128() as u64) >> 32;
    f64::from(bits as u32) / f64::from(u32::MAX).next_up()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        for (d, nominal) in delays.iter().zip([100, 200, 400, 500, 500]) {
            let nominal = Duration::from_millis(nominal);
            assert!(
                *d <= nominal && *d >= nominal.mul_f64(0.75),
                "{d:?} vs {nominal:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn nth_delay_saturates() {
        let (f, m) = (Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(nth_delay(f, m, 0), f);
        assert_eq!(nth_delay(f, m, 3), Duration::from_millis(80));
        assert_eq!(nth_delay(f, m, 40), m);
        assert_eq!(
            jittered(Duration::from_millis(100), 1.0),
            Duration::from_millis(75)
        );
        let x = jitter_fraction();
        assert!((0.0..1.0).contains(&x));
    }
}
