//! Counters exposed in the node's Prometheus text (`GET /metrics`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Catalyst's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    produced: AtomicU64,
    consumers: AtomicU64,
    consumers_total: AtomicU64,
    producers: AtomicU64,
}

impl Metrics {
    pub(crate) fn events_produced(&self, n: u64) {
        self.produced.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn consumer_connected(&self) {
        self.consumers.fetch_add(1, Ordering::Relaxed);
        self.consumers_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn consumer_disconnected(&self) {
        self.consumers.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn producer_connected(&self) {
        self.producers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn producer_disconnected(&self) {
        self.producers.fetch_sub(1, Ordering::Relaxed);
    }

    /// WebSocket consumers connected now.
    #[must_use]
    pub fn consumers(&self) -> u64 {
        self.consumers.load(Ordering::Relaxed)
    }

    /// Appends the counters in Prometheus text format to `out`.
    pub fn render(&self, out: &mut String) {
        let metrics = [
            (
                "draft_events_produced_total",
                "counter",
                "Events stored by produce requests.",
                &self.produced,
            ),
            (
                "draft_consumers",
                "gauge",
                "WebSocket consumers connected now.",
                &self.consumers,
            ),
            (
                "draft_consumers_total",
                "counter",
                "WebSocket consumers ever connected.",
                &self.consumers_total,
            ),
            (
                "draft_producers",
                "gauge",
                "WebSocket producers connected now.",
                &self.producers,
            ),
        ];
        for (name, kind, help, value) in metrics {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }
}
