//! The outbound side of Wharf: MCP clients that survive their servers' failures,
//! and a gateway that federates many servers into one [`wharf_core::App`].
//!
//! Every call to an upstream goes through one stack, in this order: the
//! circuit breaker (fail fast while the upstream is sick), the concurrency
//! limit, the connection (made, or remade after a crash, with backoff), the
//! per-attempt timeout, and retries with full-jitter backoff for calls that are
//! safe to repeat. [`Upstream::call`] is that stack; nothing else talks to an
//! upstream.

mod backoff;
mod breaker;
mod config;
mod connect;
mod error;
mod federation;
mod lane;
mod metrics;
mod relay;
mod sse_client;
mod upstream;

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use config::{
    DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_SEPARATOR, DEFAULT_TIMEOUT, Era,
    GatewayConfig, InProcess, Transport, UpstreamConfig, WhenUnhealthy,
};
pub use connect::{Announced, Connection, ListKind, UpstreamHandler, connect};
pub use error::{ConfigError, UpstreamError, safe_to_repeat};
pub use federation::Gateway;
pub use metrics::UpstreamMetrics;
pub use relay::ProgressRoutes;
pub use upstream::{Health, Lists, Upstream};
