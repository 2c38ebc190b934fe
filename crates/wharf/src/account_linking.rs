//! Account linking in a running process: the authorization server built on
//! the configured database, the resource-server side pointed at it (its keys
//! without an HTTP round trip, its revocations), the identity provider's
//! reachability shown on `/ready`, and expired records pruned.
//!
//! The provider being down is shown on `/ready` but does not fail it: every
//! replica shares the provider, so failing readiness would take them all out
//! of the balancer and stop tokens already issued, which need no provider.

use std::{sync::Arc, time::Duration};

use wharf_authz::AuthServer;

use crate::config::Config;

/// How often the provider's reachability is checked (a failed sign-in also
/// updates it at once), and expired records pruned.
const PROVIDER_CHECK_EVERY: Duration = Duration::from_secs(30);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub(crate) async fn start(
    settings: &wharf_authz::Settings,
    registry: &prometheus::Registry,
    db: Option<wharf_catalog::Database>,
    config: &Config,
    http: &mut wharf_http::HttpConfig,
) -> anyhow::Result<Arc<AuthServer>> {
    let db = match db {
        Some(db) => db,
        None => crate::database::open(config).await?,
    };
    let store = Arc::new(crate::database::StoredRecords(db.oauth_table()));
    let authz = AuthServer::new(settings.clone(), store, registry);
    if let Some(oauth) = http.auth.oauth.as_mut() {
        let (keys, revoked) = (authz.clone(), authz.clone());
        oauth.own = Some(wharf_http::oauth::OwnIssuer {
            issuer: settings.issuer.clone(),
            keys: Arc::new(move || {
                let a = keys.clone();
                Box::pin(async move { a.jwks().await.map_err(|e| e.to_string()) })
            }),
            revoked: Arc::new(move |sid| {
                let a = revoked.clone();
                Box::pin(async move { a.is_revoked(&sid).await })
            }),
        });
    }
    {
        let authz = authz.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROVIDER_CHECK_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = authz.check_provider().await {
                    tracing::warn!(error = %e, "the identity provider does not answer; sign-ins fail until it does");
                }
            }
        });
    }
    let shown = authz.clone();
    http.ready_details.push(Arc::new(move || {
        ("identity_provider", shown.provider_status())
    }));
    {
        let authz = authz.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                match authz.prune().await {
                    Ok(n) if n > 0 => {
                        tracing::info!(records = n, "pruned expired authorization records")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune authorization records"),
                }
            }
        });
    }
    tracing::info!(issuer = %settings.issuer, provider = ?settings.provider.preset, "account linking is on");
    Ok(authz)
}
