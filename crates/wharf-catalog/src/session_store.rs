//! rmcp's `SessionStore` on the database: legacy sessions that outlive a process.
//!
//! rmcp persists the client's `initialize` parameters when a session starts and,
//! when a request names a session this process does not hold, loads them and
//! replays the handshake. With the store in a database shared by replicas (and
//! kept across restarts), any replica can serve any session.
//!
//! Expiry: a row whose `last_seen` is older than the idle timeout is treated as
//! gone (its client gets 404 and initializes again) and swept. Processes refresh
//! `last_seen` for the sessions they hold with [`SqliteSessionStore::touch`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use rusqlite::params;

use crate::{db::Database, error::DbError};

/// Sessions stored in the `mcp_sessions` table.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    db: Database,
    idle_timeout: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqliteSessionStore {
    pub fn new(db: Database, idle_timeout: Duration) -> Self {
        Self { db, idle_timeout }
    }

    fn cutoff(&self) -> i64 {
        now_ms() - self.idle_timeout.as_millis() as i64
    }

    /// Mark `ids` as used now, so they do not expire while this process holds them.
    pub async fn touch(&self, ids: Vec<String>) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                {
                    let mut stmt =
                        tx.prepare_cached("UPDATE mcp_sessions SET last_seen = ?1 WHERE id = ?2")?;
                    let now = now_ms();
                    for id in &ids {
                        stmt.execute(params![now, id])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Delete expired sessions; returns how many.
    pub async fn sweep(&self) -> Result<usize, DbError> {
        let cutoff = self.cutoff();
        self.db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM mcp_sessions WHERE last_seen < ?1",
                    params![cutoff],
                )?)
            })
            .await
    }

    /// Sessions stored and not expired.
    pub async fn count(&self) -> Result<usize, DbError> {
        let cutoff = self.cutoff();
        self.db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM mcp_sessions WHERE last_seen >= ?1",
                    params![cutoff],
                    |r| r.get::<_, i64>(0),
                )? as usize)
            })
            .await
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let id = session_id.to_owned();
        let cutoff = self.cutoff();
        let json: Option<String> = self
            .db
            .run(move |c| {
                let row = c
                    .query_row(
                        "UPDATE mcp_sessions SET last_seen = ?1 WHERE id = ?2 AND last_seen >= ?3 RETURNING state",
                        params![now_ms(), id, cutoff],
                        |r| r.get(0),
                    )
                    .map(Some)
                    .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
                Ok(row)
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
                let now = now_ms();
                c.execute(
                    "INSERT INTO mcp_sessions (id, state, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen",
                    params![id, json, now],
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

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::InitializeRequestParams;

    async fn store(idle: Duration) -> (tempfile::TempDir, SqliteSessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open_sqlite(&dir.path().join("s.db"))
            .await
            .unwrap();
        (dir, SqliteSessionStore::new(db, idle))
    }

    #[tokio::test]
    async fn stores_loads_and_deletes() {
        let (_dir, s) = store(Duration::from_secs(60)).await;
        let state = SessionState::new(InitializeRequestParams::default());
        s.store("abc", &state).await.unwrap();
        assert!(s.load("abc").await.unwrap().is_some());
        assert!(s.load("nope").await.unwrap().is_none());
        s.delete("abc").await.unwrap();
        assert!(s.load("abc").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_sessions_are_not_loaded_and_are_swept() {
        let (_dir, s) = store(Duration::from_secs(60)).await;
        let state = SessionState::new(InitializeRequestParams::default());
        s.store("old", &state).await.unwrap();
        s.store("new", &state).await.unwrap();
        s.db.run(|c| {
            Ok(c.execute(
                "UPDATE mcp_sessions SET last_seen = last_seen - 3600000 WHERE id = 'old'",
                [],
            )?)
        })
        .await
        .unwrap();
        assert!(s.load("old").await.unwrap().is_none());
        assert_eq!(s.count().await.unwrap(), 1);
        assert_eq!(s.sweep().await.unwrap(), 1);
        assert!(s.load("new").await.unwrap().is_some());
    }
}
