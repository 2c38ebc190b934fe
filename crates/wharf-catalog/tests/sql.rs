//! Read-only SQL on every backend: what it may do, what it may not, its caps.

use serde_json::json;
use wharf_catalog::{CatalogError, SqlLimits};

use crate::{SAMPLE_SIZE, fixtures, quick_limits};

#[tokio::test]
async fn reads_with_bound_parameters() {
    for f in fixtures(SqlLimits::default()).await {
        let r = f
            .catalog
            .query(
                "SELECT id, title FROM items WHERE id = $1",
                vec![json!("api.fetch")],
            )
            .await;
        let r = match f.name {
            // SQLite numbers its parameters ?1; PostgreSQL $1. Both bind, neither interpolates.
            "sqlite" | "sqlite-fts5" => f
                .catalog
                .query(
                    "SELECT id, title FROM items WHERE id = ?1",
                    vec![json!("api.fetch")],
                )
                .await
                .unwrap(),
            _ => r.unwrap(),
        };
        assert_eq!(r.columns, ["id", "title"], "{}", f.name);
        assert_eq!(
            r.rows,
            vec![vec![json!("api.fetch"), json!("fetch")]],
            "{}",
            f.name
        );
    }
}

#[tokio::test]
async fn writes_and_escapes_are_refused_and_change_nothing() {
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
        let before = c.export().await.unwrap();
        let attempts = [
            "DELETE FROM items",
            "UPDATE items SET title = 'x'",
            "INSERT INTO items (id, title) VALUES ('x', 'x')",
            "DROP TABLE items",
            "SELECT 1; DELETE FROM items",
            "ATTACH DATABASE '/tmp/other.db' AS other",
            "SELECT * FROM mcp_sessions",
            "PRAGMA query_only = 0",
            "SELECT * FROM nowhere",
            "WITH gone AS (DELETE FROM items RETURNING id) SELECT count(*) FROM gone",
        ];
        for sql in attempts {
            let err = c.query(sql, vec![]).await.unwrap_err();
            assert!(
                matches!(err, CatalogError::Invalid(_)),
                "{}: {sql}: {err:?}",
                f.name
            );
        }
        for (sql, expected) in [
            ("DELETE FROM items", "only statements that read"),
            ("SELECT 1; DELETE FROM items", "one statement"),
        ] {
            let err = c.query(sql, vec![]).await.unwrap_err().to_string();
            assert!(err.contains(expected), "{}: {sql}: {err}", f.name);
        }
        let err = c
            .query("SELECT * FROM mcp_sessions", vec![])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not allowed"),
            "{}: sessions are off limits: {err}",
            f.name
        );
        let placeholder = if f.name.starts_with("sqlite") {
            "?1"
        } else {
            "$1"
        };
        let r = c
            .query(
                &format!("SELECT count(*) FROM items WHERE id = {placeholder}"),
                vec![json!("x' OR '1'='1")],
            )
            .await
            .unwrap();
        assert_eq!(
            r.rows[0][0], 0,
            "{}: a value that looks like SQL stays a value",
            f.name
        );
        assert_eq!(
            c.export().await.unwrap(),
            before,
            "{}: nothing changed",
            f.name
        );
        assert_eq!(c.count().await.unwrap(), SAMPLE_SIZE);
    }
}

#[tokio::test]
async fn the_parameter_count_must_match() {
    for f in fixtures(SqlLimits::default()).await {
        let sql = if f.name.starts_with("sqlite") {
            "SELECT ?1, ?2"
        } else {
            "SELECT $1::text, $2::text"
        };
        let err = f.catalog.query(sql, vec![json!(1)]).await.unwrap_err();
        assert!(
            err.to_string().contains("2 parameter(s) but 1 were given"),
            "{}: {err}",
            f.name
        );
    }
}

#[tokio::test]
async fn rows_and_bytes_are_capped_with_a_note() {
    for f in fixtures(quick_limits()).await {
        let r = f
            .catalog
            .query("SELECT id FROM items", vec![])
            .await
            .unwrap();
        assert_eq!(r.rows.len(), 5, "{}", f.name);
        assert!(
            r.truncated.as_deref().unwrap().contains("first 5 rows"),
            "{}",
            f.name
        );
    }
    let tiny = SqlLimits {
        max_bytes: 200,
        max_rows: 1000,
        ..quick_limits()
    };
    for f in fixtures(tiny).await {
        let r = f
            .catalog
            .query("SELECT body FROM items", vec![])
            .await
            .unwrap();
        assert!(r.rows.len() < 5, "{}: {} rows", f.name, r.rows.len());
        assert!(
            r.truncated.as_deref().unwrap().contains("200 bytes"),
            "{}",
            f.name
        );
    }
}

#[tokio::test]
async fn a_long_query_is_stopped_at_the_timeout() {
    for f in fixtures(quick_limits()).await {
        let err = f
            .catalog
            .query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n", vec![])
            .await
            .unwrap_err();
        assert!(
            matches!(err, CatalogError::Timeout(300)),
            "{}: {err:?}",
            f.name
        );
        assert_eq!(
            f.catalog
                .query("SELECT 1 AS one", vec![])
                .await
                .unwrap()
                .rows[0][0],
            1,
            "{}: usable afterwards",
            f.name
        );
    }
}

#[tokio::test]
async fn tables_are_listed_and_described_without_internals() {
    for f in fixtures(SqlLimits::default()).await {
        assert_eq!(
            f.catalog.list_tables().await.unwrap(),
            ["items"],
            "{}",
            f.name
        );
        let columns = f.catalog.describe_table("items").await.unwrap();
        assert_eq!(columns[0].name, "id", "{}", f.name);
        assert!(columns[0].primary_key, "{}", f.name);
        let err = f.catalog.describe_table("mcp_sessions").await.unwrap_err();
        assert!(
            err.to_string().contains("tables: items"),
            "{}: {err}",
            f.name
        );
    }
}

#[tokio::test]
async fn a_json_column_comes_as_its_json_text_on_every_backend() {
    for f in fixtures(SqlLimits::default()).await {
        let r = f
            .catalog
            .query(
                "SELECT tags, attributes FROM items WHERE id = 'css.properties.gap'",
                vec![],
            )
            .await
            .unwrap();
        for value in &r.rows[0] {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{}: {value} is not text", f.name));
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{}: {text}",
                f.name
            );
        }
    }
}
