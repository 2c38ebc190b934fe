//! Legacy MCP sessions in the database, whichever backend it is: the one
//! expiry rule both stores follow, and what the server asks of a store beyond
//! rmcp's `SessionStore` (keeping held sessions fresh, sweeping expired ones,
//! remembering who created each).
//!
//! rmcp persists the client's `initialize` parameters when a session starts and,
//! when a request names a session this process does not hold, loads them and
//! replays the handshake. With the store in a database shared by replicas (and
//! kept across restarts), any replica can serve any session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::transport::streamable_http_server::session::SessionStore;

use crate::catalog::CatalogError;

/// When a stored session has expired: its `last_seen` (milliseconds since the
/// Unix epoch, in both stores) is older than the idle timeout. The one home of
/// that rule: a store that computed it in other units would keep sessions a
/// thousand times too long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    idle: Duration,
}

impl Expiry {
    pub(crate) fn new(idle: Duration) -> Self {
        Self { idle }
    }

    /// Now, as stored in `last_seen` and `created_at`.
    pub(crate) fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Rows with `last_seen` below this have expired.
    pub(crate) fn cutoff_ms(&self) -> i64 {
        Self::now_ms().saturating_sub(i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A session store: rmcp's, plus what the server needs of its rows.
#[async_trait::async_trait]
pub trait SessionTable: SessionStore + std::fmt::Debug {
    /// Mark `ids` used now, so they do not expire while this process holds them.
    async fn touch(&self, ids: Vec<String>) -> Result<(), CatalogError>;
    /// Delete expired sessions; how many.
    async fn sweep(&self) -> Result<usize, CatalogError>;
    /// Sessions stored and not expired.
    async fn count(&self) -> Result<usize, CatalogError>;
    /// Record who created session `id` (its subject; empty for an anonymous caller).
    async fn set_owner(&self, id: &str, owner: &str) -> Result<(), CatalogError>;
    /// Who created session `id`, if that was recorded.
    async fn owner(&self, id: &str) -> Result<Option<String>, CatalogError>;
}

/// Mark the sessions a process holds as used, then sweep expired ones; how
/// many expired.
pub async fn heartbeat(store: &dyn SessionTable, ids: Vec<String>) -> Result<usize, CatalogError> {
    store.touch(ids).await?;
    store.sweep().await
}
