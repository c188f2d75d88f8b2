//! Logs and trace context.
//!
//! Logs: one `tracing` subscriber for the process, filtered by `RUST_LOG` (default `info`),
//! JSON lines when `DRAFT_LOG_FORMAT=json`.
//!
//! Trace context: the W3C Trace Context `traceparent` of the work
//! in progress, kept per task. An HTTP request carries it in (or starts a new trace), a
//! consumed CloudEvent carries it in through the distributed-tracing extension (the
//! `traceparent` attribute), and every event the service produces while handling them
//! carries it out. Each hop gets a new span id under the same trace id.

use std::fmt::Write as _;

#[cfg(feature = "otel")]
mod otel;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A W3C trace context: which trace the current work belongs to, and its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never all zeros).
    pub trace_id: u128,
    /// The span id of the current work (never zero).
    pub span_id: u64,
    /// The sampled flag.
    pub sampled: bool,
}

impl TraceContext {
    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); `None` if invalid.
    #[must_use]
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        hex(version, 2).filter(|v| *v != "ff")?;
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(hex(trace, 32)?, 16)
            .ok()
            .filter(|t| *t != 0)?;
        let span_id = u64::from_str_radix(hex(span, 16)?, 16)
            .ok()
            .filter(|s| *s != 0)?;
        let flags = u8::from_str_radix(hex(flags, 2)?, 16).ok()?;
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// A new trace (sampled).
    #[must_use]
    pub fn root() -> Self {
        let ids = uuid::Uuid::new_v4().as_u128();
        Self {
            trace_id: ids.max(1),
            span_id: new_span_id(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The `traceparent` text.
    #[must_use]
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        let _ = write!(
            out,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        );
        out
    }

    /// The trace id as 32 hex digits (as logs show it).
    #[must_use]
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The context of the current task (set while a request or a hook's event is handled).
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// Runs `work` with this context as the current one.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// `s` if it is `len` lower-case hex digits.
fn hex(s: &str, len: usize) -> Option<&str> {
    (s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(s)
}

fn new_span_id() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64).max(1)
}

/// Sets up logging once for the process (later calls do nothing): `RUST_LOG` (default
/// `info`), JSON lines if `json`; with the feature `otel` and `OTEL_EXPORTER_OTLP_ENDPOINT`
/// set, spans are also exported over OTLP as `service`.
pub fn init_logging(service: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (plain, structured) = if json {
        (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        )
    } else {
        (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            ),
            None,
        )
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(plain)
        .with(structured);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer(service));
    #[cfg(not(feature = "otel"))]
    let _ = service;
    let _ = registry.try_init();
}

/// Flushes exported telemetry (with the feature `otel`); the last step of a shutdown.
pub(crate) fn flush() {
    #[cfg(feature = "otel")]
    otel::flush();
}

/// The trace context of the work `span` stands for: it continues `parent` (a request's or a
/// consumed event's context) with a new span, or starts a trace. With OpenTelemetry export on,
/// `span` itself joins `parent` and its exported ids are the ones returned, so what is
/// propagated names spans the collector has.
pub(crate) fn enter(span: &tracing::Span, parent: Option<TraceContext>) -> TraceContext {
    #[cfg(feature = "otel")]
    if let Some(own) = otel::join(span, parent) {
        return own;
    }
    let _ = span;
    parent.map_or_else(TraceContext::root, |p| p.child())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_values() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse(text).expect("valid");
        assert_eq!(c.traceparent(), text);
        assert!(c.sampled);
        let child = c.child();
        assert_eq!(child.trace_id, c.trace_id);
        assert_ne!(child.span_id, c.span_id);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        let root = TraceContext::root();
        assert_eq!(TraceContext::parse(&root.traceparent()), Some(root));
    }

    #[tokio::test]
    async fn current_is_scoped_to_the_task() {
        assert_eq!(TraceContext::current(), None);
        let c = TraceContext::root();
        let seen = c.scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(c));
    }
}
