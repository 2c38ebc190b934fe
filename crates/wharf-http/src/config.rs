//! The HTTP side's settings, already validated by the binary's config loader.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::session::SessionStore;

/// A readiness condition beyond "not draining" (the database answers, say):
/// `Err` carries the reason `/ready` reports.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Default cap on a request body. rmcp's own default; large enough for any tool
/// call a model writes, small enough that a flood of bodies cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How the HTTP side behaves.
#[derive(Clone)]
pub struct HttpConfig {
    /// No legacy sessions: no `Mcp-Session-Id` is minted, any replica serves any request.
    pub stateless: bool,
    /// Answer ordinary stateless (2026-07-28) tool calls without rmcp's
    /// per-request service; off sends every request through rmcp.
    pub fast_path: bool,
    /// `Host` values accepted (`name` or `name:port`); `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted (`scheme://host[:port|:*]`, `null`); `*` accepts any.
    /// A request without `Origin` (not from a browser) is always accepted.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// A legacy session idle for this long is closed (and forgotten by the store).
    pub session_idle_timeout: Duration,
    /// Most legacy sessions one process holds in memory.
    pub max_sessions: usize,
    /// Interval of `:` comment lines on SSE streams, so proxies do not cut idle streams.
    pub sse_keep_alive: Duration,
    /// Where legacy sessions are persisted so other replicas (and this one after a
    /// restart) can serve them. `None`: sessions live and die with this process.
    pub session_store: Option<Arc<dyn SessionStore>>,
    /// Checked by `GET /ready`; `None`: ready unless draining.
    pub ready_check: Option<ReadyCheck>,
    /// Who may call: API keys, OAuth, anonymous callers.
    pub auth: crate::auth::AuthConfig,
    pub rate_limit: crate::rate_limit::RateLimitConfig,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed (IPs or CIDRs).
    pub trusted_proxies: Vec<String>,
    /// Requests handled at once; more get 503 at once rather than a queue.
    pub max_concurrent_requests: usize,
    /// SSE streams open at once; one more is answered 503.
    pub max_sse_streams: usize,
    /// This process serves HTTPS itself (HSTS on every answer).
    pub native_tls: bool,
    /// Refuse plain-HTTP requests (403) on MCP routes.
    pub require_https: bool,
    /// Open spans for requests and tool calls (traces are being exported).
    pub tracing: bool,
    /// Serve `/metrics` on the main listener; `false` when an admin listener
    /// serves it ([`HttpServer::admin`](crate::HttpServer::admin)).
    pub metrics_on_main: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <key>`.
    pub metrics_key: Option<String>,
    /// On shutdown, how long `/ready` fails while connections are still accepted.
    pub drain_delay: Duration,
}

/// Default cap on open SSE streams: each holds a connection and a few KiB of
/// buffers, so a few thousand fit comfortably in a small container.
pub const DEFAULT_MAX_SSE_STREAMS: usize = 2048;

/// Default cap on requests in flight: far above what 2 cores answer at once,
/// low enough that a burst cannot pile up unbounded memory.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 512;

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("stateless", &self.stateless)
            .field("fast_path", &self.fast_path)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            stateless: false,
            fast_path: true,
            allowed_hosts: loopback_hosts(),
            allowed_origins: loopback_origins(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            sse_keep_alive: Duration::from_secs(15),
            session_store: None,
            ready_check: None,
            auth: crate::auth::AuthConfig::default(),
            rate_limit: crate::rate_limit::RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_sse_streams: DEFAULT_MAX_SSE_STREAMS,
            native_tls: false,
            require_https: false,
            tracing: false,
            metrics_on_main: true,
            metrics_key: None,
            drain_delay: Duration::ZERO,
        }
    }
}

/// The Host names of this machine's loopback interface.
pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .map(String::from)
        .to_vec()
}

/// Browser origins served from this machine, on any port.
pub fn loopback_origins() -> Vec<String> {
    [
        "http://localhost:*",
        "http://127.0.0.1:*",
        "http://[::1]:*",
        "https://localhost:*",
        "https://127.0.0.1:*",
        "https://[::1]:*",
    ]
    .map(String::from)
    .to_vec()
}
