//! The gateway's audit trail in the database (`gateway_audit`), whichever
//! backend it is: records appended in batches, read back newest first by
//! caller, tool, upstream, outcome and time, and pruned past the retention.

use wharf_core::{AuditQuery, AuditRecord};

use crate::catalog::CatalogError;

/// Where audit records are kept.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + std::fmt::Debug {
    /// Append `records` in one transaction.
    async fn append(&self, records: Vec<AuditRecord>) -> Result<(), CatalogError>;
    /// The records `query` asks for, newest first.
    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, CatalogError>;
    /// Delete the records older than `before_ms`; how many.
    async fn prune(&self, before_ms: i64) -> Result<usize, CatalogError>;
}

/// The outcome filter as SQL sees it: `error` is every outcome but `ok`.
pub(crate) enum OutcomeFilter {
    Any,
    Errors,
    Exactly(String),
}

impl OutcomeFilter {
    pub(crate) fn of(query: &AuditQuery) -> Self {
        match query.outcome.as_deref() {
            None => Self::Any,
            Some("error") => Self::Errors,
            Some(o) => Self::Exactly(o.to_owned()),
        }
    }
}
