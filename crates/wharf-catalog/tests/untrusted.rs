//! Model-written SQL as an attacker would write it, on every backend: values
//! that would take gigabytes, transactions that would outlive their statement,
//! functions that act beyond it, and forged search cursors. Each must fail with
//! a clear message, leave the process's memory where it was, and leave nothing
//! behind for the next caller.

use serde_json::json;
use wharf_catalog::{CatalogError, SearchQuery, SqlLimits};

use crate::{SAMPLE_SIZE, fixtures};

/// This process's resident memory, in MB.
fn rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

#[tokio::test]
async fn a_statement_cannot_make_a_huge_value_in_this_process() {
    // A generous timeout: on a loaded machine the statement must meet the
    // value cap, which this test is about, before the clock.
    let limits = SqlLimits {
        timeout: std::time::Duration::from_secs(60),
        ..SqlLimits::default()
    };
    for f in fixtures(limits).await {
        let sql = if f.name.starts_with("sqlite") {
            "SELECT length(randomblob(1000000000)) AS n"
        } else {
            "SELECT repeat('x', 20000000) AS big"
        };
        let before = rss_mb();
        let calls = (0..4).map(|_| f.catalog.query(sql, vec![]));
        let outcomes = futures::future::join_all(calls).await;
        let grew = rss_mb().saturating_sub(before);
        assert!(grew < 150, "{}: memory grew by {grew} MB", f.name);
        for outcome in outcomes {
            match outcome {
                Err(CatalogError::Invalid(m)) => {
                    assert!(m.contains("sql_max_value_bytes"), "{}: {m}", f.name)
                }
                Ok(r) => {
                    assert!(r.rows.is_empty(), "{}: {:?}", f.name, r.rows.len());
                    let note = r.truncated.unwrap();
                    assert!(note.contains("over the limit"), "{}: {note}", f.name);
                }
                Err(e) => panic!("{}: {e:?}", f.name),
            }
        }
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
async fn no_transaction_outlives_its_statement() {
    for f in fixtures(SqlLimits::default()).await {
        // Every pooled connection is tried.
        for sql in [
            "BEGIN",
            "BEGIN IMMEDIATE",
            "SAVEPOINT s",
            "COMMIT",
            "START TRANSACTION",
        ] {
            for _ in 0..8 {
                let err = f.catalog.query(sql, vec![]).await.unwrap_err();
                assert!(
                    matches!(err, CatalogError::Invalid(_)),
                    "{}: {sql}: {err:?}",
                    f.name
                );
            }
        }
        // A change made now is seen by every later statement: no connection
        // was left reading a frozen snapshot.
        let mut item = f.catalog.get("css.properties.gap").await.unwrap().unwrap();
        item.id = "added-after-begin".into();
        f.catalog.upsert(vec![item]).await.unwrap();
        let counts = futures::future::join_all(
            (0..8).map(|_| f.catalog.query("SELECT count(*) AS n FROM items", vec![])),
        )
        .await;
        for c in counts {
            assert_eq!(
                c.unwrap().rows[0][0],
                json!(SAMPLE_SIZE + 1),
                "{}: a stale snapshot",
                f.name
            );
        }
    }
}

#[tokio::test]
async fn functions_that_act_beyond_the_statement_are_refused() {
    for f in fixtures(SqlLimits::default()).await {
        let refused: &[&str] = if f.name.starts_with("sqlite") {
            &[
                "SELECT load_extension('/tmp/evil')",
                "ATTACH DATABASE '/tmp/x.db' AS x",
            ]
        } else {
            &[
                "SELECT pg_advisory_lock(1)",
                "SELECT pg_advisory_lock(g) FROM generate_series(1, 200000) g",
                "SELECT pg_try_advisory_lock(1)",
                "SELECT set_config('default_transaction_read_only', 'off', false)",
                "SELECT pg_sleep(30)",
                "SELECT pg_catalog.pg_sleep(30)",
                "SELECT \"pg_sleep\"(30)",
                "SELECT query_to_xml('select pg_advisory_lock(1)', true, true, '')",
                "SELECT pg_read_file('/etc/passwd')",
                "SELECT lo_import('/etc/passwd')",
                "SELECT pg_notify('x', 'y')",
            ]
        };
        for sql in refused {
            let err = f.catalog.query(sql, vec![]).await.unwrap_err();
            assert!(
                matches!(err, CatalogError::Invalid(ref m) if m.starts_with("not allowed")),
                "{}: {sql}: {err:?}",
                f.name
            );
        }
        if f.name == "postgres" {
            // Nothing was left held, and the server's lock table is untouched.
            let locks = f
                .catalog
                .query(
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(locks.rows[0][0], 0);
        }
    }
}

#[tokio::test]
async fn a_trailing_comment_or_semicolon_is_part_of_one_statement() {
    for f in fixtures(SqlLimits::default()).await {
        for sql in [
            "SELECT count(*) AS n FROM items -- how many",
            "SELECT count(*) AS n FROM items; -- how many",
            "SELECT count(*) AS n FROM items /* how many */ ;",
        ] {
            let r = f.catalog.query(sql, vec![]).await;
            assert_eq!(
                r.unwrap_or_else(|e| panic!("{}: {sql}: {e}", f.name)).rows[0][0],
                json!(SAMPLE_SIZE),
                "{}: {sql}",
                f.name
            );
        }
        let err = f
            .catalog
            .query("SELECT 1; SELECT 2", vec![])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("one statement"),
            "{}: {err}",
            f.name
        );
    }
}

#[tokio::test]
async fn a_forged_cursor_far_past_the_end_is_a_clear_error() {
    use base64::Engine;
    for f in fixtures(SqlLimits::default()).await {
        let page = f
            .catalog
            .search(SearchQuery {
                query: "grid".into(),
                limit: 5,
                cursor: None,
                tags: vec![],
            })
            .await
            .unwrap();
        let real = page.next_cursor.expect("more than one page");
        let decoded = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&real)
                .unwrap(),
        )
        .unwrap();
        let print = decoded.split(':').nth(2).unwrap();
        for offset in ["4611686018427387903", "18446744073709551615", "10001"] {
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("v1:{offset}:{print}"));
            let err = f
                .catalog
                .search(SearchQuery {
                    query: "grid".into(),
                    limit: 50,
                    cursor: Some(forged),
                    tags: vec![],
                })
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("deepest page"),
                "{}: {offset}: {err}",
                f.name
            );
        }
    }
}

#[tokio::test]
async fn the_sql_tool_tells_the_model_its_dialect() {
    for f in fixtures(SqlLimits::default()).await {
        let tools = wharf_catalog::tools::catalog_tools(f.catalog.clone());
        let sql = tools
            .iter()
            .find(|t| t.name() == "execute_sql_query")
            .unwrap();
        let description = sql.definition().description.as_deref().unwrap();
        let (dialect, placeholder) = if f.name.starts_with("sqlite") {
            ("SQLite", "?1")
        } else {
            ("PostgreSQL", "$1")
        };
        assert!(
            description.contains(dialect) && description.contains(placeholder),
            "{}: {description}",
            f.name
        );
    }
}
