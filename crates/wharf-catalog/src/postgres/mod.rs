//! The PostgreSQL backend: the same files as `sqlite/` (database, catalog,
//! sessions, audit, tokens), for when one machine is not enough.

mod audit;
mod catalog;
pub(crate) mod database;
mod oauth;
mod sessions;
mod tokens;

pub use audit::PgAuditLog;
pub use catalog::PgCatalog;
pub use database::PgDatabase;
pub use oauth::PgOAuthTable;
pub use sessions::PgSessionStore;
pub use tokens::PgTokenTable;
