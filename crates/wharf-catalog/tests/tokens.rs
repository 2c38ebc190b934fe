//! The token vault's table on both backends: one row per upstream and user,
//! replaced in place, the latest found by upstream, deleted per user (one
//! upstream or all), and out of reach of model-written SQL.

use std::sync::Arc;

use wharf_catalog::{PgDatabase, PgTokenTable, SqliteDatabase, SqliteTokenTable, TokenTable};

async fn tables() -> Vec<(&'static str, Arc<dyn TokenTable>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDatabase::open(&dir.path().join("vault.db"))
        .await
        .unwrap();
    let mut out: Vec<(&'static str, Arc<dyn TokenTable>, _)> =
        vec![("sqlite", Arc::new(SqliteTokenTable::new(db)), Some(dir))];
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        let url = crate::empty_postgres_database().await;
        let pg = PgTokenTable::new(PgDatabase::connect(&url, 2).await.unwrap());
        out.push(("postgres", Arc::new(pg), None));
    }
    out
}

#[tokio::test]
async fn the_vault_keeps_one_row_per_upstream_and_user_on_every_backend() {
    for (name, t, _dir) in tables().await {
        t.put("github", "alice", "sealed-a1").await.unwrap();
        t.put("github", "bob", "sealed-b1").await.unwrap();
        t.put("linear", "alice", "sealed-a2").await.unwrap();
        t.put("github", "alice", "sealed-a3").await.unwrap();
        assert_eq!(
            t.get("github", "alice").await.unwrap().as_deref(),
            Some("sealed-a3"),
            "{name}"
        );
        assert_eq!(t.get("github", "carol").await.unwrap(), None, "{name}");
        let latest = t.latest("github").await.unwrap().unwrap();
        assert_eq!(
            latest,
            ("alice".to_owned(), "sealed-a3".to_owned()),
            "{name}"
        );
        assert_eq!(t.list(Some("alice")).await.unwrap().len(), 2, "{name}");
        assert_eq!(t.list(None).await.unwrap().len(), 3, "{name}");
        assert_eq!(
            t.delete("alice", Some("linear")).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            t.get("github", "alice").await.unwrap().as_deref(),
            Some("sealed-a3"),
            "{name}"
        );
        assert_eq!(t.delete("alice", None).await.unwrap(), 1, "{name}");
        assert_eq!(t.list(None).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn model_written_sql_cannot_read_the_vault() {
    for f in crate::fixtures(crate::quick_limits()).await {
        let tables = f.catalog.list_tables().await.unwrap();
        assert!(
            !tables.iter().any(|t| t == "gateway_tokens"),
            "{}: {tables:?}",
            f.name
        );
        assert!(
            f.catalog
                .query("SELECT sealed FROM gateway_tokens", vec![])
                .await
                .is_err(),
            "{}",
            f.name
        );
    }
}
