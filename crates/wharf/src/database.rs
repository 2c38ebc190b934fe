//! The database Wharf was configured with, SQLite or PostgreSQL, behind one face:
//! the catalog, the session store and its heartbeat.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use rmcp::transport::streamable_http_server::session::SessionStore;
use wharf_catalog::{
    Catalog, Database, DbMetrics, PgCatalog, PgDatabase, PgSessionStore, SqlLimits, SqliteCatalog,
    SqliteSessionStore,
};

use crate::config::{Config, DatabaseTarget};

#[derive(Clone)]
pub enum Db {
    Sqlite(Database),
    Postgres(PgDatabase),
}

impl Db {
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.database {
            DatabaseTarget::Sqlite(path) => Ok(Self::Sqlite(
                Database::open_sqlite(path).await.with_context(|| {
                    format!(
                        "cannot open the database {} (database.url / WHARF_DATABASE)",
                        path.display()
                    )
                })?,
            )),
            DatabaseTarget::Postgres(url) => Ok(Self::Postgres(
                PgDatabase::connect(url.expose(), config.database_pool)
                    .await
                    .context(
                        "cannot use the PostgreSQL database (database.url / WHARF_DATABASE)",
                    )?,
            )),
        }
    }

    /// Whether the database answers, for `/ready`.
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Self::Sqlite(db) => db.ping().await.map_err(|e| format!("database: {e}")),
            Self::Postgres(db) => db.ping().await.map_err(|e| format!("database: {e}")),
        }
    }

    pub fn catalog(&self, limits: SqlLimits) -> Arc<dyn Catalog> {
        match self {
            Self::Sqlite(db) => Arc::new(SqliteCatalog::new(db.clone(), limits)),
            Self::Postgres(db) => Arc::new(PgCatalog::new(db.clone(), limits)),
        }
    }

    /// The catalog, measured: its metrics (query latency, errors, pool use) go
    /// to the app's registry through the returned collector.
    pub fn measured_catalog(&self, limits: SqlLimits) -> (Arc<dyn Catalog>, DbMetrics) {
        let (system, probe): (_, wharf_catalog::instrumented::PoolProbe) = match self {
            Self::Sqlite(db) => {
                let db = db.clone();
                ("sqlite", Arc::new(move || db.pool_use()))
            }
            Self::Postgres(db) => {
                let db = db.clone();
                ("postgresql", Arc::new(move || db.pool_use()))
            }
        };
        let metrics = DbMetrics::new(probe);
        let catalog =
            wharf_catalog::instrumented::instrument(self.catalog(limits), system, &metrics);
        (catalog, metrics)
    }

    pub fn session_store(&self, idle: Duration) -> Store {
        match self {
            Self::Sqlite(db) => Store::Sqlite(SqliteSessionStore::new(db.clone(), idle)),
            Self::Postgres(db) => Store::Postgres(PgSessionStore::new(db.clone(), idle)),
        }
    }
}

/// A session store on either database.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteSessionStore),
    Postgres(PgSessionStore),
}

impl Store {
    pub fn as_rmcp(&self) -> Arc<dyn SessionStore> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// Mark `ids` as used now, then delete expired sessions; how many expired.
    pub async fn heartbeat(&self, ids: Vec<String>) -> Result<usize, String> {
        match self {
            Self::Sqlite(s) => {
                s.touch(ids).await.map_err(|e| e.to_string())?;
                s.sweep().await.map_err(|e| e.to_string())
            }
            Self::Postgres(s) => {
                s.touch(ids).await.map_err(|e| e.to_string())?;
                s.sweep().await.map_err(|e| e.to_string())
            }
        }
    }
}
