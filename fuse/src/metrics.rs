//! Per-route counters, rendered with the node's Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
struct RouteCounters {
    requests: u64,
    by_class: [u64; 5],
    upstream_seconds: f64,
    upstream_count: u64,
}

/// Fuse's metrics, keyed by route (`host` + `prefix`).
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteCounters>>,
}

impl Metrics {
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
                    "draft_fuse_requests_total{{route=\"{route}\",class=\"{}xx\"}} {n}",
                    i + 1
                );
            }
        }
        out.push_str(
            "# HELP draft_fuse_upstream_seconds Time upstreams took to answer, by route.\n",
        );
        out.push_str("# TYPE draft_fuse_upstream_seconds summary\n");
        for (route, c) in &routes {
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
    }
}
