//! Load shedding: at most `server.max_concurrent_requests` MCP requests are
//! handled at once; one more is answered 503 with `Retry-After` at once, rather
//! than queued without bound (a queue only turns overload into timeouts and
//! memory growth). A request holds its slot until its response head is ready,
//! so open SSE streams do not count.

use std::convert::Infallible;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower::BoxError;

use crate::metrics::Metrics;

/// The handler of the shedding layer's overflow: 503 with `Retry-After`.
pub(crate) fn on_overload(
    metrics: Metrics,
) -> impl Fn(BoxError) -> std::future::Ready<Result<Response, Infallible>> + Clone {
    move |_| std::future::ready(Ok(overloaded(&metrics)))
}

fn overloaded(metrics: &Metrics) -> Response {
    metrics.shed.inc();
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32000, "message": "The server is at capacity (server.max_concurrent_requests); retry shortly"}
    });
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}
