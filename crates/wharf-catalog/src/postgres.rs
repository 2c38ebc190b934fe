//! The catalog on PostgreSQL, for when one machine is not enough: the same tools
//! and results as SQLite, with `tsvector` full-text search (`websearch_to_tsquery`,
//! a GIN index, `ts_rank` normalised by document length so that a short exact
//! title beats a long text that repeats the word, `ts_headline` snippets), migrations applied on
//! start, a configurable pool, and read-only SQL in a `READ ONLY` transaction
//! under a role that holds only `SELECT` grants, with a `statement_timeout`.
//!
//! The session store lives here too, so replicas that share the database share
//! sessions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::{StreamExt, pin_mut};
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use serde_json::Value;
use tokio_postgres::{
    NoTls,
    types::{ToSql, Type},
};

use crate::{
    catalog::{
        Catalog, CatalogError, Column, Hit, ImportSummary, QueryResult, SearchPage, SearchQuery,
    },
    cursor,
    item::Item,
    sqlite::SqlLimits,
};

/// The role untrusted SQL runs as: it can read `items` and nothing else.
const READER_ROLE: &str = "wharf_reader";

/// Schema migrations, in order; `wharf_schema.version` records how many ran.
const MIGRATIONS: &[&str] = &["CREATE TABLE items (
        id text PRIMARY KEY,
        title text NOT NULL,
        body text NOT NULL DEFAULT '',
        url text,
        tags jsonb NOT NULL DEFAULT '[]',
        attributes jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', title), 'A') ||
            setweight(jsonb_to_tsvector('english', tags, '[\"string\"]'), 'B') ||
            setweight(to_tsvector('english', body), 'C')
        ) STORED
    );
    CREATE INDEX items_search ON items USING gin (search);
    CREATE TABLE mcp_sessions (
        id text PRIMARY KEY,
        state jsonb NOT NULL,
        created_at bigint NOT NULL,
        last_seen bigint NOT NULL
    );
    CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen);"];

/// Errors from PostgreSQL.
fn db(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Db(crate::error::DbError::Postgres(e.to_string()))
}

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgDatabase {
    pool: Pool,
    reader_role: bool,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase").finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// The pool's use now.
    pub fn pool_use(&self) -> Vec<(&'static str, crate::PoolUse)> {
        let status = self.pool.status();
        vec![(
            "main",
            crate::PoolUse {
                in_use: status.size.saturating_sub(status.available),
                idle: status.available,
                max: status.max_size,
            },
        )]
    }

    /// Connect, migrate, and set up the read-only role. The URL's password never
    /// appears in an error.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, CatalogError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| CatalogError::Invalid(format!("not a PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(db)?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| db(format!("cannot connect to PostgreSQL: {e}")))?;
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS wharf_schema (version integer NOT NULL); LOCK TABLE wharf_schema")
            .await
            .map_err(db)?;
        let applied: i64 = tx
            .query_opt("SELECT version FROM wharf_schema", &[])
            .await
            .map_err(db)?
            .map_or(0, |r| i64::from(r.get::<_, i32>(0)));
        if applied > MIGRATIONS.len() as i64 {
            return Err(CatalogError::Invalid(format!(
                "the database has schema version {applied}, newer than this Wharf knows ({}); upgrade Wharf",
                MIGRATIONS.len()
            )));
        }
        for sql in MIGRATIONS.iter().skip(applied as usize) {
            tx.batch_execute(sql).await.map_err(db)?;
        }
        tx.execute("DELETE FROM wharf_schema", &[])
            .await
            .map_err(db)?;
        tx.execute(
            "INSERT INTO wharf_schema VALUES ($1)",
            &[&(MIGRATIONS.len() as i32)],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let reader_role = ensure_reader_role(&client).await;
        if !reader_role {
            tracing::warn!(
                role = READER_ROLE,
                "cannot create or use the read-only role; untrusted SQL is limited by READ ONLY transactions only. \
                 Create it as an administrator: CREATE ROLE wharf_reader NOLOGIN; GRANT SELECT ON items TO wharf_reader; \
                 GRANT wharf_reader TO <wharf's user>"
            );
        }
        Ok(Self { pool, reader_role })
    }

    pub async fn ping(&self) -> Result<(), CatalogError> {
        let c = self.pool.get().await.map_err(db)?;
        c.query_one("SELECT 1", &[]).await.map_err(db)?;
        Ok(())
    }
}

/// Create the reader role if needed and check that this user may switch to it.
async fn ensure_reader_role(client: &deadpool_postgres::Client) -> bool {
    let setup = format!(
        "DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN CREATE ROLE {READER_ROLE} NOLOGIN; END IF;
         END $$;
         GRANT SELECT ON items TO {READER_ROLE};
         GRANT {READER_ROLE} TO CURRENT_USER;"
    );
    if let Err(e) = client.batch_execute(&setup).await {
        tracing::debug!(error = %e, "reader role setup");
    }
    client
        .query_one(
            &format!("SELECT pg_has_role(current_user, '{READER_ROLE}', 'MEMBER')"),
            &[],
        )
        .await
        .is_ok_and(|r| r.get::<_, bool>(0))
}

/// The catalog on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    db: PgDatabase,
    limits: SqlLimits,
}

impl PgCatalog {
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
        if !q.query.chars().any(char::is_alphanumeric) {
            return Err(CatalogError::Invalid(
                "`query` has no words to search for".into(),
            ));
        }
        let page = cursor::Page::of(&q)?;
        let offset = page.offset;
        let limit = q.limit.clamp(1, crate::catalog::MAX_LIMIT) as i64;
        let tags = serde_json::to_value(&q.tags).unwrap_or(Value::Array(vec![]));
        let client = self.db.pool.get().await.map_err(db)?;
        let rows = client
            .query(
                "SELECT id, title, url, tags,
                        ts_headline('english', title || '. ' || body, query,
                                    'StartSel=**, StopSel=**, MaxWords=30, MinWords=10, MaxFragments=1, FragmentDelimiter=…') AS snippet,
                        ts_rank(search, query, 1)::float8 AS score
                 FROM items, websearch_to_tsquery('english', $1) AS query
                 WHERE search @@ query AND tags @> $2
                 ORDER BY score DESC, id
                 LIMIT $3 OFFSET $4",
                &[&q.query, &tags, &(limit + 1), &(offset as i64)],
            )
            .await
            .map_err(db)?;
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
            hits,
            next_cursor: more.then(|| page.next(limit as usize)),
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
        tx.commit().await.map_err(db)?;
        Ok(summary)
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
                 WHERE table_schema = current_schema() AND table_name NOT IN ('mcp_sessions', 'wharf_schema') ORDER BY 1",
                &[],
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

    async fn query(&self, sql: &str, params: Vec<Value>) -> Result<QueryResult, CatalogError> {
        let mut client = self.db.pool.get().await.map_err(db)?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let ms = self.limits.timeout.as_millis().max(1);
        tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
            .await
            .map_err(db)?;
        if self.db.reader_role {
            tx.batch_execute(&format!("SET LOCAL ROLE {READER_ROLE}"))
                .await
                .map_err(db)?;
        }
        let sql = sql.trim().trim_end_matches(';');
        let stmt = tx
            .prepare(sql)
            .await
            .map_err(|e| explain(&e, self.limits))?;
        let bound = bind_all(&stmt, &params)?;
        let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        if columns.is_empty() {
            return Err(CatalogError::Invalid(
                "only statements that read are allowed (SELECT, WITH ... SELECT)".into(),
            ));
        }
        // Every column of every type becomes JSON in the database, in column order.
        let wrapped = format!("SELECT to_jsonb(q) FROM ({sql}) AS q");
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        // A portal fetches at most one row past the cap, and the stream is always
        // read to its end: a result stream dropped half-read stalls the connection.
        let wrapped = tx
            .prepare(&wrapped)
            .await
            .map_err(|e| explain(&e, self.limits))?;
        let portal = tx
            .bind_raw(&wrapped, refs)
            .await
            .map_err(|e| explain(&e, self.limits))?;
        let fetch = i32::try_from(self.limits.max_rows + 1).unwrap_or(i32::MAX);
        let stream = tx
            .query_portal_raw(&portal, fetch)
            .await
            .map_err(|e| explain(&e, self.limits))?;
        pin_mut!(stream);
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        let mut truncated = None;
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| explain(&e, self.limits))?;
            if truncated.is_some() {
                continue;
            }
            if rows.len() == self.limits.max_rows {
                truncated = Some(format!(
                    "only the first {} rows are returned; add LIMIT/OFFSET or narrow the query",
                    self.limits.max_rows
                ));
                continue;
            }
            let object: Value = row.get(0);
            let values: Vec<Value> = columns
                .iter()
                .map(|c| object.get(c).cloned().unwrap_or(Value::Null))
                .collect();
            bytes += serde_json::to_string(&values).map_or(0, |s| s.len());
            if bytes > self.limits.max_bytes {
                truncated = Some(format!(
                    "the result was cut at {} rows to stay under {} bytes; select fewer columns or rows",
                    rows.len(),
                    self.limits.max_bytes
                ));
                continue;
            }
            rows.push(values);
        }
        tx.rollback().await.map_err(db)?;
        Ok(QueryResult {
            columns,
            rows,
            truncated,
        })
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
            .prepare(sql.trim().trim_end_matches(';'))
            .await
            .map_err(|e| explain(&e, self.limits))?;
        let bound = bind_all(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let changed = tx
            .execute(&stmt, &refs)
            .await
            .map_err(|e| explain(&e, self.limits))?;
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

fn explain(e: &tokio_postgres::Error, limits: SqlLimits) -> CatalogError {
    use tokio_postgres::error::SqlState;
    let Some(dbe) = e.as_db_error() else {
        return db(e);
    };
    match *dbe.code() {
        SqlState::QUERY_CANCELED => CatalogError::Timeout(limits.timeout.as_millis() as u64),
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

/// rmcp's `SessionStore` on PostgreSQL; the same rules as the SQLite store.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    db: PgDatabase,
    idle_timeout: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PgSessionStore {
    pub fn new(db: PgDatabase, idle_timeout: Duration) -> Self {
        Self { db, idle_timeout }
    }

    fn cutoff(&self) -> i64 {
        now_ms() - self.idle_timeout.as_millis() as i64
    }

    pub async fn touch(&self, ids: Vec<String>) -> Result<(), CatalogError> {
        if ids.is_empty() {
            return Ok(());
        }
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "UPDATE mcp_sessions SET last_seen = $1 WHERE id = ANY($2)",
            &[&now_ms(), &ids],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    pub async fn sweep(&self) -> Result<usize, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        Ok(c.execute(
            "DELETE FROM mcp_sessions WHERE last_seen < $1",
            &[&self.cutoff()],
        )
        .await
        .map_err(db)? as usize)
    }
}

#[async_trait::async_trait]
impl SessionStore for PgSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let c = self.db.pool.get().await?;
        let row = c
            .query_opt(
                "UPDATE mcp_sessions SET last_seen = $1 WHERE id = $2 AND last_seen >= $3 RETURNING state",
                &[&now_ms(), &session_id, &self.cutoff()],
            )
            .await?;
        Ok(match row {
            Some(r) => Some(serde_json::from_value(r.get::<_, Value>(0))?),
            None => None,
        })
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let c = self.db.pool.get().await?;
        let json = serde_json::to_value(state)?;
        c.execute(
            "INSERT INTO mcp_sessions (id, state, created_at, last_seen) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen",
            &[&session_id, &json, &now_ms()],
        )
        .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let c = self.db.pool.get().await?;
        c.execute("DELETE FROM mcp_sessions WHERE id = $1", &[&session_id])
            .await?;
        Ok(())
    }
}
