//! `GET /health` (liveness, answered without touching anything that can block)
//! and `GET /ready` (readiness: not draining, and the app's own check passes).

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::{
    config::{ReadyCheck, ReadyDetail},
    drain::Drain,
};

pub(crate) async fn health() -> impl IntoResponse {
    Json(json!({
        "status": "healthy",
        "transport": "http",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// What `/ready` consults.
#[derive(Clone)]
pub(crate) struct Readiness {
    pub drain: Arc<Drain>,
    /// Every check must pass (the database answers, the JWKS is loaded, ...).
    pub checks: Vec<ReadyCheck>,
    /// Shown beside the verdict.
    pub details: Vec<ReadyDetail>,
    /// Saturated (every connection or request place taken) is not ready: a
    /// load balancer should send new work elsewhere until places free up.
    pub connections: Arc<crate::connections::Connections>,
    pub max_requests: usize,
}

/// 200 when this process should receive traffic; 503 with the reason otherwise.
/// During drain it turns 503 first, so a load balancer stops sending new work
/// while requests in flight finish.
pub(crate) async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let with_detail = |mut body: serde_json::Value| {
        for detail in &r.details {
            let (name, value) = detail();
            body[name] = value;
        }
        Json(body)
    };
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            with_detail(json!({"status": "not_ready", "reason": reason})),
        )
    };
    if r.drain.is_draining() {
        return not_ready("draining: the server is shutting down".into());
    }
    let (open, max_open) = (r.connections.open(), r.connections.max());
    if open >= max_open {
        return not_ready(format!(
            "saturated: {open} of {max_open} connections open (server.max_connections)"
        ));
    }
    let inflight = r.drain.inflight();
    if inflight >= r.max_requests {
        return not_ready(format!(
            "saturated: {inflight} of {} requests in flight (server.max_concurrent_requests)",
            r.max_requests
        ));
    }
    for check in &r.checks {
        if let Err(reason) = check().await {
            return not_ready(reason.to_string());
        }
    }
    (StatusCode::OK, with_detail(json!({"status": "ready"})))
}
