//! Legacy (2025-x) session management: rmcp's in-memory sessions, with a cap.
//!
//! rmcp's `LocalSessionManager` keeps every session until it is idle for its
//! keep-alive, with no bound on how many. A client that never sends DELETE, or a
//! flood of `initialize`, would grow memory without limit, so this wrapper refuses
//! to create (or restore) a session past `max_sessions`. Everything else is
//! delegated unchanged. Sessions survive restarts and move between replicas
//! through rmcp's `SessionStore` (Wharf's lives in the database, see
//! wharf-catalog), which replays the client's `initialize` on the new process.
//!
//! A session belongs to whoever created it: the subject of the credentials on
//! its `initialize` (empty for an anonymous caller) is recorded, here and in
//! the store, and a request under other credentials that names the session is
//! answered as if it did not exist. A session id is not a credential.

use std::{collections::HashMap, sync::Arc};

use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionStoreError,
        local::{LocalSessionManager, LocalSessionManagerError, SessionConfig},
    },
};

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "the server holds its maximum of {0} sessions; retry later or close unused sessions with DELETE"
    )]
    Full(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// Where session owners are kept beyond this process (the session store's
/// database), so a replica that restores a session knows whose it is.
#[async_trait::async_trait]
pub trait SessionOwners: Send + Sync {
    async fn set_owner(&self, id: &str, owner: &str) -> Result<(), SessionStoreError>;
    async fn owner(&self, id: &str) -> Result<Option<String>, SessionStoreError>;
}

/// A `LocalSessionManager` that holds at most `max_sessions` sessions.
pub struct CappedSessionManager {
    inner: LocalSessionManager,
    max_sessions: usize,
    /// The owners of sessions this process has seen.
    owners: std::sync::Mutex<HashMap<String, String>>,
    stored_owners: Option<Arc<dyn SessionOwners>>,
}

impl std::fmt::Debug for CappedSessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CappedSessionManager")
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

impl CappedSessionManager {
    pub fn new(idle_timeout: std::time::Duration, max_sessions: usize) -> Self {
        let mut inner = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(idle_timeout);
        inner.session_config = config;
        Self {
            inner,
            max_sessions,
            owners: Default::default(),
            stored_owners: None,
        }
    }

    /// Keep owners in `store` too (with the sessions themselves).
    pub fn with_stored_owners(mut self, store: Option<Arc<dyn SessionOwners>>) -> Self {
        self.stored_owners = store;
        self
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        wharf_core::sync::lock(&self.owners)
    }

    /// Record that session `id` was created by `owner`.
    pub async fn set_owner(&self, id: &str, owner: &str) {
        let live: Option<Vec<SessionId>> = {
            let owners = self.owners();
            (owners.len() >= self.max_sessions.saturating_mul(2)).then(Vec::new)
        };
        if live.is_some() {
            // Forget the owners of sessions that expired without a DELETE.
            let held = self.ids().await;
            let held: std::collections::HashSet<&str> = held.iter().map(|id| id.as_ref()).collect();
            self.owners().retain(|id, _| held.contains(id.as_str()));
        }
        self.owners().insert(id.to_owned(), owner.to_owned());
        if let Some(store) = &self.stored_owners
            && let Err(e) = store.set_owner(id, owner).await
        {
            tracing::warn!(error = %e, "cannot record a session's owner in the store");
        }
    }

    /// Whether `subject` may use session `id`: it created it, or nobody is
    /// recorded as its owner (a session this server does not know is rmcp's to
    /// refuse with 404).
    pub async fn may_use(&self, id: &str, subject: &str) -> bool {
        if let Some(owner) = self.owners().get(id) {
            return owner == subject;
        }
        let Some(store) = &self.stored_owners else {
            return true;
        };
        match store.owner(id).await {
            Ok(Some(owner)) => {
                let allowed = owner == subject;
                self.owners().insert(id.to_owned(), owner);
                allowed
            }
            Ok(None) => true,
            Err(e) => {
                // Fail closed: an owner that cannot be checked is not assumed.
                tracing::warn!(error = e, "cannot read a session's owner from the store");
                false
            }
        }
    }

    /// Sessions held in this process now.
    pub async fn live(&self) -> usize {
        self.inner.sessions.read().await.len()
    }

    /// Whether a new session can be created now.
    pub async fn has_room(&self) -> bool {
        self.live().await < self.max_sessions
    }

    /// Whether this process holds the session `id` now.
    pub async fn holds(&self, id: &str) -> bool {
        let id: SessionId = id.to_owned().into();
        self.inner.sessions.read().await.contains_key(&id)
    }

    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The ids of the sessions held in this process (for the store's heartbeat).
    pub async fn ids(&self) -> Vec<SessionId> {
        self.inner.sessions.read().await.keys().cloned().collect()
    }
}

impl SessionManager for CappedSessionManager {
    type Error = SessionError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        if !self.has_room().await {
            return Err(SessionError::Full(self.max_sessions));
        }
        Ok(self.inner.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.owners().remove(id.as_ref());
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        if self.inner.has_session(&id).await? {
            return Ok(RestoreOutcome::AlreadyPresent);
        }
        if !self.has_room().await {
            return Err(SessionError::Full(self.max_sessions));
        }
        Ok(self.inner.restore_session(id).await?)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
