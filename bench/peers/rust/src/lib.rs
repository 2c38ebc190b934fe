//! What every benchmark peer shares: the port from the command line, TCP_NODELAY.

/// `127.0.0.1:<first argument>`.
pub fn addr() -> std::net::SocketAddr {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: <peer> PORT");
    ([127, 0, 0, 1], port).into()
}

/// Serve `router` on `addr()` with TCP_NODELAY, like Wharf.
pub async fn serve(router: axum::Router) {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(addr())
        .await
        .expect("bind")
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, router).await.expect("serve");
}
