//! The session stores' contract, run against both backends: a session expires
//! exactly when it has been idle for the idle timeout (rows aged by that much,
//! give or take a second, in the unit the rows are kept in), is swept then,
//! and remembers who created it.

use std::{sync::Arc, time::Duration};

use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::SessionState;
use wharf_catalog::{PgDatabase, PgSessionStore, SessionTable, SqliteDatabase, SqliteSessionStore};

const IDLE: Duration = Duration::from_secs(30 * 60);

/// Moves a stored row's `last_seen` back in time, as idleness would.
enum Ager {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Ager {
    async fn set_last_seen(&self, id: &str, ms: i64) {
        match self {
            Self::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.execute(
                    "UPDATE mcp_sessions SET last_seen = ?1 WHERE id = ?2",
                    rusqlite::params![ms, id],
                )
                .unwrap();
            }
            Self::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .execute(
                        "UPDATE mcp_sessions SET last_seen = $1 WHERE id = $2",
                        &[&ms, &id],
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A backend's store, how to age its rows, and what keeps its files.
type Backend = (
    &'static str,
    Arc<dyn SessionTable>,
    Ager,
    Option<tempfile::TempDir>,
);

async fn stores() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let sqlite = SqliteSessionStore::new(SqliteDatabase::open(&path).await.unwrap(), IDLE);
    let mut out: Vec<Backend> = vec![("sqlite", Arc::new(sqlite), Ager::Sqlite(path), Some(dir))];
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        let url = crate::empty_postgres_database().await;
        let pg = PgSessionStore::new(PgDatabase::connect(&url, 2).await.unwrap(), IDLE);
        out.push(("postgres", Arc::new(pg), Ager::Postgres(url), None));
    }
    out
}

#[tokio::test]
async fn a_session_expires_after_exactly_the_idle_timeout_on_every_backend() {
    let idle_ms = IDLE.as_millis() as i64;
    for (name, store, ager, _dir) in stores().await {
        let state = SessionState::new(InitializeRequestParams::default());
        for id in ["just-expired", "nearly-expired"] {
            store.store(id, &state).await.unwrap();
        }
        ager.set_last_seen("just-expired", now_ms() - idle_ms - 1_000)
            .await;
        ager.set_last_seen("nearly-expired", now_ms() - idle_ms + 60_000)
            .await;
        assert!(
            store.load("just-expired").await.unwrap().is_none(),
            "{name}: a session idle for the whole timeout was still served"
        );
        assert_eq!(store.count().await.unwrap(), 1, "{name}");
        assert_eq!(store.sweep().await.unwrap(), 1, "{name}");
        // Loading refreshes it: after the load it is far from expiry.
        assert!(
            store.load("nearly-expired").await.unwrap().is_some(),
            "{name}: a session idle for less than the timeout expired"
        );
        ager.set_last_seen("nearly-expired", now_ms() - idle_ms + 60_000)
            .await;
        store.touch(vec!["nearly-expired".into()]).await.unwrap();
        assert_eq!(store.sweep().await.unwrap(), 0, "{name}: touched, kept");
        store.delete("nearly-expired").await.unwrap();
        assert!(store.load("nearly-expired").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_session_remembers_who_created_it_on_every_backend() {
    for (name, store, _ager, _dir) in stores().await {
        let state = SessionState::new(InitializeRequestParams::default());
        store.store("mine", &state).await.unwrap();
        assert_eq!(store.owner("mine").await.unwrap(), None, "{name}");
        store.set_owner("mine", "key:alice").await.unwrap();
        assert_eq!(
            store.owner("mine").await.unwrap().as_deref(),
            Some("key:alice"),
            "{name}"
        );
        assert_eq!(store.owner("nobody's").await.unwrap(), None, "{name}");
    }
}
