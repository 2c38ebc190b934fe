//! A cap on open SSE streams (`server.max_sse_streams`). Each answer whose body
//! is an event stream holds one permit until the stream ends or the client
//! goes away; past the cap the answer is 503 with `Retry-After`, before any
//! event is sent. Every transport's streams count: 2025-x session streams
//! (GET and streamed POST answers), legacy `/sse`, and `/mcp/sse`.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use tokio::sync::Semaphore;

/// The permits, shared with `/metrics` (open streams = max − available).
#[derive(Clone, Debug)]
pub struct StreamCap {
    pub permits: Arc<Semaphore>,
    pub max: usize,
}

impl StreamCap {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

pub(crate) async fn cap(State(cap): State<StreamCap>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let Ok(permit) = cap.permits.clone().try_acquire_owned() else {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": null,
            "error": {"code": -32000, "message": format!("the server has its maximum of {} open streams (server.max_sse_streams); retry shortly", cap.max)}
        });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let (parts, body) = response.into_parts();
    // The permit lives as long as the stream: dropped when it ends or is dropped.
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
