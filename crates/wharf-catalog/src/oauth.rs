//! The authorization server's records in the database (`oauth_records`),
//! whichever backend it is: clients, codes and refresh tokens (by hash),
//! consents, sealed signing keys, revoked token families. `consume` is the
//! single-use rule: one conditional update, so of two replicas redeeming the
//! same code exactly one succeeds.

use crate::catalog::CatalogError;

/// One row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthRow {
    pub kind: String,
    pub id: String,
    pub family: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub data: String,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
}

/// What `consume` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Fresh(OAuthRow),
    Reused(OAuthRow),
    Missing,
}

#[async_trait::async_trait]
pub trait OAuthTable: Send + Sync + std::fmt::Debug {
    /// Insert, or replace the row with the same kind and id.
    async fn put(&self, row: OAuthRow) -> Result<(), CatalogError>;
    async fn get(
        &self,
        kind: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthRow>, CatalogError>;
    async fn consume(&self, kind: &str, id: &str, now_ms: i64) -> Result<Taken, CatalogError>;
    async fn touch(&self, kind: &str, id: &str, expires_ms: i64) -> Result<(), CatalogError>;
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, CatalogError>;
    async fn delete_family(&self, family: &str) -> Result<u64, CatalogError>;
    /// Live rows of `kind` (of `subject` when given), latest expiry first.
    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<OAuthRow>, CatalogError>;
    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, CatalogError>;
    async fn prune(&self, now_ms: i64) -> Result<u64, CatalogError>;
}

/// The columns every query selects, in [`OAuthRow`]'s order.
pub(crate) const COLUMNS: &str = "kind, id, family, subject, client_id, data, expires_ms, used_ms";
