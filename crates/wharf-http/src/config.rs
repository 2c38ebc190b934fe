//! The HTTP side's settings, already validated by the binary's config loader.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::session::SessionStore;

/// A readiness condition beyond "not draining" (the database answers, say):
/// `/ready` reports the error as its reason.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), NotReady>> + Send + Sync>;

/// Why a [`ReadyCheck`] failed.
pub type NotReady = Box<dyn std::error::Error + Send + Sync>;

/// What `/ready` shows besides its verdict, under a name of its own (a
/// gateway's upstreams and their states, say), whether ready or not.
pub type ReadyDetail = Arc<dyn Fn() -> (&'static str, serde_json::Value) + Send + Sync>;

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
    /// A body must arrive within this long, plus one second per
    /// `body_min_rate` bytes received (a slow body is cut, not waited for).
    pub body_timeout: Duration,
    /// Bytes per second a body must keep up after `body_timeout`.
    pub body_min_rate: usize,
    /// Connections, and the deadlines of their reads and writes.
    pub connections: ConnectionLimits,
    /// Requests one client (an authenticated subject, or an address) may have
    /// in flight at once; more get 429 at once.
    pub max_requests_per_client: usize,
    /// A legacy session idle for this long is closed (and forgotten by the store).
    pub session_idle_timeout: Duration,
    /// Most legacy sessions one process holds in memory.
    pub max_sessions: usize,
    /// Interval of `:` comment lines on SSE streams, so proxies do not cut idle streams.
    pub sse_keep_alive: Duration,
    /// Where legacy sessions are persisted so other replicas (and this one after a
    /// restart) can serve them. `None`: sessions live and die with this process.
    pub session_store: Option<Arc<dyn SessionStore>>,
    /// Where the owners of stored sessions are kept (with the sessions), so
    /// that a session restored on another replica is still its creator's alone.
    pub session_owners: Option<Arc<dyn crate::sessions::SessionOwners>>,
    /// Checked by `GET /ready`, each in turn; none: ready unless draining or saturated.
    pub ready_checks: Vec<ReadyCheck>,
    /// Shown by `GET /ready` beside its verdict.
    pub ready_details: Vec<ReadyDetail>,
    /// Named endpoints served beside `/mcp`, at `/mcp/{name}`, each telling the
    /// app where a request arrived ([`wharf_core::Endpoint`]): a gateway's
    /// virtual servers.
    pub endpoints: Vec<String>,
    /// Routes for people and their browsers, served beside `/mcp` (the
    /// authorization server's pages and endpoints, the gateway's sign-in
    /// pages): behind the Host guard (not the Origin list: their forms carry
    /// sealed, browser-bound tickets), the HTTPS policy and load shedding, in
    /// the access log and the drain, with the client's address in
    /// [`wharf_core::ClientAddr`]; not behind the bearer gate or rate limit.
    pub pages: Vec<axum::Router>,
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
    /// The process's own series (log lines dropped, ...), served at `/metrics`.
    pub process_metrics: Option<prometheus::Registry>,
}

/// What a connection may hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Connections one address (not a trusted proxy) may hold open at once.
    pub max_connections_per_client: usize,
    /// A request head must arrive within this long of its first byte (or of
    /// the connection opening).
    pub header_timeout: Duration,
    /// A kept-alive connection waiting for its next request is closed after
    /// this long. Longer than the load balancer's own idle timeout, so that it
    /// closes first and never sends on a connection being closed here.
    pub idle_timeout: Duration,
    /// A write that makes no progress (the client stopped reading) for this
    /// long ends the connection.
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Default cap on open connections: well under a container's usual 1,024
/// descriptors once the binary raises its soft limit, and far above what two
/// cores serve.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Default cap per address: a browser opens 6, a busy gateway a few dozen; 256
/// leaves room for clients behind one NAT while one address cannot take every
/// connection.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;

/// Default cap on one client's requests in flight: far above what one agent
/// sends at once, low enough that one client cannot hold the server's
/// `max_concurrent_requests`.
pub const DEFAULT_MAX_REQUESTS_PER_CLIENT: usize = 64;

/// Default time a body has before the minimum rate applies.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Default minimum rate of a body after `body_timeout`: 32 KiB/s is a slow
/// mobile uplink; a 4 MiB body at that rate takes about two minutes.
pub const DEFAULT_BODY_MIN_RATE: usize = 32 * 1024;

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
            body_timeout: DEFAULT_BODY_TIMEOUT,
            body_min_rate: DEFAULT_BODY_MIN_RATE,
            connections: ConnectionLimits::default(),
            max_requests_per_client: DEFAULT_MAX_REQUESTS_PER_CLIENT,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            sse_keep_alive: Duration::from_secs(15),
            session_store: None,
            session_owners: None,
            ready_checks: Vec::new(),
            ready_details: Vec::new(),
            endpoints: Vec::new(),
            pages: Vec::new(),
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
            process_metrics: None,
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
