//! The PostgreSQL database: two pools, migrations applied on start, and the
//! read-only role untrusted SQL runs as.
//!
//! The main pool serves the catalog's own statements and the session store.
//! Untrusted SQL (the SQL tools) gets a small pool of its own whose connections
//! are cleaned each time they go back (`RecyclingMethod::Clean`: session
//! settings reset, advisory locks released, temporary objects and prepared
//! statements dropped), so nothing one caller's statement leaves behind is seen
//! by the next, and such statements cannot crowd out the catalog's reads.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use crate::catalog::CatalogError;

/// The role untrusted SQL runs as: it can read `items` and nothing else.
pub(crate) const READER_ROLE: &str = "wharf_reader";

/// Connections for untrusted SQL: few, as on SQLite.
const UNTRUSTED_POOL_SIZE: usize = 4;

/// How long a caller waits for a connection, or for a new one to be made,
/// before its call fails with a clear error (rather than hanging while the
/// server is down or every connection is busy).
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Schema migrations, in order; `wharf_schema.version` records how many ran.
/// Append only: a shipped migration is never edited.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE items (
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
    CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen);",
    // 2: who created each legacy session (its subject), so no one else uses it.
    "ALTER TABLE mcp_sessions ADD COLUMN owner text;",
    // 3: the gateway's audit trail: one row per tool call (arguments as a hash).
    "CREATE TABLE gateway_audit (
        id bigserial PRIMARY KEY,
        at_ms bigint NOT NULL,
        call_id text NOT NULL,
        subject text NOT NULL,
        tool text NOT NULL,
        upstream text NOT NULL,
        outcome text NOT NULL,
        latency_ms double precision NOT NULL,
        args_hash text NOT NULL,
        endpoint text
    );
    CREATE INDEX gateway_audit_at ON gateway_audit (at_ms);
    CREATE INDEX gateway_audit_subject ON gateway_audit (subject, at_ms);",
    // 4: the gateway's token vault: each user's upstream tokens, sealed by the gateway.
    "CREATE TABLE gateway_tokens (
        upstream text NOT NULL,
        subject text NOT NULL,
        sealed text NOT NULL,
        updated_ms bigint NOT NULL,
        PRIMARY KEY (upstream, subject)
    );",
    // 5: the authorization server (account linking): clients, codes, refresh
    // tokens (by hash), consents, sealed signing keys, revoked families.
    "CREATE TABLE oauth_records (
        kind text NOT NULL,
        id text NOT NULL,
        family text,
        subject text,
        client_id text,
        data text NOT NULL,
        expires_ms bigint NOT NULL,
        used_ms bigint,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX oauth_records_family ON oauth_records (family);
    CREATE INDEX oauth_records_subject ON oauth_records (kind, subject);
    CREATE INDEX oauth_records_expiry ON oauth_records (expires_ms);",
];

/// Errors from PostgreSQL, as catalog errors.
pub(crate) fn db(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CatalogError {
    CatalogError::Db(crate::error::DbError::Postgres(e.into()))
}

/// The pools of one PostgreSQL database.
#[derive(Clone)]
pub struct PgDatabase {
    pub(crate) pool: Pool,
    /// For untrusted SQL, cleaned on return.
    pub(crate) untrusted: Pool,
    /// Untrusted SQL may switch to [`READER_ROLE`].
    pub(crate) reader_role: bool,
    /// This user may set `temp_file_limit` (a superuser setting) for untrusted SQL.
    pub(crate) temp_file_limit: bool,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase").finish_non_exhaustive()
    }
}

fn pool(
    config: &tokio_postgres::Config,
    size: usize,
    recycling: RecyclingMethod,
) -> Result<Pool, CatalogError> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: recycling,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(POOL_WAIT),
            create: Some(POOL_WAIT),
            recycle: Some(POOL_WAIT),
        })
        .build()
        .map_err(db)
}

impl PgDatabase {
    /// The pools' use now.
    pub fn pool_use(&self) -> Vec<(&'static str, crate::PoolUse)> {
        [("main", &self.pool), ("readonly", &self.untrusted)]
            .map(|(name, pool)| {
                let status = pool.status();
                (
                    name,
                    crate::PoolUse {
                        in_use: status.size.saturating_sub(status.available),
                        idle: status.available,
                        max: status.max_size,
                    },
                )
            })
            .to_vec()
    }

    /// Connect, migrate, and set up the read-only role. The URL's password never
    /// appears in an error.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, CatalogError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| CatalogError::Invalid(format!("not a PostgreSQL URL: {e}")))?;
        let main = pool(&config, pool_size, RecyclingMethod::Fast)?;
        let untrusted = pool(&config, UNTRUSTED_POOL_SIZE, RecyclingMethod::Clean)?;
        let mut client = main
            .get()
            .await
            .map_err(|e| db(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&mut client).await?;
        let reader_role = ensure_reader_role(&client).await;
        if !reader_role {
            tracing::warn!(
                role = READER_ROLE,
                "cannot create or use the read-only role; untrusted SQL is limited by READ ONLY transactions only. \
                 Create it as an administrator: CREATE ROLE wharf_reader NOLOGIN; GRANT SELECT ON items TO wharf_reader; \
                 GRANT wharf_reader TO <wharf's user>"
            );
        }
        let temp_file_limit = client
            .batch_execute("BEGIN; SET LOCAL temp_file_limit = '64MB'; ROLLBACK")
            .await
            .is_ok();
        if !temp_file_limit {
            let _ = client.batch_execute("ROLLBACK").await;
            tracing::info!(
                "untrusted SQL's temporary files are bounded by the server's temp_file_limit only (setting it per statement needs a superuser); \
                 bound it for Wharf's user: ALTER ROLE <wharf's user> SET temp_file_limit = '64MB'"
            );
        }
        Ok(Self {
            pool: main,
            untrusted,
            reader_role,
            temp_file_limit,
        })
    }

    pub async fn ping(&self) -> Result<(), CatalogError> {
        let c = self.pool.get().await.map_err(db)?;
        c.query_one("SELECT 1", &[]).await.map_err(db)?;
        Ok(())
    }
}

async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), CatalogError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS wharf_schema (version integer NOT NULL); LOCK TABLE wharf_schema",
    )
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
    tx.commit().await.map_err(db)
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
