//! The gateway's token vault in the database (`gateway_tokens`), whichever
//! backend it is: one sealed row per upstream and user. The gateway seals
//! and opens the rows; the database never holds a token in the clear.

use crate::catalog::CatalogError;

/// Sealed tokens by upstream and user.
#[async_trait::async_trait]
pub trait TokenTable: Send + Sync + std::fmt::Debug {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, CatalogError>;
    /// Insert or replace the row of `upstream` and `subject`.
    async fn put(&self, upstream: &str, subject: &str, sealed: &str) -> Result<(), CatalogError>;
    /// Delete `subject`'s rows (for one upstream, or all); how many.
    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, CatalogError>;
    /// The most recently written row of `upstream`: (subject, sealed).
    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, CatalogError>;
    /// Every (upstream, subject, updated ms) row, newest first, for `wharf gateway tokens`.
    async fn list(&self, subject: Option<&str>)
    -> Result<Vec<(String, String, i64)>, CatalogError>;
}
