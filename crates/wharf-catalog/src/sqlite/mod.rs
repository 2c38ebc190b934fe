//! The embedded SQLite backend: the same files as `postgres/` (database,
//! catalog, sessions, audit, tokens), plus the search index kept next to the file.

mod audit;
mod catalog;
pub(crate) mod database;
mod oauth;
mod search_index;
mod sessions;
mod tokens;

pub use audit::SqliteAuditLog;
pub use catalog::SqliteCatalog;
pub use database::{SqliteDatabase, SqliteSettings};
pub use oauth::SqliteOAuthTable;
pub use search_index::{IndexCause, SearchIndexError};
pub use sessions::SqliteSessionStore;
pub use tokens::SqliteTokenTable;
