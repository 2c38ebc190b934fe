//! Wharf's data: the database and what lives in it.
//!
//! - [`Database`]: the embedded SQLite database (WAL, a connection pool,
//!   versioned migrations);
//! - [`SqliteSessionStore`]: rmcp's `SessionStore` on that database, so legacy
//!   sessions survive restarts and move between replicas sharing the file;
//! - [`Catalog`] and [`SqliteCatalog`]: search and retrieval, imports, read-only SQL;
//! - [`tools`]: the catalog's MCP tools, built on `wharf-core`, and [`widget`], the
//!   HTML that renders their results in ChatGPT and MCP Apps hosts.
//!
//! SQL here binds every value as a parameter; no statement is built from input.

mod catalog;
mod cursor;
mod db;
mod error;
pub mod import;
pub mod instrumented;
mod item;
mod postgres;
mod sample;
mod search_index;
mod session_store;
mod sqlite;
pub mod tools;
mod widget;

pub use catalog::{
    Catalog, CatalogError, Column, Hit, ImportSummary, MAX_LIMIT, QueryResult, SearchPage,
    SearchQuery, seed_if_empty,
};
pub use db::Database;
pub use error::DbError;
pub use instrumented::{DbMetrics, PoolUse};
pub use item::Item;
pub use postgres::{PgCatalog, PgDatabase, PgSessionStore};
pub use sample::sample_items;
pub use session_store::SqliteSessionStore;
pub use sqlite::{SqlLimits, SqliteCatalog};
pub use widget::{CATALOG_HTML, CATALOG_WIDGET_URI, widget};
