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
pub mod auth;
mod batch;
mod client_inflight;
pub mod client_ip;
pub mod config;
pub mod connections;
mod cors;
mod deadlines;
pub mod drain;
mod fast;
mod guard;
mod health;
mod https;
mod intake;
pub mod jwks;
mod legacy_sse;
mod mcp;
pub mod metrics;
pub mod oauth;
pub mod rate_limit;
mod rpc_info;
mod serve;
pub mod sessions;
mod shed;
pub mod streams;
pub mod tls;
mod trace;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use wharf_core::{App, WharfServer};

pub use config::{ConnectionLimits, HttpConfig, NotReady, ReadyCheck, ReadyDetail};
pub use drain::Drain;
pub use guard::HostGuard;
pub use rpc_info::RpcInfo;
pub use serve::{Serving, serve, serve_tls};
pub use sessions::{CappedSessionManager, SessionOwners};

/// A configuration the HTTP side cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A setting that cannot be used, named as in `wharf.toml`.
    #[error("{0}")]
    Config(wharf_core::Problem),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The router plus the handles the binary needs to run and stop it.
pub struct HttpServer {
    pub router: Router,
    /// `/health`, `/ready` and `/metrics` alone, for a separate admin listener
    /// (`server.admin_listen`) that the outside world cannot reach.
    pub admin: Router,
    pub drain: Arc<Drain>,
    connections: Arc<connections::Connections>,
    limits: ConnectionLimits,
    metrics: metrics::Metrics,
    pub sessions: Arc<CappedSessionManager>,
    /// The token verifier when OAuth is on (its JWKS can be warmed at start-up).
    pub oauth: Option<Arc<oauth::Verifier>>,
}

impl HttpServer {
    /// What [`serve`] runs on the main listener.
    pub fn serving(&self) -> Serving {
        Serving {
            router: self.router.clone(),
            drain: self.drain.clone(),
            connections: self.connections.clone(),
            limits: self.limits,
            metrics: Some(self.metrics.clone()),
        }
    }

    /// What [`serve`] runs on the admin listener: the probes and metrics, with
    /// the same deadlines and caps of their own. It never drains: probes must
    /// keep answering while the main listener does.
    pub fn admin_serving(&self) -> Serving {
        Serving {
            router: self.admin.clone(),
            drain: Drain::new(),
            connections: connections::Connections::new(
                self.limits.max_connections,
                self.limits.max_connections_per_client,
                Default::default(),
            ),
            limits: self.limits,
            metrics: None,
        }
    }
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
            .map_err(|p| HttpError::Config(p.within("server")))?,
    );
    let drain = Drain::with_delay(config.drain_delay);
    let sessions = Arc::new(
        CappedSessionManager::new(config.session_idle_timeout, config.max_sessions)
            .with_stored_owners(config.session_owners.clone()),
    );

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
    let stream_cap = streams::StreamCap::new(config.max_sse_streams.max(1));
    let proxies = client_ip::TrustedProxies::parse(&config.trusted_proxies)
        .map_err(|p| HttpError::Config(p.within("server")))?;
    let pages_proxies = proxies.clone();
    let connections = connections::Connections::new(
        config.connections.max_connections,
        config.connections.max_connections_per_client,
        proxies.clone(),
    );
    let metrics = metrics::Metrics::new(
        sessions.clone(),
        stream_cap.clone(),
        connections.clone(),
        app.registry().clone(),
        config.process_metrics.clone(),
        config.metrics_key.clone(),
    )?;
    let limiter = rate_limit::Limiter::new(
        config.rate_limit.clone(),
        metrics.rate_limit_backend_errors.clone(),
    )
    .map_err(HttpError::Config)?;
    let verifier = config
        .auth
        .oauth
        .clone()
        .map(|c| Arc::new(oauth::Verifier::new(c)));
    let https_policy = https::HttpsPolicy {
        native_tls: config.native_tls,
        require: config.require_https,
        proxies: proxies.clone(),
    };
    let gate = auth::Gate {
        keys: Arc::new(config.auth.api_keys.clone()),
        verifier: verifier.clone(),
        anonymous: config.auth.anonymous,
        auth_on: config.auth.is_on(),
        limiter: limiter.clone(),
        proxies,
        metrics: metrics.clone(),
        inflight: client_inflight::ClientInflight::new(config.max_requests_per_client),
    };
    let intake = Arc::new(intake::Intake {
        app: app.clone(),
        limiter: limiter.clone(),
        metrics: metrics.clone(),
        body: intake::BodyLimits {
            max_bytes: config.max_body_bytes,
            timeout: config.body_timeout,
            min_rate: config.body_min_rate,
        },
    });
    let mcp_state = mcp::McpState {
        intake: intake.clone(),
        rmcp,
        sessions: sessions.clone(),
        stateless: config.stateless,
        fast_path: config.fast_path,
    };
    let legacy = legacy_sse::LegacySse::new(
        intake,
        config.max_sessions,
        config.sse_keep_alive,
        drain.streams.child_token(),
    );

    let mcp_state = Arc::new(mcp_state);
    let mut mcp_routes = Router::new()
        .route("/mcp", post(mcp::post).get(mcp::other).delete(mcp::other))
        .route("/mcp/sse", post(mcp::action_sse))
        .with_state(mcp_state.clone());
    for name in &config.endpoints {
        let endpoint = wharf_core::Endpoint(Arc::from(name.as_str()));
        mcp_routes = mcp_routes.merge(
            Router::new()
                .route(
                    &format!("/mcp/{name}"),
                    post(mcp::post).get(mcp::other).delete(mcp::other),
                )
                .with_state(mcp_state.clone())
                .layer(axum::Extension(endpoint)),
        );
    }
    let guarded = mcp_routes
        .merge(
            Router::new()
                .route("/sse", get(legacy_sse::connect))
                .route("/messages", post(legacy_sse::post))
                .with_state(legacy),
        )
        // One stack, outermost first, applied once: layered one by one, each layer
        // would box the route beneath it and clone that box on every request.
        .layer(
            tower::ServiceBuilder::new()
                .layer(cors::layer(guard.clone()))
                .layer(middleware::from_fn_with_state(
                    https_policy.clone(),
                    https::enforce,
                ))
                .layer(middleware::from_fn_with_state(guard.clone(), guard::check))
                .layer(axum::error_handling::HandleErrorLayer::new(
                    shed::on_overload(metrics.clone()),
                ))
                .load_shed()
                .concurrency_limit(config.max_concurrent_requests.max(1))
                .layer(middleware::from_fn_with_state(Arc::new(gate), auth::gate))
                .layer(middleware::from_fn_with_state(
                    stream_cap.clone(),
                    streams::cap,
                )),
        );
    let guarded = match &verifier {
        // RFC 9728: the metadata at the well-known path, and at the path-suffixed
        // form for the resource `/mcp`.
        Some(v) => guarded.merge(
            Router::new()
                .route(
                    "/.well-known/oauth-protected-resource",
                    get(auth::resource_metadata),
                )
                .route(
                    "/.well-known/oauth-protected-resource/mcp",
                    get(auth::resource_metadata),
                )
                // A named endpoint is under the resource `/mcp`: one audience.
                .route(
                    "/.well-known/oauth-protected-resource/mcp/{name}",
                    get(auth::resource_metadata),
                )
                .with_state(v.clone())
                .layer(middleware::from_fn_with_state(guard.clone(), guard::check)),
        ),
        None => guarded,
    };

    let guarded = config.pages.iter().fold(guarded, |router, pages| {
        router.merge(
            pages.clone().layer(
                tower::ServiceBuilder::new()
                    .layer(middleware::from_fn_with_state(
                        https_policy.clone(),
                        https::enforce,
                    ))
                    .layer(middleware::from_fn_with_state(
                        guard.clone(),
                        guard::check_host,
                    ))
                    .layer(axum::error_handling::HandleErrorLayer::new(
                        shed::on_overload(metrics.clone()),
                    ))
                    .load_shed()
                    .concurrency_limit(config.max_concurrent_requests.max(1))
                    .layer(middleware::from_fn_with_state(
                        pages_proxies.clone(),
                        client_ip::tag,
                    )),
            ),
        )
    });

    let mut checks: Vec<ReadyCheck> = config.ready_checks.clone();
    if let Some(v) = &verifier {
        let jwks = v.jwks().clone();
        checks.push(Arc::new(move || {
            let jwks = jwks.clone();
            Box::pin(async move {
                // Not loaded yet: ask for it now (the cache spaces its fetches).
                if jwks.loaded().await || jwks.key(None).await.is_some() || jwks.loaded().await {
                    Ok(())
                } else {
                    Err("the authorization server's JWKS is not loaded yet".into())
                }
            })
        }));
    }
    let readiness = health::Readiness {
        drain: drain.clone(),
        checks,
        details: config.ready_details.clone(),
        connections: connections.clone(),
        max_requests: config.max_concurrent_requests.max(1),
    };
    // Probes and metrics: on the main listener, and on the admin listener when
    // the binary runs one (then /metrics is only there).
    let admin = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready).with_state(readiness.clone()))
        .route("/metrics", get(metrics::scrape).with_state(metrics.clone()));
    let probes = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready).with_state(readiness));
    let probes = if config.metrics_on_main {
        probes.route("/metrics", get(metrics::scrape).with_state(metrics.clone()))
    } else {
        probes
    };
    let router = probes.merge(guarded).layer(
        tower::ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                access_log::AccessLog {
                    metrics: metrics.clone(),
                    tracing: config.tracing,
                },
                access_log::log,
            ))
            .layer(middleware::from_fn_with_state(drain.clone(), drain::track))
            // A panic in a handler answers 500 (and is logged); the process and
            // the connection's other requests carry on.
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked)),
    );

    Ok(HttpServer {
        router,
        admin,
        drain,
        connections,
        limits: config.connections,
        metrics,
        sessions,
        oauth: verifier,
    })
}

/// The answer to a request whose handler panicked.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked; answered 500");
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32603, "message": "internal error"}
    });
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(body),
    ))
}
