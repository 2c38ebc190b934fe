//! The apps `wharf serve` and `wharf stdio` offer, by `app.profile`: the
//! catalog (search and SQL over the database, tools from `[[tools]]`), the
//! built-in test tools, or the gateway's federated upstreams; or a program's
//! own (`run_app`).

pub(crate) mod builtin;
pub(crate) mod catalog;
pub(crate) mod config_tools;
pub(crate) mod gateway;

use std::sync::Arc;

use anyhow::Context;
use wharf_core::App;

use crate::config::{Config, Profile, SessionStoreKind};

/// What serving needs: the app, the database when the app or the session
/// store uses one, and the gateway when the app is its upstreams.
pub(crate) struct Built {
    pub(crate) app: Arc<App>,
    pub(crate) db: Option<wharf_catalog::Database>,
    pub(crate) gateway: Option<Arc<wharf_gateway::Gateway>>,
    /// The gateway's audit trail writer, to flush before the process ends.
    pub(crate) audit: Option<Arc<crate::audit::AuditWriter>>,
}

/// The app to serve (the program's own, or the configured profile's). `seed`
/// loads the sample catalog into an empty database. Every app seals
/// `requestState` with `server.state_key` when it is set.
pub(crate) async fn build(
    config: &Config,
    given: Option<Arc<App>>,
    seed: bool,
) -> anyhow::Result<Built> {
    let needs_db = given.is_none() && config.profile == Profile::Catalog;
    let db = if needs_db
        || (!config.http.stateless && config.session_store == SessionStoreKind::Database)
    {
        Some(crate::database::open(config).await?)
    } else {
        None
    };
    if let Some(app) = given {
        use_state_key(config, &app)?;
        return Ok(Built {
            app,
            db,
            gateway: None,
            audit: None,
        });
    }
    let app = match config.profile {
        Profile::Catalog => {
            let (catalog, metrics) = db
                .as_ref()
                .expect("opened above")
                .measured_catalog(config.sql_limits);
            catalog::app(
                catalog,
                metrics,
                &config.tools,
                config.tool_timeout,
                config.sql_limits.max_rows,
                &config.catalog_security,
                seed,
            )
            .await?
        }
        Profile::Builtin => {
            builtin::app(config.tool_timeout).context("the app's tools are not valid")?
        }
        Profile::Gateway => {
            // The audit trail lives in the database (on unless the file says `audit: false`).
            // So does the token vault of upstreams that sign users in.
            let audited = gateway::load(config)
                .is_ok_and(|g| g.audit.enabled || g.upstreams.iter().any(|u| u.oauth.is_some()));
            let db = match db {
                None if audited => Some(crate::database::open(config).await?),
                db => db,
            };
            let (gateway, audit) = gateway::start_audited(config, db.as_ref()).await?;
            let app = gateway.app();
            use_state_key(config, &app)?;
            return Ok(Built {
                app,
                db,
                gateway: Some(gateway),
                audit,
            });
        }
    };
    let app = Arc::new(app);
    use_state_key(config, &app)?;
    Ok(Built {
        app,
        db,
        gateway: None,
        audit: None,
    })
}

fn use_state_key(config: &Config, app: &App) -> anyhow::Result<()> {
    if let Some(key) = &config.state_key {
        app.use_state_key(key.expose().as_bytes())
            .map_err(|e| anyhow::anyhow!("server.state_key / WHARF_STATE_KEY: {e}"))?;
    }
    Ok(())
}
