//! Per-upstream series, registered in the gateway app's registry (so they are
//! `wharf_upstream_*` on `/metrics`). The `upstream` label is a configured name,
//! never client input.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, core::Collector};

#[derive(Clone)]
pub struct UpstreamMetrics {
    pub(crate) calls: IntCounterVec,
    pub(crate) errors: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) retries: IntCounterVec,
    pub(crate) breaker: IntGaugeVec,
    pub(crate) healthy: IntGaugeVec,
    pub(crate) reconnects: IntCounterVec,
    pub(crate) sessions: IntGaugeVec,
    pub(crate) tool_changes: IntCounterVec,
}

impl std::fmt::Debug for UpstreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamMetrics")
    }
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamMetrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["upstream"]).expect("valid metric")
        };
        Self {
            calls: counter(
                "upstream_calls_total",
                "Calls to upstream servers by outcome (ok or the error class), after retries.",
                &["upstream", "method", "outcome"],
            ),
            errors: counter(
                "upstream_errors_total",
                "Failed attempts at upstream servers by class: connect, timeout, transport, remote, circuit_open, unavailable.",
                &["upstream", "class"],
            ),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "upstream_call_duration_seconds",
                    "Time from the first attempt to the final answer, retries included.",
                )
                .buckets(wharf_core::metrics::LATENCY_BUCKETS.to_vec()),
                &["upstream"],
            )
            .expect("valid metric"),
            retries: counter(
                "upstream_retries_total",
                "Attempts repeated after a failure that was safe to retry.",
                &["upstream"],
            ),
            breaker: gauge(
                "upstream_breaker_state",
                "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.",
            ),
            healthy: gauge(
                "upstream_healthy",
                "1 when the upstream's last health check passed, 0 when it failed.",
            ),
            reconnects: counter(
                "upstream_reconnects_total",
                "Connections remade after a failure: a stdio server restarted, an HTTP upstream reconnected.",
                &["upstream"],
            ),
            sessions: gauge(
                "upstream_sessions",
                "Upstream sessions held open for legacy callers (one per caller session that used the upstream).",
            ),
            tool_changes: counter(
                "upstream_tool_changes_total",
                "Upstream tool definitions seen changed since they were pinned (each new definition once).",
                &["upstream"],
            ),
        }
    }

    /// Everything to register in the app's registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.calls.clone()),
            Box::new(self.errors.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.breaker.clone()),
            Box::new(self.healthy.clone()),
            Box::new(self.reconnects.clone()),
            Box::new(self.sessions.clone()),
            Box::new(self.tool_changes.clone()),
        ]
    }
}
