//! The catalog against a real SQLite file loaded with the sample catalog.

mod search;
mod sql;
mod upsert;

use std::time::Duration;

use wharf_catalog::{Catalog, Database, SqlLimits, SqliteCatalog};

/// A catalog in a temporary file, loaded with the sample (12,522 items).
pub async fn sample_catalog(limits: SqlLimits) -> (tempfile::TempDir, SqliteCatalog) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_sqlite(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    let catalog = SqliteCatalog::new(db, limits);
    let loaded = wharf_catalog::seed_if_empty(&catalog, wharf_catalog::sample_items)
        .await
        .unwrap();
    assert_eq!(loaded, Some(catalog.count().await.unwrap() as usize));
    (dir, catalog)
}

pub fn quick_limits() -> SqlLimits {
    SqlLimits {
        timeout: Duration::from_millis(300),
        max_rows: 5,
        max_bytes: 64 * 1024,
    }
}
