//! The catalog on the embedded SQLite database: search through the index next
//! to the file when it is current, FTS5 (BM25, highlighted snippets) when it is
//! not; upserts in one transaction; capped read-only SQL.

use std::{sync::Arc, time::Duration};

use rusqlite::{Connection, OptionalExtension, params, types::ValueRef};
use serde_json::Value;
use tokio::time::Instant;

use crate::{
    catalog::{
        CappedRows, Catalog, CatalogError, Column, Hit, ImportSummary, Match, QueryResult,
        SearchPage, SearchQuery, SqlDialect, SqlLimits, query_words,
    },
    cursor,
    error::DbError,
    item::Item,
    sqlite::{
        database::{INTERNAL_TABLES, SqliteDatabase},
        search_index::{self, SearchIndex},
    },
};

/// Relative weight of a match in the title, body and tags (BM25 column weights).
const BM25_WEIGHTS: &str = "10.0, 1.0, 3.0";

/// SQLite steps between checks of a query's deadline.
const PROGRESS_STEPS: i32 = 1_000;

/// The SQLite catalog.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    db: SqliteDatabase,
    limits: SqlLimits,
    /// `None` when the index directory cannot be opened: searches use FTS5.
    index: Option<Arc<SearchIndex>>,
}

impl SqliteCatalog {
    /// Upsert `items`, and with `replace` delete every other item, in one
    /// transaction.
    async fn import(&self, items: Vec<Item>, replace: bool) -> Result<ImportSummary, CatalogError> {
        Ok(self
            .db
            .run(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut summary = ImportSummary::default();
                let mut ids = Vec::new();
                {
                    let mut existing = tx.prepare_cached("SELECT title, body, url, tags, attributes FROM items WHERE id = ?1")?;
                    let mut insert = tx.prepare_cached(&format!(
                        "INSERT INTO items ({ITEM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, {NOW}), coalesce(?8, {NOW}))"
                    ))?;
                    let mut update = tx.prepare_cached(&format!(
                        "UPDATE items SET title = ?2, body = ?3, url = ?4, tags = ?5, attributes = ?6, updated_at = {NOW} WHERE id = ?1"
                    ))?;
                    for item in items {
                        if replace {
                            ids.push(item.id.clone());
                        }
                        let tags = json_text(&item.tags);
                        let attributes = json_text(&item.attributes);
                        let current: Option<(String, String, Option<String>, String, String)> = existing
                            .query_row([&item.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                            .optional()?;
                        match current {
                            None => {
                                insert.execute(params![item.id, item.title, item.body, item.url, tags, attributes, item.created_at, item.updated_at])?;
                                summary.inserted += 1;
                            }
                            Some(row) if row == (item.title.clone(), item.body.clone(), item.url.clone(), tags.clone(), attributes.clone()) => {
                                summary.unchanged += 1;
                            }
                            Some(_) => {
                                update.execute(params![item.id, item.title, item.body, item.url, tags, attributes])?;
                                summary.updated += 1;
                            }
                        }
                    }
                }
                if replace {
                    summary.removed = tx.execute(
                        "DELETE FROM items WHERE id NOT IN (SELECT value FROM json_each(?1))",
                        [serde_json::to_string(&ids).unwrap_or_default()],
                    )?;
                }
                tx.commit()?;
                Ok(summary)
            })
            .await?)
    }

    /// The catalog in `db`, with its search index next to the file.
    pub fn new(db: SqliteDatabase, limits: SqlLimits) -> Self {
        let index = match SearchIndex::open(&search_index::dir_for(db.path())) {
            Ok(index) => Some(Arc::new(index)),
            Err(e) => {
                tracing::warn!(error = %e, "no search index; searching with FTS5");
                None
            }
        };
        Self { db, limits, index }
    }

    /// The catalog in `db` searched with FTS5 only (no index directory): what
    /// every search falls back to; for comparisons.
    pub fn without_search_index(db: SqliteDatabase, limits: SqlLimits) -> Self {
        Self {
            db,
            limits,
            index: None,
        }
    }

    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Bring the search index up to date with the catalog now (after an
    /// import, so that searches do not wait for the background rebuild):
    /// rebuilds it if it is stale, or waits for the rebuild under way here.
    pub async fn update_search_index(&self) -> Result<(), CatalogError> {
        let Some(index) = self.index.clone() else {
            return Ok(());
        };
        // A write between two rebuilds makes another one necessary; a catalog
        // written without pause is left to the background rebuilds.
        let mut rebuilds = 0;
        while rebuilds < 3 && !self.search_index_is_current().await? {
            if index.start_building() {
                rebuilds += 1;
                let index = index.clone();
                self.db
                    .run(move |c| Ok(index.rebuild(c)))
                    .await?
                    .map_err(|e| CatalogError::Db(DbError::SearchIndex(e)))?;
            } else {
                // A rebuild is under way here; it ends, one way or the other.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Whether searches are answered by the index now: it reflects the
    /// catalog's last change.
    pub async fn search_index_is_current(&self) -> Result<bool, CatalogError> {
        let Some(index) = self.index.clone() else {
            return Ok(false);
        };
        let generation = self.db.run(|c| Ok(generation(c)?)).await?;
        if index.generation() != generation {
            index.refresh();
        }
        Ok(index.generation() == generation)
    }

    /// Rebuild the stale index on a task of its own; searches use FTS5 meanwhile.
    fn rebuild_in_background(&self) {
        let Some(index) = self.index.clone() else {
            return;
        };
        if index.failed_recently() || !index.start_building() {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            match db.run(move |c| Ok(index.rebuild(c))).await {
                Ok(Ok(generation)) => tracing::info!(
                    generation,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "search index rebuilt"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "search index not rebuilt; searching with FTS5")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search index not rebuilt; searching with FTS5")
                }
            }
        });
    }

    /// A search answered by FTS5 (the index is stale or absent): at the
    /// strictest stage that finds anything, as the index does, less typo
    /// tolerance and joined words.
    async fn search_fts(
        &self,
        words: &[String],
        tags: &[String],
        offset: usize,
        limit: usize,
        from_cursor: Option<Match>,
    ) -> Result<(Vec<Hit>, Match), CatalogError> {
        let stages = Match::plan(words.len(), from_cursor, false);
        let words = words.to_vec();
        let tags = json_text(&tags);
        let tags_wanted = tags != "[]";
        Ok(self
            .db
            .run(move |c| {
                let page = |stage: Match, limit: usize, offset: usize| -> Result<Vec<Hit>, DbError> {
                    // The page is ranked first and only its rows are joined and
                    // given a snippet: snippets for every match of a common word
                    // cost more than ranking them. Items are joined for ranking
                    // only when tags filter them. Ties go by rowid (one file, so the
                    // same order in every process reading it).
                    let filter = if tags_wanted {
                        "JOIN items i ON i.rowid = f.rowid
                         WHERE items_fts MATCH ?1
                           AND NOT EXISTS (SELECT 1 FROM json_each(?2) want
                                           WHERE want.value NOT IN (SELECT value FROM json_each(i.tags)))"
                    } else {
                        "WHERE items_fts MATCH ?1 AND ?2 IS NOT NULL"
                    };
                    let sql = format!(
                        "WITH page AS (
                            SELECT f.rowid AS rowid, bm25(items_fts, {BM25_WEIGHTS}) AS rank
                            FROM items_fts f {filter}
                            ORDER BY rank, f.rowid
                            LIMIT ?3 OFFSET ?4)
                         SELECT i.id, i.title, i.url, i.tags,
                                snippet(items_fts, -1, '**', '**', '…', 24), page.rank
                         FROM page JOIN items_fts ON items_fts.rowid = page.rowid
                                   JOIN items i ON i.rowid = page.rowid
                         WHERE items_fts MATCH ?1
                         ORDER BY page.rank, page.rowid"
                    );
                    let mut stmt = c.prepare_cached(&sql)?;
                    let expression = fts_expression(&words, stage);
                    let bound = params![expression, tags, limit as i64, offset as i64];
                    let rows = stmt.query_map(bound, |r| {
                        let tags: String = r.get(3)?;
                        Ok(Hit {
                            id: r.get(0)?,
                            title: r.get(1)?,
                            url: r.get(2)?,
                            tags: serde_json::from_str(&tags).unwrap_or_default(),
                            snippet: r.get(4)?,
                            score: -r.get::<_, f64>(5)?,
                        })
                    })?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                };
                Match::first_answering(&stages, offset, limit, page)
            })
            .await?)
    }

    /// A search answered by the index, or `None` when it is stale (or failed).
    async fn search_index(
        &self,
        words: Vec<String>,
        tags: Vec<String>,
        offset: usize,
        limit: usize,
        from_cursor: Option<Match>,
    ) -> Result<Option<(Vec<Hit>, Match)>, CatalogError> {
        let Some(index) = self.index.clone() else {
            return Ok(None);
        };
        let hits = self
            .db
            .run(move |c| {
                // One read: the generation and the rows the index points at.
                let tx = c.transaction()?;
                let generation = generation(&tx)?;
                if index.generation() != generation {
                    index.refresh();
                    if index.generation() != generation {
                        return Ok(None);
                    }
                }
                let (found, snippets, stage) =
                    match index.search(&words, &tags, offset, limit, from_cursor) {
                        Ok(found) => found,
                        Err(e) => {
                            tracing::warn!(error = %e, "search index failed; searching with FTS5");
                            return Ok(None);
                        }
                    };
                let mut row = tx.prepare_cached(
                    "SELECT id, title, url, tags, body FROM items WHERE rowid = ?1",
                )?;
                let mut hits = Vec::with_capacity(found.len());
                for (rowid, score) in found {
                    let item = row
                        .query_row([rowid], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Option<String>>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, String>(4)?,
                            ))
                        })
                        .optional()?;
                    if let Some((id, title, url, tags, body)) = item {
                        hits.push(Hit {
                            id,
                            snippet: snippets.make(&title, &body),
                            title,
                            url,
                            tags: serde_json::from_str(&tags).unwrap_or_default(),
                            score: f64::from(score),
                        });
                    }
                }
                Ok(Some((hits, stage)))
            })
            .await?;
        if hits.is_none() {
            self.rebuild_in_background();
        }
        Ok(hits)
    }
}

/// The catalog generation: moved by every change to `items`.
fn generation(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT value FROM catalog_meta WHERE key = 'generation'",
        [],
        |r| r.get(0),
    )
}

/// The words of a query as an FTS5 expression at one stage of matching: each
/// word quoted (so no input is read as FTS syntax); all required, or any; the
/// last also as a prefix once matching is loose. FTS5 has no typo tolerance:
/// the search index has (docs/design/catalog.md). Words match whole (after
/// Porter stemming: `fetching` finds `fetch`) at first: prefix matches
/// (`fetch` → `fetchpriority`) would crowd out exact ones.
fn fts_expression(words: &[String], stage: Match) -> String {
    // A prefix query matches the whole word too.
    stage.expression(
        words,
        |w| format!("\"{w}\""),
        |w| format!("\"{w}\"*"),
        (" ", " OR "),
    )
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn item_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let tags: String = row.get(4)?;
    let attributes: String = row.get(5)?;
    Ok(Item {
        id: row.get(0)?,
        title: row.get(1)?,
        body: row.get(2)?,
        url: row.get(3)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

const ITEM_COLUMNS: &str = "id, title, body, url, tags, attributes, created_at, updated_at";
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

#[async_trait::async_trait]
impl Catalog for SqliteCatalog {
    async fn search(&self, q: SearchQuery) -> Result<SearchPage, CatalogError> {
        let words = query_words(&q.query);
        if words.is_empty() {
            return Err(CatalogError::Invalid(
                "`query` has no words to search for".into(),
            ));
        }
        let page = cursor::Page::of(&q)?;
        let offset = page.offset;
        let limit = q.limit.clamp(1, crate::catalog::MAX_LIMIT) as usize;
        let found = match self
            .search_index(words.clone(), q.tags.clone(), offset, limit + 1, page.stage)
            .await?
        {
            Some(found) => found,
            None => {
                self.search_fts(&words, &q.tags, offset, limit + 1, page.stage)
                    .await?
            }
        };
        let (mut hits, stage) = found;
        let more = hits.len() > limit;
        hits.truncate(limit);
        for h in &mut hits {
            h.score = (h.score * 1000.0).round() / 1000.0;
        }
        let next_cursor = more.then(|| page.next(limit, stage)).flatten();
        Ok(SearchPage {
            note: stage.note().filter(|_| !hits.is_empty()),
            hits,
            next_cursor,
        })
    }

    async fn prepare_search(&self) -> Result<(), CatalogError> {
        self.update_search_index().await
    }

    async fn get(&self, id: &str) -> Result<Option<Item>, CatalogError> {
        let id = id.to_owned();
        Ok(self
            .db
            .run(move |c| {
                Ok(
                    c.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"))?
                        .query_row([id], item_from_row)
                        .optional()?,
                )
            })
            .await?)
    }

    async fn upsert(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.import(items, false).await
    }

    async fn replace(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.import(items, true).await
    }

    async fn export(&self) -> Result<Vec<Item>, CatalogError> {
        Ok(self
            .db
            .run(|c| {
                let mut stmt =
                    c.prepare(&format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY id"))?;
                let items = stmt
                    .query_map([], item_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(items)
            })
            .await?)
    }

    async fn count(&self) -> Result<u64, CatalogError> {
        Ok(self
            .db
            .run(|c| {
                Ok(c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))? as u64)
            })
            .await?)
    }

    async fn list_tables(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self.db.run(|c| Ok(user_tables(c)?)).await?)
    }

    async fn describe_table(&self, table: &str) -> Result<Vec<Column>, CatalogError> {
        let table = table.to_owned();
        self.db
            .run(move |c| {
                let tables = user_tables(c)?;
                if !tables.contains(&table) {
                    return Ok(Err(CatalogError::NotFound(format!(
                        "no table `{table}`; tables: {}",
                        tables.join(", ")
                    ))));
                }
                let mut stmt = c.prepare(
                    "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
                )?;
                let columns = stmt
                    .query_map([&table], |r| {
                        Ok(Column {
                            name: r.get(0)?,
                            kind: r.get(1)?,
                            nullable: r.get::<_, i64>(2)? == 0,
                            primary_key: r.get::<_, i64>(3)? > 0,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Ok(columns))
            })
            .await?
    }

    fn sql_dialect(&self) -> SqlDialect {
        SqlDialect::Sqlite
    }

    async fn query(&self, sql: &str, params: Vec<Value>) -> Result<QueryResult, CatalogError> {
        let sql = sql.to_owned();
        let limits = self.limits;
        self.db
            .run_readonly(move |c| Ok(run_query(c, &sql, &params, limits)))
            .await?
    }

    async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, CatalogError> {
        let sql = sql.to_owned();
        let limits = self.limits;
        self.db
            .run(move |c| {
                let outcome = (|| {
                    let tx =
                        c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let changed = {
                        let mut stmt = tx.prepare(&sql).map_err(|e| explain(e, limits))?;
                        let expected = stmt.parameter_count();
                        if expected != params.len() {
                            return Err(CatalogError::Invalid(format!(
                                "the statement has {expected} parameter(s) but {} were given",
                                params.len()
                            )));
                        }
                        let bound: Vec<rusqlite::types::Value> =
                            params.iter().map(to_sql).collect();
                        stmt.execute(rusqlite::params_from_iter(bound))
                            .map_err(|e| explain(e, limits))?
                    };
                    tx.commit()?;
                    Ok(changed as u64)
                })();
                Ok(outcome)
            })
            .await?
    }
}

/// Tables a user may see: not SQLite's, not FTS shadow tables, not Wharf's own.
fn user_tables(c: &rusqlite::Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'items_fts%' AND name <> 'catalog_meta' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names
        .into_iter()
        .filter(|n| !INTERNAL_TABLES.contains(&n.as_str()))
        .collect())
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(V::Integer)
            .unwrap_or_else(|| V::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => V::Text(s.clone()),
        other => V::Text(other.to_string()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<blob of {} bytes>", b.len())),
    }
}

/// Runs on a blocking thread: its deadline is the wall clock's, whatever the
/// runtime's clock says (SQLite's progress handler asks it from C).
#[allow(clippy::disallowed_types)]
fn run_query(
    c: &mut rusqlite::Connection,
    sql: &str,
    params: &[Value],
    limits: SqlLimits,
) -> Result<QueryResult, CatalogError> {
    let deadline = std::time::Instant::now() + limits.timeout;
    c.progress_handler(
        PROGRESS_STEPS,
        Some(move || std::time::Instant::now() > deadline),
    )?;
    let outcome = (|| {
        let mut stmt = c.prepare(sql).map_err(|e| explain(e, limits))?;
        if !stmt.readonly() {
            return Err(CatalogError::Invalid(
                "only statements that read are allowed (SELECT, WITH ... SELECT, EXPLAIN)".into(),
            ));
        }
        let expected = stmt.parameter_count();
        if expected != params.len() {
            return Err(CatalogError::Invalid(format!(
                "the statement has {expected} parameter(s) but {} were given",
                params.len()
            )));
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let bound: Vec<rusqlite::types::Value> = params.iter().map(to_sql).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound))
            .map_err(|e| explain(e, limits))?;
        let mut out = CappedRows::new(limits);
        while out.wants_more()
            && let Some(row) = rows.next().map_err(|e| explain(e, limits))?
        {
            out.push(
                (0..columns.len())
                    .map(|i| row.get_ref(i).map(from_sql).unwrap_or(Value::Null))
                    .collect(),
            );
        }
        Ok(out.finish(columns))
    })();
    // A handler left behind would interrupt every later query on this pooled
    // connection once its deadline passed, so failing to clear it is an error.
    c.progress_handler(0, None::<fn() -> bool>)?;
    // The authorizer refuses BEGIN and SAVEPOINT, so the statement's implicit
    // transaction ended with it; were one still open, the next caller on this
    // pooled connection would read a frozen snapshot. Checked, not assumed.
    if !c.is_autocommit() {
        c.authorizer(
            None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>,
        )?;
        let rolled_back = c.execute_batch("ROLLBACK");
        c.authorizer(Some(crate::sqlite::database::guard_untrusted_sql))?;
        rolled_back?;
        tracing::error!("an untrusted statement left a transaction open; rolled back");
    }
    outcome
}

/// The message a caller can act on for an error from untrusted SQL.
fn explain(e: rusqlite::Error, limits: SqlLimits) -> CatalogError {
    use rusqlite::ffi::ErrorCode;
    match &e {
        rusqlite::Error::MultipleStatement => {
            CatalogError::Invalid("only one statement is allowed per call".into())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::OperationInterrupted => {
            CatalogError::Timeout(limits.timeout.as_millis() as u64)
        }
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == ErrorCode::AuthorizationForStatementDenied
                || msg.as_deref().is_some_and(|m| m.starts_with("not authorized")) =>
        {
            CatalogError::Invalid(format!(
                "not allowed: {} (ATTACH, DETACH, BEGIN/SAVEPOINT, PRAGMA assignments, extensions and Wharf's internal tables are off limits)",
                msg.as_deref().unwrap_or("denied")
            ))
        }
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::ReadOnly) => {
            CatalogError::Invalid("this tool only reads; the database refused a write".into())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::TooBig => {
            CatalogError::Invalid(
                "the statement builds a string or blob larger than this server allows (catalog.sql_max_value_bytes); build smaller values".into(),
            )
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::OutOfMemory => {
            CatalogError::Invalid(
                "the statement needs more memory than this server allows (database.sqlite_memory_limit); narrow the query".into(),
            )
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) => {
            CatalogError::Invalid(format!("SQL error: {msg}"))
        }
        rusqlite::Error::SqlInputError { msg, .. } if msg.starts_with("not authorized") => {
            CatalogError::Invalid(format!(
                "not allowed: {msg} (ATTACH, DETACH, BEGIN/SAVEPOINT, PRAGMA assignments, extensions and Wharf's internal tables are off limits)"
            ))
        }
        rusqlite::Error::SqlInputError { msg, .. } => {
            CatalogError::Invalid(format!("SQL error: {msg}"))
        }
        _ => CatalogError::Db(DbError::Sqlite(e)),
    }
}
