//! Read-only SQL: what it may do, what it may not, and its caps.

use serde_json::json;
use wharf_catalog::{Catalog, CatalogError, SqlLimits};

use crate::{quick_limits, sample_catalog};

#[tokio::test]
async fn reads_with_bound_parameters() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let r = c
        .query(
            "SELECT id, title FROM items WHERE id = ?1",
            vec![json!("api.fetch")],
        )
        .await
        .unwrap();
    assert_eq!(r.columns, ["id", "title"]);
    assert_eq!(r.rows, vec![vec![json!("api.fetch"), json!("fetch")]]);
    let r = c
        .query("SELECT json_extract(attributes, '$.category') AS cat, count(*) FROM items GROUP BY cat ORDER BY cat LIMIT 3", vec![])
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 3);
}

#[tokio::test]
async fn writes_and_escapes_are_refused_and_change_nothing() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let before = c.export().await.unwrap();
    let attempts = [
        ("DELETE FROM items", "only statements that read"),
        ("UPDATE items SET title = 'x'", "only statements that read"),
        (
            "INSERT INTO items (id, title, created_at, updated_at) VALUES ('x', 'x', '', '')",
            "only statements that read",
        ),
        ("DROP TABLE items", "only statements that read"),
        ("SELECT 1; DELETE FROM items", "one statement"),
        ("ATTACH DATABASE '/tmp/other.db' AS other", "not allowed"),
        ("SELECT * FROM mcp_sessions", "not allowed"),
        ("PRAGMA query_only = 0", "not allowed"),
        ("SELECT * FROM nowhere", "no such table"),
    ];
    for (sql, expected) in attempts {
        let err = c.query(sql, vec![]).await.unwrap_err();
        assert!(matches!(err, CatalogError::Invalid(_)), "{sql}: {err:?}");
        assert!(err.to_string().contains(expected), "{sql}: {err}");
    }
    // A value that looks like SQL stays a value.
    let r = c
        .query(
            "SELECT count(*) FROM items WHERE id = ?1",
            vec![json!("x' OR '1'='1")],
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0][0], 0);
    assert_eq!(c.export().await.unwrap(), before, "nothing changed");
}

#[tokio::test]
async fn the_parameter_count_must_match() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let err = c.query("SELECT ?1, ?2", vec![json!(1)]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("2 parameter(s) but `params` has 1"),
        "{err}"
    );
}

#[tokio::test]
async fn rows_and_bytes_are_capped_with_a_note() {
    let (_dir, c) = sample_catalog(quick_limits()).await;
    let r = c.query("SELECT id FROM items", vec![]).await.unwrap();
    assert_eq!(r.rows.len(), 5);
    assert!(r.truncated.as_deref().unwrap().contains("first 5 rows"));
    let tiny = SqlLimits {
        max_bytes: 200,
        max_rows: 1000,
        ..quick_limits()
    };
    let (_dir, c) = sample_catalog(tiny).await;
    let r = c.query("SELECT body FROM items", vec![]).await.unwrap();
    assert!(r.rows.len() < 5, "{} rows", r.rows.len());
    assert!(r.truncated.as_deref().unwrap().contains("200 bytes"));
}

#[tokio::test]
async fn a_long_query_is_stopped_at_the_timeout() {
    let (_dir, c) = sample_catalog(quick_limits()).await;
    let err = c
        .query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n", vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Timeout(300)), "{err:?}");
    // The pooled connection is usable afterwards.
    assert_eq!(c.query("SELECT 1", vec![]).await.unwrap().rows[0][0], 1);
}

#[tokio::test]
async fn tables_are_listed_and_described_without_internals() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    assert_eq!(c.list_tables().await.unwrap(), ["items"]);
    let columns = c.describe_table("items").await.unwrap();
    assert_eq!(columns[0].name, "id");
    assert!(columns[0].primary_key);
    let err = c.describe_table("mcp_sessions").await.unwrap_err();
    assert!(err.to_string().contains("tables: items"), "{err}");
}
