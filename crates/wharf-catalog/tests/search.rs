//! Ranking, pagination, cursors and filters.

use std::collections::HashSet;

use wharf_catalog::{Catalog, Database, SearchQuery, SqlLimits, SqliteCatalog};

use crate::sample_catalog;

fn q(query: &str, limit: u32) -> SearchQuery {
    SearchQuery {
        query: query.into(),
        limit,
        cursor: None,
        tags: vec![],
    }
}

#[tokio::test]
async fn the_known_best_match_ranks_first() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    for (query, best) in [
        ("fetch", "api.fetch"),
        (
            "grid template columns",
            "css.properties.grid-template-columns",
        ),
        ("abort controller", "api.AbortController"),
    ] {
        let page = c.search(q(query, 5)).await.unwrap();
        assert!(
            page.hits.iter().take(3).any(|h| h.id == best),
            "{query}: {:?}",
            page.hits.iter().map(|h| &h.id).collect::<Vec<_>>()
        );
        assert!(
            page.hits.windows(2).all(|w| w[0].score >= w[1].score),
            "hits are ordered by score"
        );
    }
    let page = c.search(q("grid template columns", 1)).await.unwrap();
    assert_eq!(page.hits[0].id, "css.properties.grid-template-columns");
    assert!(
        page.hits[0].snippet.contains("**"),
        "matched terms are marked: {}",
        page.hits[0].snippet
    );
}

#[tokio::test]
async fn pagination_visits_every_hit_exactly_once() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let mut seen = Vec::new();
    let mut query = q("event", 50);
    loop {
        let page = c.search(query.clone()).await.unwrap();
        seen.extend(page.hits.into_iter().map(|h| h.id));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no hit twice");
    let expected = c
        .query(
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH '\"event\"'",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        seen.len() as i64,
        expected.rows[0][0].as_i64().unwrap(),
        "every hit once"
    );
    assert!(seen.len() > 50, "the query spans several pages");
}

#[tokio::test]
async fn a_cursor_from_one_process_works_in_another() {
    let (dir, a) = sample_catalog(SqlLimits::default()).await;
    let first = a.search(q("css color", 10)).await.unwrap();
    let cursor = first.next_cursor.clone().expect("more than one page");
    // A second, independent handle on the same file, as another replica would have.
    let b = SqliteCatalog::new(
        Database::open_sqlite(&dir.path().join("catalog.db"))
            .await
            .unwrap(),
        SqlLimits::default(),
    );
    let mut next = q("css color", 10);
    next.cursor = Some(cursor.clone());
    let second = b.search(next.clone()).await.unwrap();
    assert_eq!(second, a.search(next).await.unwrap());
    assert!(
        second
            .hits
            .iter()
            .all(|h| !first.hits.iter().any(|f| f.id == h.id))
    );
    let mut other = q("css border", 10);
    other.cursor = Some(cursor);
    let err = b.search(other).await.unwrap_err();
    assert!(err.to_string().contains("different search"), "{err}");
}

#[tokio::test]
async fn tags_filter_the_hits() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let mut query = q("property", 50);
    query.tags = vec!["css".into(), "deprecated".into()];
    let page = c.search(query).await.unwrap();
    assert!(!page.hits.is_empty());
    assert!(
        page.hits
            .iter()
            .all(|h| h.tags.contains(&"css".into()) && h.tags.contains(&"deprecated".into()))
    );
}

#[tokio::test]
async fn queries_are_words_not_syntax() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    // FTS5 operators and quotes in the input are just separators.
    for hostile in [
        "\"unbalanced",
        "NEAR(fetch",
        "fetch OR *",
        "title:fetch",
        "') DROP TABLE items; --",
    ] {
        c.search(q(hostile, 5))
            .await
            .unwrap_or_else(|e| panic!("{hostile}: {e}"));
    }
    assert!(
        c.search(q("!!! ---", 5)).await.is_err(),
        "no words: a clear error"
    );
    assert_eq!(c.count().await.unwrap(), 12_522);
}

#[tokio::test]
async fn get_returns_the_whole_item_or_nothing() {
    let (_dir, c) = sample_catalog(SqlLimits::default()).await;
    let item = c.get("api.fetch").await.unwrap().unwrap();
    assert_eq!(
        item.url.as_deref(),
        Some("https://developer.mozilla.org/docs/Web/API/Window/fetch")
    );
    assert!(item.created_at.is_some());
    assert!(c.get("no.such.item").await.unwrap().is_none());
}
