//! The PostgreSQL backend: the same files as `sqlite/` (database, catalog,
//! sessions), for when one machine is not enough.

mod catalog;
pub(crate) mod database;
mod sessions;

pub use catalog::PgCatalog;
pub use database::PgDatabase;
pub use sessions::PgSessionStore;
