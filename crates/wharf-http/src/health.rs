//! `GET /health`: liveness, answered without touching anything that can block.

use axum::{Json, response::IntoResponse};
use serde_json::json;

pub(crate) async fn health() -> impl IntoResponse {
    Json(json!({
        "status": "healthy",
        "transport": "http",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
