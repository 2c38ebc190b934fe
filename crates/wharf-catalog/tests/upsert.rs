//! Upserts: idempotent, counted.

use wharf_catalog::{Catalog, SqlLimits};

use crate::sample_catalog;

#[tokio::test]
async fn importing_the_same_items_twice_changes_nothing() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let items = wharf_catalog::sample_items().unwrap();
    let before = c.export().await.unwrap();
    let summary = c.upsert(items.clone()).await.unwrap();
    assert_eq!(
        (summary.inserted, summary.updated, summary.unchanged),
        (0, 0, items.len())
    );
    assert_eq!(
        c.export().await.unwrap(),
        before,
        "not even updated_at moved"
    );
    let mut changed = items[0].clone();
    changed.title = "A new title".into();
    let summary = c.upsert(vec![changed.clone()]).await.unwrap();
    assert_eq!(summary.updated, 1);
    assert_eq!(
        c.get(&changed.id).await.unwrap().unwrap().title,
        "A new title"
    );
    assert_eq!(
        c.search(wharf_catalog::SearchQuery {
            query: "new title".into(),
            limit: 5,
            cursor: None,
            tags: vec![]
        })
        .await
        .unwrap()
        .hits[0]
            .id,
        changed.id,
        "the index follows updates"
    );
}
