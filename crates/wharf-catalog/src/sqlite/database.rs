//! The embedded SQLite database: one file, WAL mode, a pool of connections for
//! Wharf's own statements and a small read-only one for SQL from outside.
//!
//! rusqlite is synchronous; every use runs on tokio's blocking pool through
//! [`SqliteDatabase::run`], so a slow query never stalls the async workers.
//!
//! Untrusted SQL is bounded in what it can build and use: no string or blob
//! longer than `catalog.sql_max_value_bytes` (`SQLITE_LIMIT_LENGTH`), no
//! transaction or savepoint of its own (the statement's implicit transaction
//! ends with it, so no later caller on the pooled connection reads a frozen
//! snapshot), no ATTACH, no PRAGMA assignment, no `load_extension`, none of
//! Wharf's internal tables; and every SQLite connection of the process shares
//! one heap bound (`database.sqlite_memory_limit`, `PRAGMA hard_heap_limit`), so
//! no statement can take the process's memory.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{
    Connection, OpenFlags,
    hooks::{AuthAction, AuthContext, Authorization},
};

use crate::error::DbError;

/// Connections in the pool. SQLite in WAL mode serves many readers at once and
/// one writer; more connections than cores mostly wait on each other.
const POOL_SIZE: u32 = 8;

/// Read-only connections for untrusted SQL; few, so such queries cannot crowd out
/// the catalog's own reads.
const READONLY_POOL_SIZE: u32 = 4;

/// How long a writer waits for the write lock before `SQLITE_BUSY`. Several
/// processes may share the file (replicas on one host).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a pooled connection (or for a new one to open)
/// before its call fails with a clear error, rather than waiting r2d2's 30 s
/// while, say, the data directory has been deleted.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// How SQLite may use memory, for everything in this process.
#[derive(Debug, Clone, Copy)]
pub struct SqliteSettings {
    /// The heap all SQLite connections share (`PRAGMA hard_heap_limit`): past
    /// it, the statement that asks for more fails with "out of memory".
    pub memory_limit: usize,
    /// The longest string or blob untrusted SQL may build (`SQLITE_LIMIT_LENGTH`).
    pub max_value_bytes: usize,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            memory_limit: 256 * 1024 * 1024,
            max_value_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Append only: a shipped migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: legacy MCP sessions (rmcp SessionState as JSON), for cross-replica restore.
    "CREATE TABLE mcp_sessions (
        id TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL, -- ms since the Unix epoch
        last_seen INTEGER NOT NULL   -- ms since the Unix epoch
    );
    CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen);",
    // 2: the catalog, with full-text search (FTS5, porter stemming) kept in step by triggers.
    "CREATE TABLE items (
        id TEXT PRIMARY KEY NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL DEFAULT '',
        url TEXT,
        tags TEXT NOT NULL DEFAULT '[]',        -- JSON array of strings
        attributes TEXT NOT NULL DEFAULT '{}',  -- JSON object
        created_at TEXT NOT NULL,               -- RFC 3339, UTC
        updated_at TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE items_fts USING fts5(
        title, body, tags, content = 'items', content_rowid = 'rowid', tokenize = 'porter unicode61'
    );
    CREATE TRIGGER items_ai AFTER INSERT ON items BEGIN
        INSERT INTO items_fts (rowid, title, body, tags) VALUES (new.rowid, new.title, new.body, new.tags);
    END;
    CREATE TRIGGER items_ad AFTER DELETE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, title, body, tags) VALUES ('delete', old.rowid, old.title, old.body, old.tags);
    END;
    CREATE TRIGGER items_au AFTER UPDATE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, title, body, tags) VALUES ('delete', old.rowid, old.title, old.body, old.tags);
        INSERT INTO items_fts (rowid, title, body, tags) VALUES (new.rowid, new.title, new.body, new.tags);
    END;",
    // 3: a counter every change to the items moves, whoever makes it: the search
    // index records the value it was built from, and is stale when they differ.
    "CREATE TABLE catalog_meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
    INSERT INTO catalog_meta (key, value) VALUES ('generation', 0);
    CREATE TRIGGER items_gen_ai AFTER INSERT ON items BEGIN
        UPDATE catalog_meta SET value = value + 1 WHERE key = 'generation';
    END;
    CREATE TRIGGER items_gen_ad AFTER DELETE ON items BEGIN
        UPDATE catalog_meta SET value = value + 1 WHERE key = 'generation';
    END;
    CREATE TRIGGER items_gen_au AFTER UPDATE ON items BEGIN
        UPDATE catalog_meta SET value = value + 1 WHERE key = 'generation';
    END;",
    // 4: who created each legacy session (its subject), so no one else uses it.
    "ALTER TABLE mcp_sessions ADD COLUMN owner TEXT;",
    // 5: the gateway's audit trail: one row per tool call (arguments as a hash).
    "CREATE TABLE gateway_audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,      -- ms since the Unix epoch
        call_id TEXT NOT NULL,
        subject TEXT NOT NULL,       -- '' for an anonymous caller
        tool TEXT NOT NULL,
        upstream TEXT NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        args_hash TEXT NOT NULL,
        endpoint TEXT
    );
    CREATE INDEX gateway_audit_at ON gateway_audit (at_ms);
    CREATE INDEX gateway_audit_subject ON gateway_audit (subject, at_ms);",
    // 6: the gateway's token vault: each user's upstream tokens, sealed by the gateway.
    "CREATE TABLE gateway_tokens (
        upstream TEXT NOT NULL,
        subject TEXT NOT NULL,
        sealed TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (upstream, subject)
    );",
    // 7: the authorization server (account linking): clients, codes, refresh
    // tokens (by hash), consents, sealed signing keys, revoked families.
    "CREATE TABLE oauth_records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        family TEXT,
        subject TEXT,
        client_id TEXT,
        data TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_ms INTEGER,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX oauth_records_family ON oauth_records (family);
    CREATE INDEX oauth_records_subject ON oauth_records (kind, subject);
    CREATE INDEX oauth_records_expiry ON oauth_records (expires_ms);",
];

pub(crate) use crate::catalog::INTERNAL_TABLES;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct SqliteDatabase {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// Connections opened read-only, with `query_only` and an authorizer, for
    /// SQL that comes from outside (the SQL tools).
    readonly: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteDatabase {
    /// Open (or create) the SQLite database at `path` and bring its schema up
    /// to date, with the default [`SqliteSettings`].
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with(path, SqliteSettings::default()).await
    }

    /// [`SqliteDatabase::open`] with settings.
    pub async fn open_with(path: &Path, settings: SqliteSettings) -> Result<Self, DbError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, settings)).await?
    }

    fn open_blocking(path: PathBuf, settings: SqliteSettings) -> Result<Self, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let manager = SqliteConnectionManager::file(&path).with_init(|c| {
            c.busy_timeout(BUSY_TIMEOUT)?;
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
        });
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(POOL_WAIT)
            .build(manager)
            .map_err(|source| DbError::Open {
                path: path.clone(),
                source,
            })?;
        // Migrate before the read-only pool opens, so the file exists with its schema.
        let mut conn = pool.get()?;
        migrate(&path, &mut conn)?;
        // Process-wide: every connection, trusted or not, shares this bound.
        conn.pragma_update(None, "hard_heap_limit", settings.memory_limit as i64)?;
        drop(conn);
        let max_value = i32::try_from(settings.max_value_bytes).unwrap_or(i32::MAX);
        let readonly_manager = SqliteConnectionManager::file(&path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(move |c| {
                c.busy_timeout(BUSY_TIMEOUT)?;
                c.execute_batch("PRAGMA query_only = 1;")?;
                c.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, max_value)?;
                c.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
                c.authorizer(Some(guard_untrusted_sql))?;
                Ok(())
            });
        let readonly = r2d2::Pool::builder()
            .max_size(READONLY_POOL_SIZE)
            .connection_timeout(POOL_WAIT)
            .build(readonly_manager)
            .map_err(|source| DbError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            pool,
            readonly,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        on_blocking_pool(self.pool.clone(), f).await
    }

    /// Run `f` on a read-only connection (for SQL from outside).
    pub async fn run_readonly<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        on_blocking_pool(self.readonly.clone(), f).await
    }

    /// The pools' use now: `main` (the catalog, sessions) and `readonly` (SQL tools).
    pub fn pool_use(&self) -> Vec<(&'static str, crate::PoolUse)> {
        [("main", &self.pool), ("readonly", &self.readonly)]
            .map(|(name, pool)| {
                let state = pool.state();
                let idle = state.idle_connections as usize;
                let open = state.connections as usize;
                (
                    name,
                    crate::PoolUse {
                        in_use: open.saturating_sub(idle),
                        idle,
                        max: pool.max_size() as usize,
                    },
                )
            })
            .to_vec()
    }

    /// Whether the database can be used (for readiness): its file is still
    /// there (a deleted one keeps answering on open connections while every
    /// new one fails), and a read of its schema succeeds.
    pub async fn ping(&self) -> Result<(), DbError> {
        if let Err(source) = std::fs::metadata(&self.path) {
            return Err(DbError::Gone {
                path: self.path.clone(),
                source,
            });
        }
        self.run(|c| Ok(c.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?))
            .await
    }
}

/// Run `f` with a connection from `pool` on tokio's blocking pool.
async fn on_blocking_pool<T, F>(
    pool: r2d2::Pool<SqliteConnectionManager>,
    f: F,
) -> Result<T, DbError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

fn migrate(path: &Path, conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if applied > known {
        return Err(DbError::TooNew {
            path: path.to_owned(),
            found: applied,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// The authorizer of read-only connections: no ATTACH/DETACH (no other files),
/// no transaction or savepoint (a `BEGIN` left open would freeze the pooled
/// connection's snapshot for the next caller), no PRAGMA that sets anything,
/// no extension loading, no reads of Wharf's internal tables. Writes are
/// already impossible: the connection is read-only and `query_only`.
pub(crate) fn guard_untrusted_sql(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Authorization::Deny,
        AuthAction::Function { function_name }
            if REFUSED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Deny
        }
        AuthAction::Pragma {
            pragma_value: Some(_),
            ..
        } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if !READABLE_PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Deny
        }
        AuthAction::Read { table_name, .. } if INTERNAL_TABLES.contains(&table_name) => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Functions untrusted SQL may not call: they reach beyond the database.
const REFUSED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];

/// Pragmas untrusted SQL may read: schema introspection, and `data_version`,
/// which FTS5 reads on every full-text query.
const READABLE_PRAGMAS: &[&str] = &[
    "data_version",
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "foreign_key_list",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_directory_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/wharf.db");
        let db = SqliteDatabase::open(&path).await.unwrap();
        db.ping().await.unwrap();
        drop(db);
        let db = SqliteDatabase::open(&path).await.unwrap();
        let version: i64 = db
            .run(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn refuses_a_database_from_the_future() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        let err = SqliteDatabase::open(&path).await.unwrap_err();
        assert!(err.to_string().contains("newer Wharf"), "{err}");
    }
}
