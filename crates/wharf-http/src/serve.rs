//! Running the router on a socket, and stopping it without losing a request.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    serve::{Listener, ListenerExt},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::drain::Drain;

/// How long the connections get, after streams are closed, to finish writing.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Serve until `shutdown` is cancelled, then drain: stop accepting, let every
/// request in flight finish (up to `grace`), close the long-lived streams, return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    drain: Arc<Drain>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    // Without TCP_NODELAY, each small SSE write in session mode waits ~40 ms for
    // the peer's delayed ACK (Nagle's algorithm).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    run(listener, router, drain, shutdown, grace).await
}

/// [`serve`] over HTTPS: `listener`'s connections complete a TLS handshake first
/// (TCP_NODELAY is set by the TLS listener).
pub async fn serve_tls(
    listener: crate::tls::TlsListener,
    router: Router,
    drain: Arc<Drain>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    run(listener.tap_io(|_| {}), router, drain, shutdown, grace).await
}

async fn run<L>(
    listener: L,
    router: Router,
    drain: Arc<Drain>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    // On shutdown, readiness turns false at once; the listener keeps accepting
    // for `drain.delay` (so load balancers see /ready fail and stop routing here
    // before connections are refused), then stops.
    let stop_accepting = CancellationToken::new();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
    let mut server = tokio::spawn(async move { server.await });

    tokio::select! {
        result = &mut server => return result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        () = shutdown.cancelled() => {}
    }
    drain.start();
    if !drain.delay.is_zero() {
        tracing::info!(
            delay_ms = drain.delay.as_millis() as u64,
            "not ready; still accepting until load balancers notice"
        );
        tokio::time::sleep(drain.delay).await;
    }
    stop_accepting.cancel();
    tracing::info!(
        inflight = drain.inflight(),
        grace_ms = grace.as_millis() as u64,
        "draining"
    );
    if tokio::time::timeout(grace, drain.idle()).await.is_err() {
        tracing::warn!(
            inflight = drain.inflight(),
            "grace period over with requests still in flight"
        );
    }
    drain.streams.cancel();
    match tokio::time::timeout(FINAL_FLUSH, &mut server).await {
        Ok(result) => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        Err(_) => {
            server.abort();
            tracing::warn!("connections still open after drain; closing them");
            Ok(())
        }
    }
}
