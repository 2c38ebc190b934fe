//! The catalog on PostgreSQL, for when one machine is not enough: the same tools
//! and results as SQLite, with `tsvector` full-text search (`websearch_to_tsquery`,
//! a GIN index, `ts_rank` normalised by document length so that a short exact
//! title beats a long text that repeats the word, `ts_headline` snippets), and
//! untrusted SQL run on its own cleaned pool, in a `READ ONLY` transaction of its
//! own, as a role that holds only `SELECT` grants, under a `statement_timeout`,
//! small `work_mem` and (where allowed) `temp_file_limit`, with the functions
//! that act beyond the statement refused by name (`untrusted_sql`).

use futures::{StreamExt, pin_mut};
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};

use crate::{
    catalog::{
        CappedRows, Catalog, CatalogError, Column, Hit, ImportSummary, Match, QueryResult,
        SearchPage, SearchQuery, SqlDialect, SqlLimits, query_words,
    },
    cursor,
    item::Item,
    postgres::database::{PgDatabase, READER_ROLE, db},
};

/// Memory one sort or hash of an untrusted statement may use in the server
/// before it spills to disk (PostgreSQL's default is 4 MB; a statement may use
/// several).
const UNTRUSTED_WORK_MEM: &str = "8MB";

/// The temporary files an untrusted statement may write, where Wharf's user
/// may set it.
const UNTRUSTED_TEMP_FILES: &str = "64MB";

/// The catalog on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    db: PgDatabase,
    limits: SqlLimits,
}

impl PgCatalog {
    /// Upsert `items`, and with `replace` delete every other item, in one
    /// transaction.
    async fn import(&self, items: Vec<Item>, replace: bool) -> Result<ImportSummary, CatalogError> {
        let mut client = self.db.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        // `xmax = 0` tells an insert from an update; an unchanged row is not touched.
        let stmt = tx
            .prepare(
                "INSERT INTO items (id, title, body, url, tags, attributes) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, url = excluded.url,
                     tags = excluded.tags, attributes = excluded.attributes, updated_at = now()
                 WHERE (items.title, items.body, items.url, items.tags, items.attributes)
                       IS DISTINCT FROM (excluded.title, excluded.body, excluded.url, excluded.tags, excluded.attributes)
                 RETURNING (xmax = 0) AS inserted",
            )
            .await
            .map_err(db)?;
        let mut summary = ImportSummary::default();
        let ids: Vec<String> = if replace {
            items.iter().map(|i| i.id.clone()).collect()
        } else {
            Vec::new()
        };
        for item in items {
            let tags = serde_json::to_value(&item.tags).unwrap_or(Value::Array(vec![]));
            let attributes = Value::Object(item.attributes);
            let row = tx
                .query_opt(
                    &stmt,
                    &[
                        &item.id,
                        &item.title,
                        &item.body,
                        &item.url,
                        &tags,
                        &attributes,
                    ],
                )
                .await
                .map_err(db)?;
            match row {
                None => summary.unchanged += 1,
                Some(r) if r.get::<_, bool>(0) => summary.inserted += 1,
                Some(_) => summary.updated += 1,
            }
        }
        if replace {
            summary.removed = tx
                .execute("DELETE FROM items WHERE NOT (id = ANY($1))", &[&ids])
                .await
                .map_err(db)? as usize;
        }
        tx.commit().await.map_err(db)?;
        Ok(summary)
    }

    pub fn new(db: PgDatabase, limits: SqlLimits) -> Self {
        Self { db, limits }
    }
}

fn item_from_row(r: &tokio_postgres::Row) -> Item {
    Item {
        id: r.get("id"),
        title: r.get("title"),
        body: r.get("body"),
        url: r.get("url"),
        tags: serde_json::from_value(r.get::<_, Value>("tags")).unwrap_or_default(),
        attributes: serde_json::from_value(r.get::<_, Value>("attributes")).unwrap_or_default(),
        created_at: Some(r.get("created_at")),
        updated_at: Some(r.get("updated_at")),
    }
}

const ITEM_SELECT: &str = "SELECT id, title, body, url, tags, attributes,
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at,
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS updated_at FROM items";

#[async_trait::async_trait]
impl Catalog for PgCatalog {
    async fn search(&self, q: SearchQuery) -> Result<SearchPage, CatalogError> {
        let words = query_words(&q.query);
        if words.is_empty() {
            return Err(CatalogError::Invalid(
                "`query` has no words to search for".into(),
            ));
        }
        let page = cursor::Page::of(&q)?;
        let offset = page.offset as i64;
        let limit = q.limit.clamp(1, crate::catalog::MAX_LIMIT) as i64;
        let tags = serde_json::to_value(&q.tags).unwrap_or(Value::Array(vec![]));
        let client = self.db.pool.get().await.map_err(db)?;
        // PostgreSQL's text search has no typo tolerance without pg_trgm, and
        // searches title, body and tags only (docs/design/catalog.md). A later
        // page matches as its first did (the stage is in the cursor).
        let stages = Match::plan(words.len(), page.stage, false);
        let sql = "SELECT id, title, url, tags,
                        ts_headline('english', title || '. ' || body, query,
                                    'StartSel=**, StopSel=**, MaxWords=30, MinWords=10, MaxFragments=1, FragmentDelimiter=…') AS snippet,
                        ts_rank(search, query, 1)::float8 AS score
                 FROM items, to_tsquery('english', $1) AS query
                 WHERE search @@ query AND tags @> $2
                 ORDER BY score DESC, id
                 LIMIT $3 OFFSET $4";
        let mut chosen = (Vec::new(), Match::Every);
        for (n, &stage) in stages.iter().enumerate() {
            let expression = ts_expression(&words, stage);
            let last = n + 1 == stages.len();
            // A later page's cursor names its stage; one made before stages
            // existed has the first stage that finds anything probed for.
            if offset > 0 && !last {
                let first = client
                    .query(sql, &[&expression, &tags, &1i64, &0i64])
                    .await
                    .map_err(db)?;
                if first.is_empty() {
                    continue;
                }
            }
            let rows = client
                .query(sql, &[&expression, &tags, &(limit + 1), &offset])
                .await
                .map_err(db)?;
            if rows.is_empty() && offset == 0 && !last {
                continue;
            }
            chosen = (rows, stage);
            break;
        }
        let (rows, stage) = chosen;
        let mut hits: Vec<Hit> = rows
            .iter()
            .map(|r| Hit {
                id: r.get("id"),
                title: r.get("title"),
                url: r.get("url"),
                tags: serde_json::from_value(r.get::<_, Value>("tags")).unwrap_or_default(),
                snippet: r.get("snippet"),
                score: (r.get::<_, f64>("score") * 1000.0).round() / 1000.0,
            })
            .collect();
        let more = hits.len() as i64 > limit;
        hits.truncate(limit as usize);
        Ok(SearchPage {
            note: stage.note().filter(|_| !hits.is_empty()),
            next_cursor: more.then(|| page.next(limit as usize, stage)).flatten(),
            hits,
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Item>, CatalogError> {
        let client = self.db.pool.get().await.map_err(db)?;
        let row = client
            .query_opt(&format!("{ITEM_SELECT} WHERE id = $1"), &[&id])
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(item_from_row))
    }

    async fn upsert(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.import(items, false).await
    }

    async fn replace(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.import(items, true).await
    }

    async fn export(&self) -> Result<Vec<Item>, CatalogError> {
        let client = self.db.pool.get().await.map_err(db)?;
        let rows = client
            .query(&format!("{ITEM_SELECT} ORDER BY id"), &[])
            .await
            .map_err(db)?;
        Ok(rows.iter().map(item_from_row).collect())
    }

    async fn count(&self) -> Result<u64, CatalogError> {
        let client = self.db.pool.get().await.map_err(db)?;
        Ok(client
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .map_err(db)?
            .get::<_, i64>(0) as u64)
    }

    async fn list_tables(&self) -> Result<Vec<String>, CatalogError> {
        let client = self.db.pool.get().await.map_err(db)?;
        let rows = client
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name::text <> ALL($1) ORDER BY 1",
                &[&crate::catalog::INTERNAL_TABLES],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn describe_table(&self, table: &str) -> Result<Vec<Column>, CatalogError> {
        let tables = self.list_tables().await?;
        if !tables.iter().any(|t| t == table) {
            return Err(CatalogError::NotFound(format!(
                "no table `{table}`; tables: {}",
                tables.join(", ")
            )));
        }
        let client = self.db.pool.get().await.map_err(db)?;
        let rows = client
            .query(
                "SELECT c.column_name::text, c.data_type::text, c.is_nullable = 'YES',
                        EXISTS (SELECT 1 FROM information_schema.key_column_usage k
                                JOIN information_schema.table_constraints t ON t.constraint_name = k.constraint_name
                                WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name AND k.column_name = c.column_name)
                 FROM information_schema.columns c
                 WHERE c.table_schema = current_schema() AND c.table_name = $1 ORDER BY c.ordinal_position",
                &[&table],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                kind: r.get(1),
                nullable: r.get(2),
                primary_key: r.get(3),
            })
            .collect())
    }

    fn sql_dialect(&self) -> SqlDialect {
        SqlDialect::Postgres
    }

    async fn query(&self, sql: &str, params: Vec<Value>) -> Result<QueryResult, CatalogError> {
        if let Some(name) = crate::untrusted_sql::refused_pg_function(sql) {
            return Err(CatalogError::Invalid(format!(
                "not allowed: `{name}` acts beyond one read-only statement (advisory locks, settings, files, other servers, SQL from strings and server control are off limits)"
            )));
        }
        if crate::untrusted_sql::has_several_statements(sql) {
            return Err(CatalogError::Invalid(
                "only one statement is allowed per call".into(),
            ));
        }
        let sql = crate::untrusted_sql::statement_body(sql);
        let limits = self.limits;
        let mut client = self.db.untrusted.get().await.map_err(db)?;
        // Its own transaction, which ends with it (rolled back): nothing it
        // sets outlives it, and the pool cleans the connection besides.
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let ms = limits.timeout.as_millis().max(1);
        let mut settings = format!(
            "SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}; SET LOCAL work_mem = '{UNTRUSTED_WORK_MEM}';"
        );
        if self.db.temp_file_limit {
            settings.push_str(&format!(
                " SET LOCAL temp_file_limit = '{UNTRUSTED_TEMP_FILES}';"
            ));
        }
        if self.db.reader_role {
            settings.push_str(&format!(" SET LOCAL ROLE {READER_ROLE};"));
        }
        tx.batch_execute(&settings).await.map_err(db)?;
        let stmt = tx.prepare(sql).await.map_err(|e| explain(e, limits))?;
        let bound = bind_all(&stmt, &params)?;
        let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        if columns.is_empty() {
            return Err(CatalogError::Invalid(
                "only statements that read are allowed (SELECT, WITH ... SELECT)".into(),
            ));
        }
        // Every column of every type becomes JSON in the database, in column
        // order; a row larger than the byte cap is measured there and never
        // sent (a single `repeat('x', 1e9)` cannot fill this process). The
        // statement sits on lines of its own, so a trailing `--` comment in it
        // cannot swallow the wrapper's closing parenthesis.
        let cap = bound.len() + 1;
        let wrapped = format!(
            "SELECT CASE WHEN n <= ${cap} THEN j END, n\n\
             FROM (SELECT j, octet_length(j::text) AS n\n\
                   FROM (SELECT to_jsonb(q) AS j FROM (\n{sql}\n) AS q) AS w) AS m"
        );
        let max_row = i32::try_from(limits.max_bytes).unwrap_or(i32::MAX);
        let mut refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        refs.push(&max_row);
        // A portal fetches at most one row past the cap, and the stream is always
        // read to its end: a result stream dropped half-read stalls the connection.
        let wrapped = tx.prepare(&wrapped).await.map_err(|e| explain(e, limits))?;
        let portal = tx
            .bind_raw(&wrapped, refs)
            .await
            .map_err(|e| explain(e, limits))?;
        let fetch = i32::try_from(limits.max_rows + 1).unwrap_or(i32::MAX);
        let stream = tx
            .query_portal_raw(&portal, fetch)
            .await
            .map_err(|e| explain(e, limits))?;
        pin_mut!(stream);
        let mut rows = CappedRows::new(limits);
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| explain(e, limits))?;
            if !rows.wants_more() {
                continue;
            }
            let Some(object) = row.get::<_, Option<Value>>(0) else {
                rows.too_large(row.get::<_, i32>(1).into());
                continue;
            };
            // A JSON or array column comes as its JSON text, as on SQLite.
            rows.push(
                columns
                    .iter()
                    .map(|c| match object.get(c) {
                        None => Value::Null,
                        Some(v @ (Value::Array(_) | Value::Object(_))) => {
                            Value::String(v.to_string())
                        }
                        Some(v) => v.clone(),
                    })
                    .collect(),
            );
        }
        tx.rollback().await.map_err(db)?;
        Ok(rows.finish(columns))
    }

    async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, CatalogError> {
        self.execute_in_transaction(sql, &params).await
    }
}

impl PgCatalog {
    async fn execute_in_transaction(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, CatalogError> {
        let mut client = self.db.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let stmt = tx
            .prepare(crate::untrusted_sql::statement_body(sql))
            .await
            .map_err(|e| explain(e, self.limits))?;
        let bound = bind_all(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let changed = tx
            .execute(&stmt, &refs)
            .await
            .map_err(|e| explain(e, self.limits))?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }
}

/// Each JSON value converted to its placeholder's type; the count must match.
fn bind_all(
    stmt: &tokio_postgres::Statement,
    params: &[Value],
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, CatalogError> {
    if stmt.params().len() != params.len() {
        return Err(CatalogError::Invalid(format!(
            "the statement has {} parameter(s) but {} were given",
            stmt.params().len(),
            params.len()
        )));
    }
    params
        .iter()
        .zip(stmt.params())
        .enumerate()
        .map(|(i, (v, t))| bind(i + 1, v, t))
        .collect()
}

fn bind(n: usize, v: &Value, t: &Type) -> Result<Box<dyn ToSql + Sync + Send>, CatalogError> {
    let wrong = || {
        CatalogError::Invalid(format!(
            "parameter ${n} must be a {t} value, not {v}; or cast it in the SQL (${n}::text)"
        ))
    };
    Ok(match *t {
        Type::INT2 => Box::new(
            v.as_i64()
                .and_then(|i| i16::try_from(i).ok())
                .ok_or_else(wrong)?,
        ),
        Type::INT4 => Box::new(
            v.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(wrong)?,
        ),
        Type::INT8 => Box::new(v.as_i64().ok_or_else(wrong)?),
        Type::FLOAT4 => Box::new(v.as_f64().ok_or_else(wrong)? as f32),
        Type::FLOAT8 => Box::new(v.as_f64().ok_or_else(wrong)?),
        Type::BOOL => Box::new(v.as_bool().ok_or_else(wrong)?),
        Type::JSON | Type::JSONB => Box::new(v.clone()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(match v {
                Value::String(s) => s.clone(),
                Value::Null => return Ok(Box::new(Option::<String>::None)),
                other => other.to_string(),
            })
        }
        _ => {
            return Err(CatalogError::Invalid(format!(
                "parameter ${n} has type {t}; cast it in the SQL, for example ${n}::text"
            )));
        }
    })
}

fn explain(e: tokio_postgres::Error, limits: SqlLimits) -> CatalogError {
    use tokio_postgres::error::SqlState;
    let Some(dbe) = e.as_db_error() else {
        return db(e);
    };
    match *dbe.code() {
        SqlState::QUERY_CANCELED => CatalogError::Timeout(limits.timeout.as_millis() as u64),
        // Every error this code sees ends the call, so the transaction can only
        // have failed unseen: the statement timer fired at the end of a prepare
        // or bind, whose trailing error tokio-postgres does not read.
        SqlState::IN_FAILED_SQL_TRANSACTION => {
            CatalogError::Timeout(limits.timeout.as_millis() as u64)
        }
        SqlState::READ_ONLY_SQL_TRANSACTION => CatalogError::Invalid(
            "only statements that read are allowed; the database refused a write".into(),
        ),
        SqlState::INSUFFICIENT_PRIVILEGE => {
            CatalogError::Invalid(format!("not allowed: {}", dbe.message()))
        }
        SqlState::SYNTAX_ERROR if dbe.message().contains("multiple commands") => {
            CatalogError::Invalid("only one statement is allowed per call".into())
        }
        _ if dbe.message().contains("cannot insert multiple commands") => {
            CatalogError::Invalid("only one statement is allowed per call".into())
        }
        _ => CatalogError::Invalid(format!("SQL error: {}", dbe.message())),
    }
}

/// The words of a query as a `to_tsquery` expression at one stage of
/// matching: all required (`&`) or any (`|`), the last also as a prefix
/// (`:*`) once matching is loose. The words are letters and digits only
/// ([`query_words`]), so nothing is read as tsquery syntax.
fn ts_expression(words: &[String], stage: Match) -> String {
    stage.expression(words, str::to_owned, |w| format!("{w}:*"), (" & ", " | "))
}
