//! Database errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: r2d2::Error },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file was removed (or cannot be seen) while in use.
    #[error("the database file {path} cannot be used: {source}")]
    Gone {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("the database task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("PostgreSQL: {0}")]
    Postgres(Box<dyn std::error::Error + Send + Sync>),
    /// The search index next to the SQLite file could not be built.
    #[error(transparent)]
    SearchIndex(#[from] crate::sqlite::SearchIndexError),
    #[error(
        "the database {path} was written by a newer Wharf (schema version {found}, this build knows {known}); upgrade Wharf or point it at another database"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}
