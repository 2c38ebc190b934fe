//! Graceful drain: count requests in flight, and close streams only after them.
//!
//! On SIGTERM `/ready` turns 503 at once; after `delay` (zero by default) the
//! listener stops accepting, but a request already accepted must finish: its
//! response body is still being written (a tool result on an SSE stream, say). Long-lived streams (the legacy `GET /sse`, the
//! session GET stream) never finish by themselves, so they are closed through
//! `streams` once every ordinary request is done, or when the grace period ends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Shared drain state.
#[derive(Debug, Default)]
pub struct Drain {
    inflight: AtomicUsize,
    idle: Notify,
    draining: AtomicBool,
    /// Cancelled to end every long-lived stream (rmcp sessions, legacy SSE).
    pub streams: CancellationToken,
    /// Cancelled when the grace period ends: requests still running are
    /// answered 503 then, so their clients know to retry elsewhere.
    grace_over: CancellationToken,
    /// How long `/ready` answers 503 before the listener stops accepting.
    pub delay: Duration,
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A drain that keeps accepting for `delay` after readiness turns false.
    pub fn with_delay(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// The grace period is over: answer what is still running with 503.
    pub fn end_grace(&self) {
        self.grace_over.cancel();
    }

    /// Resolves when no counted request is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.inflight() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn guard(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.clone())
    }
}

struct InflightGuard(Arc<Drain>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Count every request but the long-lived GET streams, until its body is sent.
/// A request still without an answer when the grace period ends is answered
/// 503 with a JSON-RPC error, rather than left to a closed connection.
pub async fn track(State(drain): State<Arc<Drain>>, request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    let guard = drain.guard();
    let response = tokio::select! {
        response = next.run(request) => response,
        () = drain.grace_over.cancelled() => shutting_down(),
    };
    response.map(|body| {
        Body::new(Counted {
            body,
            _guard: guard,
        })
    })
}

/// The answer of a request cut by the end of the grace period.
fn shutting_down() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32000, "message": "the server is shutting down and could not finish this request in its grace period; retry it"}
    });
    let mut response = (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(body),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    headers.insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// A response body that holds its request's place in the count until it is
/// sent or dropped. It passes the body's size on, so a JSON answer keeps its
/// `Content-Length` instead of being sent chunked.
struct Counted {
    body: Body,
    _guard: InflightGuard,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
