//! Wharf's data: the database and what lives in it.
//!
//! - [`Database`]: the embedded SQLite database (WAL, a connection pool,
//!   versioned migrations);
//! - [`SqliteSessionStore`]: rmcp's `SessionStore` on that database, so legacy
//!   sessions survive restarts and move between replicas sharing the file.
//!
//! SQL here binds every value as a parameter; no statement is built from input.

mod db;
mod error;
mod session_store;

pub use db::Database;
pub use error::DbError;
pub use session_store::SqliteSessionStore;
