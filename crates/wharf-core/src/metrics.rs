//! What an [`App`](crate::App) records about its tool calls, in a Prometheus
//! registry the HTTP side serves at `/metrics` next to its own.
//!
//! Labels are bounded: `tool` is a tool the app has (`-` for an unknown name),
//! `outcome` and `class` come from a fixed set ([`ToolError::class`](crate::ToolError::class)).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Latency buckets in seconds, from a local catalog lookup to a slow upstream.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The tool-call series.
#[derive(Clone)]
pub(crate) struct ToolMetrics {
    /// By tool and outcome (`ok`, `tool_error`, or an error class).
    calls: IntCounterVec,
    /// Failed calls by tool and class: `validation`, `timeout`, `handler`,
    /// `upstream`, `not_found`, `auth`, `internal`, `unknown_tool`, `protocol`.
    errors: IntCounterVec,
    duration: HistogramVec,
}

impl ToolMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new("tool_calls_total", "Tool calls by tool and outcome"),
            &["tool", "outcome"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tool_errors_total",
                "Tool calls that did not succeed, by tool and error class",
            ),
            &["tool", "class"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tool_call_duration_seconds",
                "Time from arguments received to result ready, by tool",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["tool"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            calls,
            errors,
            duration,
        })
    }

    /// Record one call; `tool` must be a name the app has (or `-`).
    pub(crate) fn observe(&self, tool: &str, outcome: &str, seconds: f64) {
        self.calls.with_label_values(&[tool, outcome]).inc();
        if outcome != "ok" {
            let class = if outcome == "tool_error" {
                "handler"
            } else {
                outcome
            };
            self.errors.with_label_values(&[tool, class]).inc();
        }
        self.duration.with_label_values(&[tool]).observe(seconds);
    }
}
