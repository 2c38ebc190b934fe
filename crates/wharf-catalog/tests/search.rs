//! Ranking, pagination, cursors and filters, on every backend.

use std::collections::HashSet;

use wharf_catalog::{SearchQuery, SqlLimits};

use crate::{SAMPLE_SIZE, fixtures};

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
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
        for (query, best) in [
            ("fetch", "api.fetch"),
            (
                "grid template columns",
                "css.properties.grid-template-columns",
            ),
            ("abort controller", "api.AbortController"),
        ] {
            let page = c.search(q(query, 5)).await.unwrap();
            let ids: Vec<&String> = page.hits.iter().map(|h| &h.id).collect();
            assert!(
                ids.iter().take(3).any(|id| *id == best),
                "{}: {query}: {ids:?}",
                f.name
            );
            assert!(
                page.hits.windows(2).all(|w| w[0].score >= w[1].score),
                "{}: ordered by score",
                f.name
            );
        }
        let page = c.search(q("grid template columns", 1)).await.unwrap();
        assert_eq!(
            page.hits[0].id, "css.properties.grid-template-columns",
            "{}",
            f.name
        );
        assert!(
            page.hits[0].snippet.contains("**"),
            "{}: matched terms are marked: {}",
            f.name,
            page.hits[0].snippet
        );
    }
}

#[tokio::test]
async fn pagination_visits_every_hit_exactly_once() {
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
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
        assert_eq!(unique.len(), seen.len(), "{}: no hit twice", f.name);
        let count_sql = match f.name {
            "sqlite" | "sqlite-fts5" => {
                "SELECT count(*) FROM items_fts WHERE items_fts MATCH '\"event\"'"
            }
            _ => {
                "SELECT count(*) FROM items WHERE search @@ websearch_to_tsquery('english', 'event')"
            }
        };
        let expected = c.query(count_sql, vec![]).await.unwrap();
        assert_eq!(
            seen.len() as i64,
            expected.rows[0][0].as_i64().unwrap(),
            "{}: every hit once",
            f.name
        );
        assert!(seen.len() > 50, "{}: the query spans several pages", f.name);
    }
}

#[tokio::test]
async fn a_cursor_from_one_process_works_in_another() {
    for f in fixtures(SqlLimits::default()).await {
        let first = f.catalog.search(q("css color", 10)).await.unwrap();
        let cursor = first.next_cursor.clone().expect("more than one page");
        let other_replica = f.second_handle(SqlLimits::default()).await;
        let mut next = q("css color", 10);
        next.cursor = Some(cursor.clone());
        let second = other_replica.search(next.clone()).await.unwrap();
        assert_eq!(second, f.catalog.search(next).await.unwrap(), "{}", f.name);
        assert!(
            second
                .hits
                .iter()
                .all(|h| !first.hits.iter().any(|x| x.id == h.id)),
            "{}",
            f.name
        );
        let mut other = q("css border", 10);
        other.cursor = Some(cursor);
        let err = other_replica.search(other).await.unwrap_err();
        assert!(
            err.to_string().contains("different search"),
            "{}: {err}",
            f.name
        );
    }
}

#[tokio::test]
async fn tags_filter_the_hits() {
    for f in fixtures(SqlLimits::default()).await {
        let mut query = q("property", 50);
        query.tags = vec!["css".into(), "deprecated".into()];
        let page = f.catalog.search(query).await.unwrap();
        assert!(!page.hits.is_empty(), "{}", f.name);
        assert!(
            page.hits
                .iter()
                .all(|h| h.tags.contains(&"css".into()) && h.tags.contains(&"deprecated".into())),
            "{}",
            f.name
        );
    }
}

#[tokio::test]
async fn queries_are_words_not_syntax() {
    for f in fixtures(SqlLimits::default()).await {
        for hostile in [
            "\"unbalanced",
            "NEAR(fetch",
            "fetch OR *",
            "title:fetch",
            "') DROP TABLE items; --",
            "-fetch & !",
        ] {
            f.catalog
                .search(q(hostile, 5))
                .await
                .unwrap_or_else(|e| panic!("{}: {hostile}: {e}", f.name));
        }
        assert!(
            f.catalog.search(q("!!! ---", 5)).await.is_err(),
            "{}: no words: a clear error",
            f.name
        );
        assert_eq!(f.catalog.count().await.unwrap(), SAMPLE_SIZE, "{}", f.name);
    }
}

#[tokio::test]
async fn get_returns_the_whole_item_or_nothing() {
    for f in fixtures(SqlLimits::default()).await {
        let item = f.catalog.get("api.fetch").await.unwrap().unwrap();
        assert_eq!(
            item.url.as_deref(),
            Some("https://developer.mozilla.org/docs/Web/API/Window/fetch"),
            "{}",
            f.name
        );
        assert!(item.created_at.is_some(), "{}", f.name);
        assert!(
            f.catalog.get("no.such.item").await.unwrap().is_none(),
            "{}",
            f.name
        );
    }
}

/// Every hit of `query`, all pages.
async fn all_ids(c: &dyn wharf_catalog::Catalog, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = q(query, 50);
    loop {
        let page = c.search(next.clone()).await.unwrap();
        seen.extend(page.hits.into_iter().map(|h| h.id));
        match page.next_cursor {
            Some(cursor) => next.cursor = Some(cursor),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn the_index_finds_what_fts5_finds() {
    let fixtures = fixtures(SqlLimits::default()).await;
    let indexed = &fixtures[0];
    let fts5 = &fixtures[1];
    assert_eq!((indexed.name, fts5.name), ("sqlite", "sqlite-fts5"));
    for query in [
        "event",
        "grid template columns",
        "abort signal",
        "color",
        "fetching requests",
        "Ünïcödé café",
    ] {
        let mut a = all_ids(indexed.catalog.as_ref(), query).await;
        let mut b = all_ids(fts5.catalog.as_ref(), query).await;
        a.sort();
        b.sort();
        assert_eq!(a, b, "{query}: the same items");
    }
    let mut tagged = q("property", 200);
    tagged.tags = vec!["css".into(), "deprecated".into()];
    let ids = |p: wharf_catalog::SearchPage| {
        let mut v: Vec<String> = p.hits.into_iter().map(|h| h.id).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(indexed.catalog.search(tagged.clone()).await.unwrap()),
        ids(fts5.catalog.search(tagged).await.unwrap()),
        "the tags filter"
    );
}

#[tokio::test]
async fn a_change_is_found_at_once_and_by_the_index_once_rebuilt() {
    use wharf_catalog::{Catalog, SqliteCatalog, SqliteDatabase};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let open = async || {
        SqliteCatalog::new(
            SqliteDatabase::open(&path).await.unwrap(),
            SqlLimits::default(),
        )
    };
    let c = open().await;
    wharf_catalog::seed_if_empty(&c, wharf_catalog::sample_items)
        .await
        .unwrap();
    assert!(!c.search_index_is_current().await.unwrap(), "never built");
    c.update_search_index().await.unwrap();
    assert!(c.search_index_is_current().await.unwrap());

    let item: wharf_catalog::Item = serde_json::from_value(serde_json::json!({
        "id": "new.zyxwvut", "title": "Zyxwvut widget", "body": "a quokka appears", "tags": ["new"], "attributes": {}
    }))
    .unwrap();
    c.upsert(vec![item]).await.unwrap();
    assert!(
        !c.search_index_is_current().await.unwrap(),
        "stale after a write"
    );
    // FTS5 answers meanwhile, and that search starts a rebuild in the background.
    let page = c.search(q("quokka", 5)).await.unwrap();
    assert_eq!(page.hits[0].id, "new.zyxwvut");
    c.update_search_index().await.unwrap();
    assert!(c.search_index_is_current().await.unwrap(), "rebuilt");
    let page = c.search(q("quokka", 5)).await.unwrap();
    assert_eq!(page.hits[0].id, "new.zyxwvut");
    assert!(
        page.hits[0].snippet.contains("**quokka**"),
        "{}",
        page.hits[0].snippet
    );

    // Another process opening the file finds the index current.
    assert!(open().await.search_index_is_current().await.unwrap());
    // A lost index directory: searches still answer, and it is built again.
    drop(c);
    // The rebuild the first search started may still be finishing on a
    // blocking thread, writing into the directory while it is removed: try
    // again until it is gone (a deadline, not a fixed sleep).
    let index = dir.path().join("catalog.db.search");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = std::fs::remove_dir_all(&index) {
        if e.kind() == std::io::ErrorKind::NotFound {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cannot remove {index:?}: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let c = open().await;
    assert!(!c.search_index_is_current().await.unwrap());
    let page = c.search(q("quokka", 5)).await.unwrap();
    assert_eq!(page.hits[0].id, "new.zyxwvut");
    c.update_search_index().await.unwrap();
    assert!(c.search_index_is_current().await.unwrap());
    assert_eq!(
        c.search(q("quokka", 5)).await.unwrap().hits[0].id,
        "new.zyxwvut"
    );
}

/// Natural-language queries never come back empty when the catalog holds
/// something close, and the result says how it matched.
#[tokio::test]
async fn a_query_no_item_fully_matches_falls_back_and_says_so() {
    for f in fixtures(SqlLimits::default()).await {
        let c = &f.catalog;
        let name = f.name;
        // Every word somewhere: no note.
        let page = c.search(q("abort controller", 5)).await.unwrap();
        assert_eq!(page.note, None, "{name}");

        // The words of a question are not searched for; no item has both
        // `center` and `div`, so items with either come back, with a note.
        let page = c.search(q("how do I center a div", 10)).await.unwrap();
        assert!(!page.hits.is_empty(), "{name}");
        let note = page.note.as_deref().unwrap_or_default();
        assert!(note.contains("most of them"), "{name}: {note}");
        assert!(
            page.hits.iter().any(|h| h.id == "html.elements.div"),
            "{name}: {:?}",
            page.hits.iter().map(|h| &h.id).collect::<Vec<_>>()
        );

        // The start of the last word, as typed so far.
        let page = c.search(q("prefers-col", 10)).await.unwrap();
        assert!(
            page.hits
                .iter()
                .any(|h| h.id == "css.at-rules.media.prefers-color-scheme"),
            "{name}: {:?}",
            page.hits.iter().map(|h| &h.id).collect::<Vec<_>>()
        );
        assert!(page.note.is_some(), "{name}");

        // A later page of a fallback keeps matching the same way.
        let first = c.search(q("center div", 3)).await.unwrap();
        let mut next = q("center div", 3);
        next.cursor = first.next_cursor.clone();
        let second = c.search(next).await.unwrap();
        assert_eq!(second.note, first.note, "{name}");
        assert!(!second.hits.is_empty(), "{name}");
        let seen: HashSet<_> = first.hits.iter().map(|h| &h.id).collect();
        assert!(second.hits.iter().all(|h| !seen.contains(&h.id)), "{name}");
    }
}

/// What the search index adds (SQLite, the default): typos, words of the
/// attributes (the spec's name), joined words and the parts of a joined title.
#[tokio::test]
async fn the_search_index_forgives_typos_and_reads_joined_words() {
    for f in fixtures(SqlLimits::default()).await {
        if f.name != "sqlite" {
            continue;
        }
        let c = &f.catalog;
        let top = |query: &'static str| async move {
            let page = c.search(q(query, 10)).await.unwrap();
            (
                page.hits.into_iter().map(|h| h.id).collect::<Vec<_>>(),
                page.note,
            )
        };
        // A correction is scored as the word it corrects to (BM25), so the
        // item named by it ranks first.
        let (ids, note) = top("websoket").await;
        assert_eq!(
            ids.first().map(String::as_str),
            Some("api.WebSocket"),
            "{ids:?}"
        );
        assert!(
            ids.iter().all(|id| id.starts_with("api.WebSocket")),
            "{ids:?}"
        );
        assert!(note.unwrap().contains("close matches"));
        let (ids, _) = top("clipbord").await;
        assert!(
            ids.iter().any(|id| id.starts_with("api.Clipboard")),
            "{ids:?}"
        );
        let (ids, _) = top("flexbox").await;
        assert!(
            ids.iter().take(5).all(|id| id.contains("flex")),
            "css-flexbox spec: {ids:?}"
        );
        let (ids, _) = top("webgpu").await;
        assert!(
            ids.iter().take(5).any(|id| id.starts_with("api.GPU")),
            "web gpu: {ids:?}"
        );
        let (ids, note) = top("gpu device").await;
        assert!(
            ids.iter().take(3).any(|id| id == "api.GPUDevice"),
            "GPUDevice holds both words once split: {ids:?}"
        );
        assert!(note.is_some(), "a loose match says so");
    }
}

/// A word no person types (hundreds of characters, each several bytes) gets
/// no near forms (a typo automaton for it would take gigabytes); the other
/// words still find items.
#[tokio::test]
async fn a_huge_word_is_searched_as_written_only() {
    for f in fixtures(SqlLimits::default()).await {
        let word: String = std::iter::repeat_n('界', 400).collect();
        let page = f
            .catalog
            .search(q(&format!("{word} con"), 10))
            .await
            .unwrap();
        assert!(!page.hits.is_empty(), "{}: `con` still finds items", f.name);
        assert!(page.note.is_some(), "{}", f.name);
    }
}
