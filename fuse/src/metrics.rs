//! Per-route counters, rendered with the node's Prometheus text. Route labels are escaped
//! ([`LabelValue`]): a prefix may hold `"`, `\` or `{`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use draft_http::LabelValue;

#[derive(Debug, Default, Clone)]
struct RouteCounters {
    requests: u64,
    by_class: [u64; 5],
    upstream_seconds: f64,
    upstream_count: u64,
}

/// Why the ingress answered a request itself, without routing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// 508: it had been through this node already.
    Loop,
    /// 400: its path was ambiguous.
    Path,
}

/// Fuse's metrics, keyed by route (`host` + `prefix`).
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteCounters>>,
    loops: AtomicU64,
    paths: AtomicU64,
}

impl Metrics {
    /// Records a request the ingress refused before routing it.
    pub(crate) fn refused(&self, why: Refused) {
        let counter = match why {
            Refused::Loop => &self.loops,
            Refused::Path => &self.paths,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one proxied request: its route, status and upstream time (if one answered).
    pub(crate) fn record(&self, route: &str, status: u16, upstream: Option<Duration>) {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = routes.entry(route.to_owned()).or_default();
        c.requests += 1;
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        c.by_class[class] += 1;
        if let Some(d) = upstream {
            c.upstream_seconds += d.as_secs_f64();
            c.upstream_count += 1;
        }
    }

    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        out.push_str(
            "# HELP draft_fuse_requests_total Requests proxied, by route and status class.\n",
        );
        out.push_str("# TYPE draft_fuse_requests_total counter\n");
        for (route, c) in &routes {
            for (i, n) in c.by_class.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "draft_fuse_requests_total{{route=\"{}\",class=\"{}xx\"}} {n}",
                    LabelValue(route),
                    i + 1
                );
            }
        }
        out.push_str(
            "# HELP draft_fuse_upstream_seconds Time upstreams took to answer, by route.\n",
        );
        out.push_str("# TYPE draft_fuse_upstream_seconds summary\n");
        for (route, c) in &routes {
            let route = LabelValue(route);
            let _ = writeln!(
                out,
                "draft_fuse_upstream_seconds_sum{{route=\"{route}\"}} {}",
                c.upstream_seconds
            );
            let _ = writeln!(
                out,
                "draft_fuse_upstream_seconds_count{{route=\"{route}\"}} {}",
                c.upstream_count
            );
        }
        out.push_str(
            "# HELP draft_fuse_refused_total Requests the ingress answered without routing them.\n\
             # TYPE draft_fuse_refused_total counter\n",
        );
        let _ = writeln!(
            out,
            "draft_fuse_refused_total{{reason=\"loop_detected\"}} {}\n\
             draft_fuse_refused_total{{reason=\"invalid_path\"}} {}",
            self.loops.load(Ordering::Relaxed),
            self.paths.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_escaped_so_no_line_can_be_forged() {
        let metrics = Metrics::default();
        let evil = "/x\"} 1\ndraft_fuse_requests_total{route=\"/forged\\";
        metrics.record(evil, 200, Some(Duration::from_millis(1)));
        metrics.refused(Refused::Loop);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains(r#"draft_fuse_requests_total{route="/x\"} 1\ndraft_fuse_requests_total{route=\"/forged\\",class="2xx"} 1"#),
            "{out}"
        );
        assert!(
            !out.lines()
                .any(|l| l.starts_with("draft_fuse_requests_total{route=\"/forged")),
            "{out}"
        );
        assert!(
            out.contains("draft_fuse_refused_total{reason=\"loop_detected\"} 1"),
            "{out}"
        );
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<f64>().is_ok(), "a sample per line: {line:?}");
        }
    }
}
