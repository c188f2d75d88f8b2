//! The service's Prometheus metrics (`GET /metrics`): requests by route and status, and the
//! chassis's own counters (hooks, configuration, registration).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The matched route (`/orders/{id}`), or `unmatched`.
    pub(crate) route: String,
    /// The method.
    pub(crate) method: String,
    /// The status code.
    pub(crate) status: u16,
}

/// Labels of a hook.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HookLabels {
    /// The channel.
    pub(crate) channel: String,
    /// The group (empty for a hook without one).
    pub(crate) group: String,
}

/// Every metric of one service.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) hook_handled: Family<HookLabels, Counter>,
    pub(crate) hook_failed: Family<HookLabels, Counter>,
    pub(crate) hook_dead_lettered: Family<HookLabels, Counter>,
    pub(crate) hook_lag: Family<HookLabels, Gauge>,
    pub(crate) hook_connected: Family<HookLabels, Gauge>,
    pub(crate) config_changes: Counter,
    pub(crate) config_rejections: Counter,
    pub(crate) config_connected: Gauge,
    pub(crate) registered: Gauge,
}

impl Metrics {
    /// A registry with every metric, prefixed `draft_service_`.
    pub(crate) fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("draft_service");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let hook_handled = Family::<HookLabels, Counter>::default();
        registry.register(
            "hook_handled",
            "Events handled and acknowledged",
            hook_handled.clone(),
        );
        let hook_failed = Family::<HookLabels, Counter>::default();
        registry.register(
            "hook_failed",
            "Handler attempts that failed",
            hook_failed.clone(),
        );
        let hook_dead_lettered = Family::<HookLabels, Counter>::default();
        registry.register(
            "hook_dead_lettered",
            "Events sent to the dead-letter channel",
            hook_dead_lettered.clone(),
        );
        let hook_lag = Family::<HookLabels, Gauge>::default();
        registry.register(
            "hook_lag",
            "Events of the channel not yet acknowledged by the group",
            hook_lag.clone(),
        );
        let hook_connected = Family::<HookLabels, Gauge>::default();
        registry.register(
            "hook_connected",
            "1 while the hook's socket is connected",
            hook_connected.clone(),
        );
        let config_changes = Counter::default();
        registry.register(
            "config_changes",
            "KV configuration changes applied",
            config_changes.clone(),
        );
        let config_rejections = Counter::default();
        registry.register(
            "config_rejections",
            "KV configuration values rejected (they did not fit the config type)",
            config_rejections.clone(),
        );
        let config_connected = Gauge::default();
        registry.register(
            "config_connected",
            "1 while the KV watch is connected",
            config_connected.clone(),
        );
        let registered = Gauge::default();
        registry.register(
            "registered",
            "1 while the instance holds a lease",
            registered.clone(),
        );
        Self {
            registry: root,
            requests,
            hook_handled,
            hook_failed,
            hook_dead_lettered,
            hook_lag,
            hook_connected,
            config_changes,
            config_rejections,
            config_connected,
            registered,
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
