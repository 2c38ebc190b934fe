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
    response::Response,
};
use futures::StreamExt;
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
pub async fn track(State(drain): State<Arc<Drain>>, request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    let guard = drain.guard();
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _held = &guard;
        chunk
    }));
    Response::from_parts(parts, body)
}
