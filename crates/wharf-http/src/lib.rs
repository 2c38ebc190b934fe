//! Wharf's HTTP side: the axum router and its tower layers.
//!
//! - `/mcp`: Streamable HTTP (rmcp) for the stateless 2026-07-28 protocol and the
//!   session-based 2025-x versions on one endpoint, plus the JSON action API;
//! - `/mcp/sse`: the action API answered as server-sent events;
//! - `/sse` + `/messages`: the 2024-11-05 HTTP+SSE transport;
//! - `/health`: liveness; `/ready`: readiness (503 while draining or when the
//!   app's check fails); `/metrics`: Prometheus.
//!
//! Every route but `/health` and `/ready` passes the Host/Origin guard; every request is
//! counted for drain and written to the access log.

mod access_log;
mod action;
pub mod config;
pub mod drain;
mod guard;
mod health;
mod legacy_sse;
mod mcp;
pub mod metrics;
mod rpc_info;
mod serve;
pub mod sessions;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use wharf_core::{App, WharfServer};

pub use config::{HttpConfig, ReadyCheck};
pub use drain::Drain;
pub use guard::HostGuard;
pub use rpc_info::RpcInfo;
pub use serve::serve;
pub use sessions::CappedSessionManager;

/// A configuration the HTTP side cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("server.allowed_hosts / server.allowed_origins: {0}")]
    BadAllowList(String),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The router plus the handles the binary needs to run and stop it.
pub struct HttpServer {
    pub router: Router,
    pub drain: Arc<Drain>,
    pub sessions: Arc<CappedSessionManager>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer").finish_non_exhaustive()
    }
}

/// Build the router for `app`.
pub fn build(app: Arc<App>, config: &HttpConfig) -> Result<HttpServer, HttpError> {
    let guard = Arc::new(
        HostGuard::new(&config.allowed_hosts, &config.allowed_origins)
            .map_err(HttpError::BadAllowList)?,
    );
    let drain = Drain::new();
    let sessions = Arc::new(CappedSessionManager::new(
        config.session_idle_timeout,
        config.max_sessions,
    ));

    let mut rmcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!config.stateless)
        .with_json_response(true)
        .with_sse_keep_alive(Some(config.sse_keep_alive))
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(drain.streams.child_token())
        // Host and Origin are checked by `guard` for every route, rmcp's included.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    rmcp_config.session_store = config.session_store.clone();
    let factory_app = app.clone();
    let rmcp = StreamableHttpService::new(
        move || Ok(WharfServer::new(factory_app.clone())),
        sessions.clone(),
        rmcp_config,
    );
    let mcp_state = mcp::McpState {
        app: app.clone(),
        rmcp,
        sessions: sessions.clone(),
        stateless: config.stateless,
        max_body_bytes: config.max_body_bytes,
    };
    let legacy = legacy_sse::LegacySse::new(
        app,
        config.max_sessions,
        config.max_body_bytes,
        config.sse_keep_alive,
        drain.streams.child_token(),
    );

    let guarded = Router::new()
        .route("/mcp", post(mcp::post).get(mcp::other).delete(mcp::other))
        .route("/mcp/sse", post(mcp::action_sse))
        .with_state(mcp_state)
        .merge(
            Router::new()
                .route("/sse", get(legacy_sse::connect))
                .route("/messages", post(legacy_sse::post))
                .with_state(legacy),
        )
        .layer(middleware::from_fn_with_state(guard, guard::check));

    let readiness = health::Readiness {
        drain: drain.clone(),
        check: config.ready_check.clone(),
    };
    let metrics = metrics::Metrics::new(sessions.clone())?;
    let router = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready).with_state(readiness))
        .route("/metrics", get(metrics::scrape).with_state(metrics.clone()))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(drain.clone(), drain::track))
        .layer(middleware::from_fn_with_state(metrics, access_log::log));

    Ok(HttpServer {
        router,
        drain,
        sessions,
    })
}
