//! The outbound side of Wharf: MCP clients that survive their servers' failures,
//! and a gateway that federates many servers into one [`wharf_core::App`].
//!
//! Every call to an upstream goes through one stack, in this order: the
//! circuit breaker (fail fast while the upstream is sick), the concurrency
//! limit, the connection (made, or remade after a crash, with backoff), the
//! per-attempt timeout, and retries with full-jitter backoff for calls that are
//! safe to repeat. [`Upstream::call`] is that stack; nothing else sends an
//! upstream a request (but its health check, which measures it): a caller's
//! own upstream session (`lanes`) is opened and set up inside a call's
//! attempt, and a list-change subscription is opened through the stack.
//!
//! Files: `config` (the gateway file), `connect` (one rmcp client connection),
//! `sse_client` (the 2024-11-05 client transport), `upstream` (the stack),
//! `breaker`, `backoff`, `error` (classes decide retries and the breaker),
//! `lanes` + `lane` (an upstream session per legacy caller), `relay` (calling
//! as the downstream caller), `progress` (progress notifications to their
//! caller, bounded), `federation` (upstreams into one app), `views` (who
//! sees which tools; virtual servers), `tool_search` (`search_tools` and
//! `call_tool` over an index of the tools), `pinning`, `metrics`.

mod backoff;
mod breaker;
mod config;
mod connect;
mod error;
mod federation;
mod lane;
mod lanes;
mod metrics;
mod oauth;
mod pinning;
mod progress;
mod redact;
mod relay;
mod sse_client;
mod tool_search;
mod upstream;
mod vault;
mod views;

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use config::{
    AuditSettings, DEFAULT_AUDIT_RETENTION, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES,
    DEFAULT_SEPARATOR, DEFAULT_TIMEOUT, Era, GatewayConfig, InProcess, ReadyWhen, Transport,
    UpstreamConfig, WhenUnhealthy,
};
pub use connect::{Announced, ListKind};
pub use error::{UpstreamError, safe_to_repeat};
pub use federation::{AuditSink, Gateway};
pub use metrics::UpstreamMetrics;
pub use oauth::{Grant, OAuthSettings, TokenSet};
pub use pinning::{OnChange, Pinning, definition_hash};
pub use redact::shown_url;
pub use tool_search::{CALL_TOOL, SEARCH_TOOLS, ToolSearch};
pub use upstream::{Health, Lists, Upstream};
pub use vault::{
    MemoryTokens, SIGN_IN_CALLBACK, SIGN_IN_COOKIE, SIGN_IN_START, SignInStart, SignIns, TokenStore,
};
pub use views::{Caller, Globs, Selection, View, Views};
