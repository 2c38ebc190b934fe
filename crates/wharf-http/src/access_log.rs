//! One log line per HTTP request (method, path, JSON-RPC method, tool, status,
//! latency), the same facts recorded as metrics, and the request's id: taken
//! from `X-Request-Id` or minted, returned in that header, and handed to the
//! app as the call id of the tool call the request carries (its log line and
//! its result's `_meta["wharf/callId"]`), so a user's report leads to the line.

use tokio::time::Instant;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header::HeaderName},
    middleware::Next,
    response::Response,
};

use tracing::Instrument;
use wharf_core::{CallId, ParentSpan};

use crate::{metrics::Metrics, rpc_info::RpcInfo};

/// What the access-log layer needs.
#[derive(Clone)]
pub(crate) struct AccessLog {
    pub metrics: Metrics,
    /// Open a span per request (traces are exported).
    pub tracing: bool,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id that is kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

pub(crate) async fn log(
    State(AccessLog { metrics, tracing }): State<AccessLog>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let http_method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    request.extensions_mut().insert(CallId(request_id.clone()));
    let span = if tracing {
        crate::trace::request_span(&http_method, &path, request.headers())
    } else {
        tracing::Span::none()
    };
    if !span.is_none() {
        request.extensions_mut().insert(ParentSpan(span.clone()));
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let info = response
        .extensions()
        .get::<RpcInfo>()
        .cloned()
        .unwrap_or_default();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    if path != "/metrics" {
        metrics.observe(
            info.method.as_deref(),
            info.tool.as_deref(),
            status,
            elapsed_ms / 1000.0,
        );
    }
    tracing::info!(
        parent: &span,
        request_id,
        http_method = %http_method,
        path,
        method = info.method.as_deref().unwrap_or("-"),
        tool = info.tool.as_deref().unwrap_or("-"),
        status,
        elapsed_ms,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}
