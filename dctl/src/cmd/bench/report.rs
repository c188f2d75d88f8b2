//! How a run reports: the summary on stdout, progress on stderr, and the figures in them.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use super::histogram::Histogram;

/// The summary: a title line, then aligned `name  value` rows.
pub(super) struct Summary {
    title: String,
    rows: Vec<(String, String)>,
}

impl Summary {
    pub(super) fn new(title: String) -> Self {
        Self {
            title,
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        self.rows.push((name.to_owned(), value.to_string()));
        self
    }

    pub(super) fn latencies(&mut self, what: &str, h: &Histogram) -> &mut Self {
        for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            self.row(&format!("{what} {label}"), ms(h.quantile(q)));
        }
        self.row(&format!("{what} max"), ms(h.max()))
    }

    pub(super) fn print(&self) {
        let width = self.rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let vwidth = self.rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let mut out = format!("{}\n", self.title);
        for (name, value) in &self.rows {
            let _ = writeln!(out, "  {name:<width$}  {value:>vwidth$}");
        }
        print!("{out}");
    }
}

/// Nanoseconds as milliseconds, three significant digits or so.
pub(super) fn ms(ns: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A count with thousands separators.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` per second over `elapsed`.
pub(super) fn per_sec(n: u64, elapsed: Duration) -> String {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_sign_loss,
        reason = "display only"
    )]
    let rate = (n as f64 / elapsed.as_secs_f64().max(1e-9)).round() as u64;
    thousands(rate)
}

/// Bytes per second over `elapsed`, in MB/s.
pub(super) fn mb_per_sec(bytes: u64, elapsed: Duration) -> String {
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let rate = bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9);
    format!("{rate:.1} MB/s")
}

/// Progress on stderr once a second, when stderr is a terminal.
pub(super) struct Progress {
    enabled: bool,
    started: Instant,
}

impl Progress {
    pub(super) fn new(started: Instant) -> Self {
        Self {
            enabled: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            started,
        }
    }

    pub(super) fn line(&self, what: &str) {
        if self.enabled {
            eprint!(
                "\r  {:>5.1} s  {what}\x1b[K",
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    pub(super) fn done(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ms(1_234_000), "1.234 ms");
        assert_eq!(ms(51_200_000), "51.20 ms");
    }
}
