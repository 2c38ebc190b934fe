//! rmcp's `SessionStore` on the SQLite database (`mcp_sessions`), under the
//! expiry rule of [`crate::sessions`]; processes sharing the file (replicas on
//! one host, or one process after a restart) share sessions.

use std::time::Duration;

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use rusqlite::{OptionalExtension, params};

use crate::{
    catalog::CatalogError,
    sessions::{Expiry, SessionTable},
    sqlite::database::SqliteDatabase,
};

/// Sessions stored in the `mcp_sessions` table.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    db: SqliteDatabase,
    expiry: Expiry,
}

impl SqliteSessionStore {
    pub fn new(db: SqliteDatabase, idle_timeout: Duration) -> Self {
        Self {
            db,
            expiry: Expiry::new(idle_timeout),
        }
    }
}

#[async_trait::async_trait]
impl SessionTable for SqliteSessionStore {
    async fn touch(&self, ids: Vec<String>) -> Result<(), CatalogError> {
        if ids.is_empty() {
            return Ok(());
        }
        Ok(self
            .db
            .run(move |c| {
                let tx = c.transaction()?;
                {
                    let mut stmt =
                        tx.prepare_cached("UPDATE mcp_sessions SET last_seen = ?1 WHERE id = ?2")?;
                    let now = Expiry::now_ms();
                    for id in &ids {
                        stmt.execute(params![now, id])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn sweep(&self) -> Result<usize, CatalogError> {
        let cutoff = self.expiry.cutoff_ms();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM mcp_sessions WHERE last_seen < ?1",
                    params![cutoff],
                )?)
            })
            .await?)
    }

    async fn count(&self) -> Result<usize, CatalogError> {
        let cutoff = self.expiry.cutoff_ms();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM mcp_sessions WHERE last_seen >= ?1",
                    params![cutoff],
                    |r| r.get::<_, i64>(0),
                )? as usize)
            })
            .await?)
    }

    async fn set_owner(&self, id: &str, owner: &str) -> Result<(), CatalogError> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        Ok(self
            .db
            .run(move |c| {
                c.execute(
                    "UPDATE mcp_sessions SET owner = ?2 WHERE id = ?1",
                    params![id, owner],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn owner(&self, id: &str) -> Result<Option<String>, CatalogError> {
        let id = id.to_owned();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT owner FROM mcp_sessions WHERE id = ?1",
                    params![id],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()?
                .flatten())
            })
            .await?)
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let id = session_id.to_owned();
        let cutoff = self.expiry.cutoff_ms();
        let json: Option<String> = self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "UPDATE mcp_sessions SET last_seen = ?1 WHERE id = ?2 AND last_seen >= ?3 RETURNING state",
                    params![Expiry::now_ms(), id, cutoff],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?;
        match json {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let id = session_id.to_owned();
        let json = serde_json::to_string(state)?;
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO mcp_sessions (id, state, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen",
                    params![id, json, Expiry::now_ms()],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let id = session_id.to_owned();
        self.db
            .run(move |c| Ok(c.execute("DELETE FROM mcp_sessions WHERE id = ?1", params![id])?))
            .await?;
        Ok(())
    }
}
