//! `GET /health` (liveness, answered without touching anything that can block)
//! and `GET /ready` (readiness: not draining, and the app's own check passes).

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::{config::ReadyCheck, drain::Drain};

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
}

/// 200 when this process should receive traffic; 503 with the reason otherwise.
/// During drain it turns 503 first, so a load balancer stops sending new work
/// while requests in flight finish.
pub(crate) async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        )
    };
    if r.drain.is_draining() {
        return not_ready("draining: the server is shutting down".into());
    }
    for check in &r.checks {
        if let Err(reason) = check().await {
            return not_ready(reason);
        }
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}
