//! Running the router on a socket, and stopping it without losing a request.
//!
//! The accept loop is Wharf's own rather than `axum::serve`, which has no
//! setting for what a hostile client can hold: here every connection is
//! admitted against the caps in [`Connections`] first (refused ones are closed
//! at once, so the kernel's queue does not fill), then served by hyper with
//! the deadlines of [`ConnectionLimits`] (docs/design/connections.md).
//!
//! Drain: on shutdown `/ready` fails at once; after `drain.delay` the listener
//! closes and kept-alive connections are told to close after their current
//! request; requests in flight get `grace` to finish; at the end of the grace
//! whatever is still running is answered 503 (the client knows to retry),
//! long-lived streams are closed, and the connections get a moment to flush.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{
    config::ConnectionLimits,
    connections::{Connections, Refused},
    deadlines::{Deadlined, Expired, IoDeadlines, Phase},
    drain::Drain,
    metrics::Metrics,
};

/// How long the connections get, after streams are closed, to finish writing.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// After a failed `accept` (out of descriptors, say), wait this long before the
/// next, rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What [`serve`] runs: a router, and what guards its connections.
#[derive(Clone)]
pub struct Serving {
    pub(crate) router: Router,
    pub(crate) drain: Arc<Drain>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) limits: ConnectionLimits,
    pub(crate) metrics: Option<Metrics>,
}

impl Serving {
    /// The same, with the router changed by `f` (a test's extra layer, say).
    pub fn map_router(mut self, f: impl FnOnce(Router) -> Router) -> Self {
        self.router = f(self.router);
        self
    }
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Serve until `shutdown` is cancelled, then drain (see the module's notes).
pub async fn serve(
    listener: TcpListener,
    serving: Serving,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    run(listener, None, serving, shutdown, grace).await
}

/// [`serve`] over HTTPS: each admitted connection completes a TLS handshake
/// (within [`crate::tls::HANDSHAKE_TIMEOUT`]) before hyper sees it.
pub async fn serve_tls(
    listener: TcpListener,
    tls: crate::tls::TlsConfig,
    serving: Serving,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    run(listener, Some(tls), serving, shutdown, grace).await
}

async fn run(
    listener: TcpListener,
    tls: Option<crate::tls::TlsConfig>,
    serving: Serving,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let drain = serving.drain.clone();
    tokio::select! {
        never = accept(&listener, &graceful, &serving, &tls) => match never {},
        () = shutdown.cancelled() => {}
    }
    drain.start();
    if !drain.delay.is_zero() {
        tracing::info!(
            delay_ms = drain.delay.as_millis() as u64,
            "not ready; still accepting until load balancers notice"
        );
        let _ =
            tokio::time::timeout(drain.delay, accept(&listener, &graceful, &serving, &tls)).await;
    }
    drop(listener);
    tracing::info!(
        inflight = drain.inflight(),
        grace_ms = grace.as_millis() as u64,
        "draining"
    );
    // Kept-alive connections close after the request they are serving.
    let closed = graceful.shutdown();
    tokio::pin!(closed);
    if tokio::time::timeout(grace, drain.idle()).await.is_err() {
        tracing::warn!(
            inflight = drain.inflight(),
            "grace period over with requests still in flight; answering them 503"
        );
    }
    drain.end_grace();
    drain.streams.cancel();
    if tokio::time::timeout(FINAL_FLUSH, &mut closed)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after drain; closing them");
    }
    Ok(())
}

/// Accept, admit and serve connections, for as long as it is polled.
async fn accept(
    listener: &TcpListener,
    graceful: &GracefulShutdown,
    serving: &Serving,
    tls: &Option<crate::tls::TlsConfig>,
) -> std::convert::Infallible {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let ticket = match serving.connections.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                refused(serving, why, peer);
                continue;
            }
        };
        let watcher = graceful.watcher();
        let serving = serving.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ticket = ticket;
            connection(tcp, peer, tls, serving, watcher).await;
        });
    }
}

fn refused(serving: &Serving, why: Refused, peer: SocketAddr) {
    if let Some(m) = &serving.metrics {
        m.connections_refused
            .with_label_values(&[why.label()])
            .inc();
    }
    tracing::debug!(client = %peer.ip(), reason = why.label(), "connection refused");
}

/// Serve one admitted connection to its end.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<crate::tls::TlsConfig>,
    serving: Serving,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Without TCP_NODELAY, each small SSE write in session mode waits ~40 ms for
    // the peer's delayed ACK (Nagle's algorithm).
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    match tls {
        None => http(tcp, peer, serving, watcher).await,
        Some(tls) => match tls.accept(tcp).await {
            Ok(stream) => http(stream, peer, serving, watcher).await,
            Err(e) => tracing::debug!(error = %e, client = %peer, "TLS handshake failed"),
        },
    }
}

async fn http<T>(
    io: T,
    peer: SocketAddr,
    serving: Serving,
    watcher: hyper_util::server::graceful::Watcher,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let phase = Arc::new(Phase::default());
    let io = Deadlined::new(
        io,
        phase.clone(),
        IoDeadlines {
            header: serving.limits.header_timeout,
            write: serving.limits.write_timeout,
        },
    );
    let router = serving.router.clone();
    let service_phase = phase.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        service_phase.request_started();
        request.extensions_mut().insert(ConnectInfo(peer));
        let phase = service_phase.clone();
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            Ok::<_, std::convert::Infallible>(
                response
                    .unwrap_or_else(|never| match never {})
                    .map(|body| Body::new(Finished { body, phase })),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper's only deadline: from the moment it waits for a head (a new
        // request on a kept-alive connection) to the head's end.
        .header_read_timeout(serving.limits.idle_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let outcome = watcher.watch(conn).await;
    // hyper may end a connection that timed out before its first byte as if
    // the client had closed it (`Ok`): the phase says which deadline it was.
    let phase_label = match (phase.expired(), &outcome) {
        (Some(Expired::Header), _) => Some("header"),
        (Some(Expired::Write), _) => Some("write"),
        (None, Err(e)) if e.is_timeout() => Some("idle"),
        (None, _) => None,
    };
    match (phase_label, outcome) {
        (Some(label), _) => {
            if let Some(m) = &serving.metrics {
                m.timeouts.with_label_values(&[label]).inc();
            }
            tracing::debug!(client = %peer.ip(), phase = label, "connection closed at a deadline");
        }
        (None, Err(e)) => {
            tracing::debug!(client = %peer.ip(), error = %e, "connection ended with an error")
        }
        (None, Ok(())) => {}
    }
}

/// A response body that marks its connection idle again once it is sent or
/// dropped: the bytes that follow start a new request head.
struct Finished {
    body: Body,
    phase: Arc<Phase>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.phase.request_finished();
    }
}

impl http_body::Body for Finished {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = &frame {
            this.phase.request_finished();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
