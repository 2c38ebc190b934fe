//! The catalog against real databases: a SQLite file always, and PostgreSQL when
//! `TEST_POSTGRES_URL` names a server (`cargo xtask ci` starts one). Every test
//! runs the same checks on every backend, each on the sample catalog.

// Tests measure wall-clock time and hold plain mutexes; the runtime rules
// (clippy.toml) are for the code under test.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod audit;
mod oauth;
mod search;
mod sessions;
mod sql;
mod texts;
mod tokens;
mod untrusted;
mod upsert;

use std::{sync::Arc, time::Duration};

use tokio::sync::OnceCell;
use wharf_catalog::{Catalog, PgCatalog, PgDatabase, SqlLimits, SqliteCatalog, SqliteDatabase};

/// One backend loaded with the sample catalog (12,522 items).
pub struct Fixture {
    pub name: &'static str,
    pub catalog: Arc<dyn Catalog>,
    /// For a second handle on the same data, as another replica would open.
    pub reopen: Reopen,
    _dir: Option<tempfile::TempDir>,
}

pub enum Reopen {
    Sqlite(std::path::PathBuf),
    SqliteFts5(std::path::PathBuf),
    Postgres(String),
}

impl Fixture {
    pub async fn second_handle(&self, limits: SqlLimits) -> Arc<dyn Catalog> {
        match &self.reopen {
            Reopen::Sqlite(path) => Arc::new(SqliteCatalog::new(
                SqliteDatabase::open(path).await.unwrap(),
                limits,
            )),
            Reopen::SqliteFts5(path) => Arc::new(SqliteCatalog::without_search_index(
                SqliteDatabase::open(path).await.unwrap(),
                limits,
            )),
            Reopen::Postgres(url) => Arc::new(PgCatalog::new(
                PgDatabase::connect(url, 4).await.unwrap(),
                limits,
            )),
        }
    }
}

pub const SAMPLE_SIZE: u64 = 12_522;

/// SQLite searched through its index (built before the tests), SQLite searched
/// with FTS5 alone, and PostgreSQL when there is one.
pub async fn fixtures(limits: SqlLimits) -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let sqlite = SqliteCatalog::new(SqliteDatabase::open(&path).await.unwrap(), limits);
    wharf_catalog::seed_if_empty(&sqlite, wharf_catalog::sample_items)
        .await
        .unwrap();
    sqlite.update_search_index().await.unwrap();
    assert!(
        sqlite.search_index_is_current().await.unwrap(),
        "index built"
    );
    let fts5_dir = tempfile::tempdir().unwrap();
    let fts5_path = fts5_dir.path().join("catalog.db");
    let fts5 = SqliteCatalog::without_search_index(
        SqliteDatabase::open(&fts5_path).await.unwrap(),
        limits,
    );
    wharf_catalog::seed_if_empty(&fts5, wharf_catalog::sample_items)
        .await
        .unwrap();
    let mut out = vec![
        Fixture {
            name: "sqlite",
            catalog: Arc::new(sqlite),
            reopen: Reopen::Sqlite(path),
            _dir: Some(dir),
        },
        Fixture {
            name: "sqlite-fts5",
            catalog: Arc::new(fts5),
            reopen: Reopen::SqliteFts5(fts5_path),
            _dir: Some(fts5_dir),
        },
    ];
    if let Ok(admin) = std::env::var("TEST_POSTGRES_URL") {
        let url = fresh_postgres_database(&admin).await;
        let catalog = PgCatalog::new(PgDatabase::connect(&url, 4).await.unwrap(), limits);
        assert_eq!(catalog.count().await.unwrap(), SAMPLE_SIZE);
        out.push(Fixture {
            name: "postgres",
            catalog: Arc::new(catalog),
            reopen: Reopen::Postgres(url),
            _dir: None,
        });
    } else {
        eprintln!("PostgreSQL not tested: set TEST_POSTGRES_URL (cargo xtask ci does)");
    }
    out
}

fn with_database(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{name}")
}

/// A template database loaded with the sample once per test run; each test gets
/// a copy (a file copy in PostgreSQL, much faster than loading 12,522 rows).
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn fresh_postgres_database(admin: &str) -> String {
    let template = TEMPLATE
        .get_or_init(|| async {
            let name = format!("wharf_template_{}", std::process::id());
            admin_exec(admin, &format!("CREATE DATABASE {name}")).await;
            let db = PgDatabase::connect(&with_database(admin, &name), 2)
                .await
                .unwrap();
            let catalog = PgCatalog::new(db, SqlLimits::default());
            wharf_catalog::seed_if_empty(&catalog, wharf_catalog::sample_items)
                .await
                .unwrap();
            drop(catalog);
            name
        })
        .await;
    let name = format!("wharf_test_{}", uuid::Uuid::new_v4().simple());
    // A template must have no sessions while it is copied.
    admin_exec(
        admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}'"
        ),
    )
    .await;
    admin_exec(
        admin,
        &format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await;
    with_database(admin, &name)
}

/// A new, empty PostgreSQL database on the `TEST_POSTGRES_URL` server.
pub async fn empty_postgres_database() -> String {
    let admin = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
    let name = format!("wharf_empty_{}", uuid::Uuid::new_v4().simple());
    admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
    with_database(&admin, &name)
}

async fn admin_exec(admin: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub fn quick_limits() -> SqlLimits {
    SqlLimits {
        timeout: Duration::from_millis(300),
        max_rows: 5,
        max_bytes: 64 * 1024,
    }
}
