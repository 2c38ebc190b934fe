//! The database Wharf was configured with, SQLite or PostgreSQL, behind one
//! face: opening it, its readiness, its catalog (measured), its session store.
//! The one place that chooses between the backends; everything above it sees
//! a [`Catalog`] and a [`SessionTable`].

use std::{path::PathBuf, sync::Arc, time::Duration};

use crate::{
    Catalog, CatalogError, DbMetrics, PgCatalog, PgDatabase, PgSessionStore, SqlLimits,
    SqliteCatalog, SqliteDatabase, SqliteSessionStore, SqliteSettings, sessions::SessionTable,
};

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (it may hold a password: never shown).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "SQLite file {}", p.display()),
            Self::Postgres(_) => f.write_str("PostgreSQL (URL hidden)"),
        }
    }
}

/// How the database is used.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseSettings {
    /// Connections in the PostgreSQL pool (SQLite's pools are fixed).
    pub pool_size: usize,
    pub sqlite: SqliteSettings,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            pool_size: 16,
            sqlite: SqliteSettings::default(),
        }
    }
}

/// An open database, either backend.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqliteDatabase),
    Postgres(PgDatabase),
}

impl Database {
    /// Open (or create) the database at `url` and bring its schema up to date.
    pub async fn open(url: &DatabaseUrl, settings: DatabaseSettings) -> Result<Self, CatalogError> {
        match url {
            DatabaseUrl::Sqlite(path) => Ok(Self::Sqlite(
                SqliteDatabase::open_with(path, settings.sqlite).await?,
            )),
            DatabaseUrl::Postgres(url) => Ok(Self::Postgres(
                PgDatabase::connect(url, settings.pool_size).await?,
            )),
        }
    }

    /// Whether the database can be used now, for `/ready`.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        match self {
            Self::Sqlite(db) => Ok(db.ping().await?),
            Self::Postgres(db) => db.ping().await,
        }
    }

    /// The catalog in this database.
    pub fn catalog(&self, limits: SqlLimits) -> Arc<dyn Catalog> {
        match self {
            Self::Sqlite(db) => Arc::new(SqliteCatalog::new(db.clone(), limits)),
            Self::Postgres(db) => Arc::new(PgCatalog::new(db.clone(), limits)),
        }
    }

    /// The catalog, measured: its metrics (operation latency, errors, pool
    /// use) go to the app's registry through the returned collector.
    pub fn measured_catalog(&self, limits: SqlLimits) -> (Arc<dyn Catalog>, DbMetrics) {
        let (system, probe): (_, crate::instrumented::PoolProbe) = match self {
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
        let catalog = crate::instrumented::instrument(self.catalog(limits), system, &metrics);
        (catalog, metrics)
    }

    /// The gateway's audit trail in this database.
    pub fn audit_log(&self) -> Arc<dyn crate::audit::AuditLog> {
        match self {
            Self::Sqlite(db) => Arc::new(crate::sqlite::SqliteAuditLog::new(db.clone())),
            Self::Postgres(db) => Arc::new(crate::postgres::PgAuditLog::new(db.clone())),
        }
    }

    /// The gateway's token vault in this database (rows sealed by the gateway).
    pub fn token_table(&self) -> Arc<dyn crate::tokens::TokenTable> {
        match self {
            Self::Sqlite(db) => Arc::new(crate::sqlite::SqliteTokenTable::new(db.clone())),
            Self::Postgres(db) => Arc::new(crate::postgres::PgTokenTable::new(db.clone())),
        }
    }

    /// The authorization server's records in this database.
    pub fn oauth_table(&self) -> Arc<dyn crate::oauth::OAuthTable> {
        match self {
            Self::Sqlite(db) => Arc::new(crate::sqlite::SqliteOAuthTable::new(db.clone())),
            Self::Postgres(db) => Arc::new(crate::postgres::PgOAuthTable::new(db.clone())),
        }
    }

    /// Legacy sessions stored in this database, expiring after `idle`.
    pub fn session_store(&self, idle: Duration) -> Arc<dyn SessionTable> {
        match self {
            Self::Sqlite(db) => Arc::new(SqliteSessionStore::new(db.clone(), idle)),
            Self::Postgres(db) => Arc::new(PgSessionStore::new(db.clone(), idle)),
        }
    }
}
