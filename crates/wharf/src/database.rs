//! Opening the configured database, with the message that names its setting.

use anyhow::Context;
use rmcp::transport::streamable_http_server::session::SessionStoreError;
use wharf_catalog::{Database, DatabaseUrl};

use crate::config::Config;

/// Open the database `config` names (SQLite or PostgreSQL).
pub(crate) async fn open(config: &Config) -> anyhow::Result<Database> {
    Database::open(&config.database, config.database_settings)
        .await
        .with_context(|| match &config.database {
            DatabaseUrl::Sqlite(path) => format!(
                "cannot open the database {} (database.url / WHARF_DATABASE)",
                path.display()
            ),
            DatabaseUrl::Postgres(_) => {
                "cannot use the PostgreSQL database (database.url / WHARF_DATABASE)".to_owned()
            }
        })
}

/// The session store's owner column, as the HTTP side asks for it.
pub(crate) struct StoredOwners(pub std::sync::Arc<dyn wharf_catalog::SessionTable>);

#[async_trait::async_trait]
impl wharf_http::SessionOwners for StoredOwners {
    async fn set_owner(&self, id: &str, owner: &str) -> Result<(), SessionStoreError> {
        Ok(self.0.set_owner(id, owner).await?)
    }

    async fn owner(&self, id: &str) -> Result<Option<String>, SessionStoreError> {
        Ok(self.0.owner(id).await?)
    }
}

/// The vault's rows in the database, as the gateway asks for them.
pub(crate) struct StoredTokens(pub std::sync::Arc<dyn wharf_catalog::TokenTable>);

#[async_trait::async_trait]
impl wharf_gateway::TokenStore for StoredTokens {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, String> {
        self.0
            .get(upstream, subject)
            .await
            .map_err(|e| e.to_string())
    }
    async fn put(&self, upstream: &str, subject: &str, sealed: String) -> Result<(), String> {
        self.0
            .put(upstream, subject, &sealed)
            .await
            .map_err(|e| e.to_string())
    }
    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, String> {
        self.0
            .delete(subject, upstream)
            .await
            .map_err(|e| e.to_string())
    }
    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, String> {
        self.0.latest(upstream).await.map_err(|e| e.to_string())
    }
}
