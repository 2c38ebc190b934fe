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

/// The authorization server's records in the database, as `wharf-authz` asks for them.
pub(crate) struct StoredRecords(pub std::sync::Arc<dyn wharf_catalog::OAuthTable>);

fn to_row(r: wharf_authz::Record) -> wharf_catalog::OAuthRow {
    wharf_catalog::OAuthRow {
        kind: r.kind,
        id: r.id,
        family: r.family,
        subject: r.subject,
        client_id: r.client_id,
        data: r.data,
        expires_ms: r.expires_ms,
        used_ms: r.used_ms,
    }
}

fn from_row(r: wharf_catalog::OAuthRow) -> wharf_authz::Record {
    wharf_authz::Record {
        kind: r.kind,
        id: r.id,
        family: r.family,
        subject: r.subject,
        client_id: r.client_id,
        data: r.data,
        expires_ms: r.expires_ms,
        used_ms: r.used_ms,
    }
}

fn store_error(e: wharf_catalog::CatalogError) -> wharf_authz::StoreError {
    wharf_authz::StoreError(e.to_string())
}

#[async_trait::async_trait]
impl wharf_authz::Store for StoredRecords {
    async fn put(&self, record: wharf_authz::Record) -> Result<(), wharf_authz::StoreError> {
        self.0.put(to_row(record)).await.map_err(store_error)
    }
    async fn get(
        &self,
        kind: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<wharf_authz::Record>, wharf_authz::StoreError> {
        Ok(self
            .0
            .get(kind, id, now_ms)
            .await
            .map_err(store_error)?
            .map(from_row))
    }
    async fn consume(
        &self,
        kind: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<wharf_authz::Consumed, wharf_authz::StoreError> {
        Ok(
            match self
                .0
                .consume(kind, id, now_ms)
                .await
                .map_err(store_error)?
            {
                wharf_catalog::Taken::Fresh(r) => wharf_authz::Consumed::Fresh(from_row(r)),
                wharf_catalog::Taken::Reused(r) => wharf_authz::Consumed::Reused(from_row(r)),
                wharf_catalog::Taken::Missing => wharf_authz::Consumed::Missing,
            },
        )
    }
    async fn touch(
        &self,
        kind: &str,
        id: &str,
        expires_ms: i64,
    ) -> Result<(), wharf_authz::StoreError> {
        self.0
            .touch(kind, id, expires_ms)
            .await
            .map_err(store_error)
    }
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, wharf_authz::StoreError> {
        self.0.delete(kind, id).await.map_err(store_error)
    }
    async fn delete_family(&self, family: &str) -> Result<u64, wharf_authz::StoreError> {
        self.0.delete_family(family).await.map_err(store_error)
    }
    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<wharf_authz::Record>, wharf_authz::StoreError> {
        Ok(self
            .0
            .list(kind, subject, now_ms)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(from_row)
            .collect())
    }
    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, wharf_authz::StoreError> {
        self.0.count(kind, now_ms).await.map_err(store_error)
    }
    async fn prune(&self, now_ms: i64) -> Result<u64, wharf_authz::StoreError> {
        self.0.prune(now_ms).await.map_err(store_error)
    }
}
