//! rmcp's `SessionStore` on PostgreSQL (`mcp_sessions`), under the expiry rule
//! of [`crate::sessions`]; replicas that share the database share sessions.

use std::time::Duration;

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use serde_json::Value;

use crate::{
    catalog::CatalogError,
    postgres::database::{PgDatabase, db},
    sessions::{Expiry, SessionTable},
};

/// Sessions stored in the `mcp_sessions` table.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    db: PgDatabase,
    expiry: Expiry,
}

impl PgSessionStore {
    pub fn new(db: PgDatabase, idle_timeout: Duration) -> Self {
        Self {
            db,
            expiry: Expiry::new(idle_timeout),
        }
    }
}

#[async_trait::async_trait]
impl SessionTable for PgSessionStore {
    async fn touch(&self, ids: Vec<String>) -> Result<(), CatalogError> {
        if ids.is_empty() {
            return Ok(());
        }
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "UPDATE mcp_sessions SET last_seen = $1 WHERE id = ANY($2)",
            &[&Expiry::now_ms(), &ids],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn sweep(&self) -> Result<usize, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        Ok(c.execute(
            "DELETE FROM mcp_sessions WHERE last_seen < $1",
            &[&self.expiry.cutoff_ms()],
        )
        .await
        .map_err(db)? as usize)
    }

    async fn count(&self) -> Result<usize, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let row = c
            .query_one(
                "SELECT count(*) FROM mcp_sessions WHERE last_seen >= $1",
                &[&self.expiry.cutoff_ms()],
            )
            .await
            .map_err(db)?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    async fn set_owner(&self, id: &str, owner: &str) -> Result<(), CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "UPDATE mcp_sessions SET owner = $2 WHERE id = $1",
            &[&id, &owner],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn owner(&self, id: &str) -> Result<Option<String>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let row = c
            .query_opt("SELECT owner FROM mcp_sessions WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }
}

#[async_trait::async_trait]
impl SessionStore for PgSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let c = self.db.pool.get().await?;
        let row = c
            .query_opt(
                "UPDATE mcp_sessions SET last_seen = $1 WHERE id = $2 AND last_seen >= $3 RETURNING state",
                &[&Expiry::now_ms(), &session_id, &self.expiry.cutoff_ms()],
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
            &[&session_id, &json, &Expiry::now_ms()],
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
