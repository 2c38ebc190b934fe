//! `wharf serve` and `wharf gateway`: the app on HTTP, with everything around
//! it that only a running process has: the database's session store and its
//! heartbeat, the listeners (main and admin), the descriptor limit, signals
//! (SIGTERM/SIGINT drain, SIGHUP reloads the TLS certificate) and the drain.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wharf_core::App;

use crate::config::{Config, SessionStoreKind};

/// The session store's heartbeat: how often live sessions are marked used and
/// expired ones swept, as a fraction of the idle timeout.
const HEARTBEAT_FRACTION: u32 = 4;

pub(crate) async fn serve(
    config: Config,
    app: Option<Arc<App>>,
    process_metrics: prometheus::Registry,
) -> anyhow::Result<()> {
    let crate::apps::Built {
        app,
        db,
        gateway,
        audit,
    } = crate::apps::build(&config, app, true).await?;
    let mut http = config.http.clone();
    http.connections = fit_to_descriptors(http.connections);
    http.process_metrics = Some(process_metrics);
    if let Some(db) = db.clone() {
        http.ready_checks.push(Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await.map_err(|e| format!("database: {e}").into()) })
        }));
    }
    let sign_in_pages = gateway.as_ref().and_then(crate::sign_in::routes);
    if let Some(gateway) = gateway {
        http.endpoints = gateway.endpoints();
        // Ready by the upstreams' health (gateway.ready_when); their states shown either way.
        let when = config.gateway_ready_when;
        let g = gateway.clone();
        http.ready_checks.push(Arc::new(move || {
            let verdict = g.readiness(when).0;
            Box::pin(async move { verdict.map_err(Into::into) })
        }));
        http.ready_details
            .push(Arc::new(move || ("upstreams", gateway.readiness(when).1)));
    }
    let tls = match &config.tls {
        Some(files) => Some(
            wharf_http::tls::TlsConfig::new(files.clone())
                .map_err(|e| anyhow::anyhow!("HTTPS (server.tls_cert / server.tls_key): {e}"))?,
        ),
        None => None,
    };
    let authz = match &config.account_linking {
        Some(settings) => Some(
            crate::account_linking::start(settings, app.registry(), db.clone(), &config, &mut http)
                .await?,
        ),
        None => None,
    };
    let mut store = None;
    if let Some(db) =
        db.filter(|_| !http.stateless && config.session_store == SessionStoreKind::Database)
    {
        let s = db.session_store(http.session_idle_timeout);
        http.session_store = Some(s.clone());
        http.session_owners = Some(Arc::new(crate::database::StoredOwners(s.clone())));
        store = Some(s);
    }
    http.pages.extend(sign_in_pages);
    http.pages.extend(authz.map(wharf_authz::routes));
    let server = wharf_http::build(app.clone(), &http)?;
    if let Some(v) = &server.oauth {
        // Load the issuer's keys now; if the issuer is down, /ready says so and the
        // cache tries again (spaced) when tokens or probes arrive.
        if let Err(e) = v.jwks().refresh().await {
            tracing::warn!(error = %e, "cannot load the JWKS yet; /ready stays 503 until it loads");
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.listen / WHARF_LISTEN)",
                config.listen
            )
        })?;
    let shutdown = CancellationToken::new();
    if let Some(store) = store {
        tokio::spawn(heartbeat(
            store,
            server.sessions.clone(),
            http.session_idle_timeout,
            shutdown.clone(),
        ));
    }
    tokio::spawn(signals(shutdown.clone()));
    if let Some(addr) = config.admin_listen {
        let admin = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (server.admin_listen / WHARF_ADMIN_LISTEN)")
        })?;
        tracing::info!(listen = %addr, "serving /health, /ready and /metrics on the admin listener");
        let serving = server.admin_serving();
        // Probes must keep answering while the main listener drains, so the admin
        // listener stops only when the process exits.
        tokio::spawn(async move {
            let never = CancellationToken::new();
            if let Err(e) = wharf_http::serve(admin, serving, never, Duration::ZERO).await {
                tracing::error!(error = %e, "the admin listener failed");
            }
        });
    }
    tracing::info!(
        listen = %listener.local_addr()?,
        tools = app.offer().tools().count(),
        stateless = http.stateless,
        auth = if http.auth.oauth.is_some() { "oauth" } else if http.auth.api_keys.is_empty() { "none" } else { "api_keys" },
        api_keys = http.auth.api_keys.len(),
        rate_limit = http.rate_limit.enabled,
        https = config.tls.is_some(),
        "serving MCP at /mcp"
    );
    match tls {
        Some(tls) => {
            tokio::spawn(reload_on_sighup(tls.clone()));
            wharf_http::serve_tls(
                listener,
                tls,
                server.serving(),
                shutdown,
                config.shutdown_grace,
            )
            .await?;
        }
        None => {
            wharf_http::serve(listener, server.serving(), shutdown, config.shutdown_grace).await?;
        }
    }
    if let Some(audit) = audit {
        audit.flush(AUDIT_FLUSH).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping gateway waits for its last audit records to be written.
pub(crate) const AUDIT_FLUSH: Duration = Duration::from_secs(5);

/// Descriptors kept for what is not a client connection: database files and
/// connections, the search index, log files, upstream servers.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raise the descriptor limit to what the system allows (as Go's runtime does),
/// and keep `server.max_connections` under it with room for everything else,
/// so that connections run out before descriptors do (and `/health`, the
/// database and the logs keep working).
fn fit_to_descriptors(mut limits: wharf_http::ConnectionLimits) -> wharf_http::ConnectionLimits {
    let wanted = limits.max_connections as u64 + RESERVED_DESCRIPTORS;
    let available = match rlimit::increase_nofile_limit(wanted) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit");
            return limits;
        }
    };
    if available < wanted {
        let fitted = available.saturating_sub(RESERVED_DESCRIPTORS).max(16) as usize;
        tracing::warn!(
            max_connections = limits.max_connections,
            descriptors = available,
            fitted,
            "server.max_connections lowered to fit the file-descriptor limit (raise it with `ulimit -n` or the container's nofile limit)"
        );
        limits.max_connections = fitted;
    }
    limits
}

/// Keep the store in step with the sessions this process holds.
async fn heartbeat(
    store: Arc<dyn wharf_catalog::SessionTable>,
    sessions: Arc<wharf_http::CappedSessionManager>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval((idle / HEARTBEAT_FRACTION).max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ids = sessions
            .ids()
            .await
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        match wharf_catalog::heartbeat(store.as_ref(), ids).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "swept expired sessions"),
            Err(e) => tracing::warn!(error = %e, "session store heartbeat failed"),
        }
    }
}

/// Cancel `shutdown` on SIGTERM or SIGINT.
/// On SIGHUP, read the certificate and key again (after a renewal); new
/// connections use them, open ones keep theirs. A bad file keeps the old pair.
async fn reload_on_sighup(tls: wharf_http::tls::TlsConfig) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; certificate reloads need a restart");
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate"),
                Err(e) => tracing::warn!(error = %e, "SIGHUP: kept the old TLS certificate"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(tls);
}

async fn signals(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    shutdown.cancel();
}
