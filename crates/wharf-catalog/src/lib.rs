//! Wharf's data: the database and what lives in it.
//!
//! - [`Database`]: the configured database, SQLite (`sqlite/`: embedded, one
//!   file, WAL, versioned migrations) or PostgreSQL (`postgres/`), behind one
//!   face; both backends have the same files (database, catalog, sessions);
//! - [`SessionTable`]: rmcp's `SessionStore` on that database under one expiry
//!   rule (`sessions`), so legacy sessions survive restarts and move between
//!   replicas;
//! - [`AuditLog`]: the gateway's audit trail (`audit`), and [`TokenTable`], its
//!   token vault (`tokens`), and [`OAuthTable`], the authorization server's
//!   records (`oauth`), on either backend;
//! - [`Catalog`]: search and retrieval, imports, read-only SQL (bounded by
//!   `untrusted_sql` and each backend's own guards);
//! - [`tools`]: the catalog's MCP tools, built on `wharf-core`, and [`widget`],
//!   the HTML that renders their results in ChatGPT and MCP Apps hosts.
//!
//! SQL here binds every value as a parameter; no statement is built from input.

pub mod audit;
mod catalog;
mod cursor;
mod database;
mod error;
pub mod import;
pub mod instrumented;
mod item;
pub mod oauth;
mod postgres;
mod sample;
mod sessions;
mod sqlite;
pub mod tokens;
pub mod tools;
mod untrusted_sql;
mod widget;

pub use audit::AuditLog;
pub use catalog::{
    Catalog, CatalogError, Column, Hit, ImportSummary, MAX_LIMIT, QueryResult, SearchPage,
    SearchQuery, SqlDialect, SqlLimits, seed_if_empty,
};
pub use cursor::MAX_OFFSET;
pub use database::{Database, DatabaseSettings, DatabaseUrl};
pub use error::DbError;
pub use instrumented::{DbMetrics, PoolUse};
pub use item::Item;
pub use oauth::{OAuthRow, OAuthTable, Taken};
pub use postgres::{PgAuditLog, PgCatalog, PgDatabase, PgOAuthTable, PgSessionStore, PgTokenTable};
pub use sample::sample_items;
pub use sessions::{SessionTable, heartbeat};
pub use sqlite::{
    IndexCause, SearchIndexError, SqliteAuditLog, SqliteCatalog, SqliteDatabase, SqliteOAuthTable,
    SqliteSessionStore, SqliteSettings, SqliteTokenTable,
};
pub use tokens::TokenTable;
pub use widget::{CATALOG_HTML, CATALOG_WIDGET_URI, widget};
