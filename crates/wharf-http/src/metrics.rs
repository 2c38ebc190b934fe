//! Prometheus metrics for the HTTP side, served at `GET /metrics`.
//!
//! Label values are bounded: the JSON-RPC method is one of MCP's methods (any
//! other name counts as `other`), the tool is one the app has (the `/mcp`
//! handler only records known tools), and the status is the HTTP status code.
//! No label ever carries raw client input.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use subtle::ConstantTimeEq;

use crate::sessions::CappedSessionManager;

/// Latency buckets in seconds: fine below 10 ms, where tool calls on a local
/// catalog land, and out to 30 s for slow upstreams.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// JSON-RPC methods recorded by name; anything else is `other`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "action",
];

/// The registry and the series Wharf records; cloning it (as axum does for
/// each request's state) is one reference count.
#[derive(Clone)]
pub struct Metrics(Arc<Series>);

impl std::ops::Deref for Metrics {
    type Target = Series;

    fn deref(&self) -> &Series {
        &self.0
    }
}

/// The series behind [`Metrics`].
pub struct Series {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    sessions: IntGauge,
    sessions_source: Arc<CappedSessionManager>,
    streams: IntGauge,
    streams_source: crate::streams::StreamCap,
    /// Refused credentials by reason (`missing`, `expired`, `wrong_audience`, ...: a fixed set).
    pub auth_failures: IntCounterVec,
    /// Requests refused by a rate limit, by bucket (`ip`, `subject`, `tool`).
    pub rate_limited: IntCounterVec,
    /// Rate-limit decisions made without the shared backend (Redis unreachable).
    pub rate_limit_backend_errors: IntCounter,
    /// Requests shed because `server.max_concurrent_requests` were in flight.
    pub shed: IntCounter,
    /// Requests refused because their client had `server.max_requests_per_client` in flight.
    pub client_inflight_refused: IntCounter,
    /// Connections closed as soon as accepted, by reason (`max_connections`, `per_client`).
    pub connections_refused: IntCounterVec,
    /// Connections or requests ended at a deadline, by phase (`header`, `idle`, `body`, `write`).
    pub timeouts: IntCounterVec,
    connections: IntGauge,
    connections_source: Arc<crate::connections::Connections>,
    /// The app's own series (tool calls, database), served alongside.
    app_registry: Registry,
    /// The process's (log lines dropped, ...), served alongside.
    process_registry: Option<Registry>,
    /// When set, a scrape must present `Authorization: Bearer <key>`.
    key: Option<Arc<str>>,
    #[cfg(target_os = "linux")]
    os_process: prometheus::process_collector::ProcessCollector,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(
        sessions_source: Arc<CappedSessionManager>,
        streams_source: crate::streams::StreamCap,
        connections_source: Arc<crate::connections::Connections>,
        app_registry: Registry,
        process_registry: Option<Registry>,
        key: Option<String>,
    ) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("wharf".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "HTTP requests by JSON-RPC method, tool and HTTP status",
            ),
            &["method", "tool", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time to answer (to the response head for streams)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "tool"],
        )?;
        let sessions = IntGauge::new(
            "sessions",
            "Legacy MCP sessions held in memory by this process",
        )?;
        let build = IntGauge::with_opts(
            Opts::new("build_info", "Always 1; the labels say which build runs")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build.set(1);
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Requests refused for their credentials, by reason",
            ),
            &["reason"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused by a rate limit, by bucket",
            ),
            &["bucket"],
        )?;
        let rate_limit_backend_errors = IntCounter::new(
            "rate_limit_backend_errors_total",
            "Rate-limit checks the shared backend (Redis) could not answer",
        )?;
        let shed = IntCounter::new(
            "shed_total",
            "Requests answered 503 because server.max_concurrent_requests were in flight",
        )?;
        let client_inflight_refused = IntCounter::new(
            "client_inflight_refused_total",
            "Requests answered 429 because their client had server.max_requests_per_client in flight",
        )?;
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "Connections closed as soon as accepted, by reason (max_connections, per_client)",
            ),
            &["reason"],
        )?;
        let timeouts = IntCounterVec::new(
            Opts::new(
                "timeouts_total",
                "Connections or requests ended at a deadline, by phase (header, idle, body, write)",
            ),
            &["phase"],
        )?;
        let connections = IntGauge::new("connections", "HTTP connections open now")?;
        registry.register(Box::new(client_inflight_refused.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(timeouts.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(rate_limit_backend_errors.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        let streams = IntGauge::new("sse_streams", "SSE streams open now (all transports)")?;
        registry.register(Box::new(streams.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(build))?;
        Ok(Self(Arc::new(Series {
            registry,
            requests,
            latency,
            sessions,
            sessions_source,
            streams,
            streams_source,
            auth_failures,
            rate_limited,
            rate_limit_backend_errors,
            shed,
            client_inflight_refused,
            connections_refused,
            timeouts,
            connections,
            connections_source,
            app_registry,
            process_registry,
            key: key.map(Into::into),
            #[cfg(target_os = "linux")]
            os_process: prometheus::process_collector::ProcessCollector::for_self(),
        })))
    }

    /// Record one answered request.
    pub fn observe(&self, method: Option<&str>, tool: Option<&str>, status: u16, seconds: f64) {
        let method = match method {
            None => "-",
            Some(m) if KNOWN_METHODS.contains(&m) => m,
            Some(_) => "other",
        };
        let tool = tool.unwrap_or("-");
        self.requests
            .with_label_values(&[method, tool, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, tool])
            .observe(seconds);
    }
}

/// `GET /metrics`, in the Prometheus text format.
pub(crate) async fn scrape(State(m): State<Metrics>, headers: HeaderMap) -> Response {
    if let Some(key) = &m.key {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(presented.as_bytes().ct_eq(key.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                "metrics need `Authorization: Bearer <server.metrics_key>`\n",
            )
                .into_response();
        }
    }
    m.sessions.set(m.sessions_source.live().await as i64);
    m.streams.set(m.streams_source.open() as i64);
    m.connections.set(m.connections_source.open() as i64);
    let mut families = m.registry.gather();
    families.extend(m.app_registry.gather());
    if let Some(process) = &m.process_registry {
        families.extend(process.gather());
    }
    // CPU, memory, open files and start time, under the names every
    // dashboard expects (process_*, no prefix).
    #[cfg(target_os = "linux")]
    families.extend(prometheus::core::Collector::collect(&m.os_process));
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
