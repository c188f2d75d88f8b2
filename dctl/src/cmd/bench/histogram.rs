//! A fixed-size latency histogram: log-linear buckets (32 per power of two, so within about
//! 1.5 % of the true value), exact below 64 ns, exact maximum. Cheap to record and to merge.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: usize = 32;
/// Values below this are their own bucket.
const LINEAR: u64 = 64;
/// Enough buckets for every `u64`.
const BUCKETS: usize = LINEAR as usize + 58 * SUB;

/// Latencies in nanoseconds.
#[derive(Debug, Clone)]
pub(super) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = v.ilog2(); // >= 6
    let shift = exp - 5; // keeps the top 6 bits: a mantissa in 32..64
    let mantissa = (v >> shift) as usize;
    LINEAR as usize + (shift as usize - 1) * SUB + (mantissa - SUB)
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let shift = (i - LINEAR as usize) / SUB + 1;
    let mantissa = ((i - LINEAR as usize) % SUB + SUB) as u64;
    (mantissa << shift) + (1 << (shift - 1))
}

impl Histogram {
    pub(super) fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(super) fn record_ns(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub(super) fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    #[cfg(test)]
    pub(super) fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in nanoseconds; 0 when empty.
    pub(super) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_sign_loss,
            reason = "a rank among at most 2^53 samples"
        )]
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }

    pub(super) fn max(&self) -> u64 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_close() {
        let mut last = 0;
        for v in (0..64).chain((6..64).flat_map(|e| [1u64 << e, (1u64 << e) + (1 << (e - 1))])) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last);
            last = i;
            let mid = value(i);
            assert!(mid.abs_diff(v) <= v / 32 + 1, "{v} -> {mid}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record_ns(v * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!(p50.abs_diff(500_000) < 500_000 / 30, "{p50}");
        assert_eq!(h.max(), 1_000_000);
        assert!(h.quantile(1.0) <= 1_000_000);
        assert_eq!(h.count(), 1000);
    }
}
