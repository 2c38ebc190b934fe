//! CORS for browser-based MCP clients (MCP Inspector's web UI, a web app's own
//! client). The origins are the Origin allow-list the guard already enforces
//! (`server.allowed_origins`), so one setting decides both; preflights are
//! answered here, before authentication, because browsers send them without
//! credentials.

use std::{sync::Arc, time::Duration};

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::guard::HostGuard;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

pub(crate) fn layer(guard: Arc<HostGuard>) -> CorsLayer {
    let name = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            name("mcp-session-id"),
            name("mcp-protocol-version"),
            name("mcp-method"),
            name("mcp-name"),
            name("last-event-id"),
        ])
        .expose_headers([
            name("mcp-session-id"),
            name("mcp-protocol-version"),
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}
