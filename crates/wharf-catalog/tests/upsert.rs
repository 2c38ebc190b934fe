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

#[tokio::test]
async fn a_replacing_import_leaves_exactly_its_items_and_the_index_follows() {
    let sample = wharf_catalog::sample_items().unwrap();
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
        let mut kept = sample[0].clone();
        kept.title = "Kept and renamed".into();
        let mut own = sample[1].clone();
        own.id = "own.item".into();
        own.title = "Zanzibar ledger".into();
        let summary = c.replace(vec![kept.clone(), own.clone()]).await.unwrap();
        assert_eq!(
            (summary.inserted, summary.updated, summary.removed),
            (1, 1, sample.len() - 1),
            "{}",
            f.name
        );
        let ids: Vec<String> = c
            .export()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut expected = vec![kept.id.clone(), own.id.clone()];
        expected.sort();
        assert_eq!(ids, expected, "{}: exported in id order", f.name);
        assert!(c.get(&sample[2].id).await.unwrap().is_none(), "{}", f.name);
        let search = |q: &str| SearchQuery {
            query: q.into(),
            limit: 5,
            cursor: None,
            tags: vec![],
        };
        let hits = c.search(search(&sample[2].title)).await.unwrap().hits;
        assert!(
            hits.iter().all(|h| h.id != sample[2].id),
            "{}: a removed item is not found",
            f.name
        );
        let hits = c.search(search("Zanzibar")).await.unwrap().hits;
        assert_eq!(hits[0].id, "own.item", "{}", f.name);
    }
}
