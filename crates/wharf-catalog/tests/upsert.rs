//! Upserts on every backend: idempotent, counted, and the index follows.

use wharf_catalog::{SearchQuery, SqlLimits};

use crate::fixtures;

#[tokio::test]
async fn importing_the_same_items_twice_changes_nothing() {
    let items = wharf_catalog::sample_items().unwrap();
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
        let before = c.export().await.unwrap();
        let summary = c.upsert(items.clone()).await.unwrap();
        assert_eq!(
            (summary.inserted, summary.updated, summary.unchanged),
            (0, 0, items.len()),
            "{}",
            f.name
        );
        assert_eq!(
            c.export().await.unwrap(),
            before,
            "{}: not even updated_at moved",
            f.name
        );
        let mut changed = items[0].clone();
        changed.title = "A new title".into();
        assert_eq!(
            c.upsert(vec![changed.clone()]).await.unwrap().updated,
            1,
            "{}",
            f.name
        );
        assert_eq!(
            c.get(&changed.id).await.unwrap().unwrap().title,
            "A new title",
            "{}",
            f.name
        );
        let hits = c
            .search(SearchQuery {
                query: "new title".into(),
                limit: 5,
                cursor: None,
                tags: vec![],
            })
            .await
            .unwrap()
            .hits;
        assert_eq!(
            hits[0].id, changed.id,
            "{}: the index follows updates",
            f.name
        );
    }
}

#[tokio::test]
async fn declared_writes_run_in_a_transaction() {
    for f in fixtures(SqlLimits::default()).await {
        let (update, failing) = match f.name {
            "sqlite" | "sqlite-fts5" => (
                "UPDATE items SET title = ?2 WHERE id = ?1",
                "UPDATE items SET title = NULL WHERE id = ?1",
            ),
            _ => (
                "UPDATE items SET title = $2 WHERE id = $1",
                "UPDATE items SET title = NULL WHERE id = $1",
            ),
        };
        let changed = f
            .catalog
            .execute(update, vec!["api.fetch".into(), "renamed".into()])
            .await
            .unwrap();
        assert_eq!(changed, 1, "{}", f.name);
        assert_eq!(
            f.catalog.get("api.fetch").await.unwrap().unwrap().title,
            "renamed",
            "{}",
            f.name
        );
        // A statement that fails (NOT NULL) leaves the row as it was.
        assert!(
            f.catalog
                .execute(failing, vec!["api.fetch".into()])
                .await
                .is_err(),
            "{}",
            f.name
        );
        assert_eq!(
            f.catalog.get("api.fetch").await.unwrap().unwrap().title,
            "renamed",
            "{}",
            f.name
        );
        let err = f
            .catalog
            .execute(update, vec!["api.fetch".into()])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("2 parameter(s) but 1 were given"),
            "{}: {err}",
            f.name
        );
    }
}
