//! Where the authorization server keeps its state: one table of records
//! (clients, codes, refresh tokens, consents, signing keys, revoked families),
//! so a SQLite file or a PostgreSQL database serves every replica alike.
//!
//! Codes and refresh tokens are kept by their SHA-256, never in the clear.
//! [`Store::consume`] is the one single-use rule: of two replicas taking the
//! same code at once, exactly one gets it, and the other learns it was used.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;

/// What a record is.
pub mod kind {
    pub const CLIENT: &str = "client";
    pub const CODE: &str = "code";
    pub const REFRESH: &str = "refresh";
    pub const CONSENT: &str = "consent";
    pub const KEY: &str = "key";
    /// A token family revoked before its access tokens expired.
    pub const REVOKED: &str = "revoked";
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub id: String,
    /// The token family (one authorization and every refresh after it).
    pub family: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// JSON, or a sealed value.
    pub data: String,
    /// Unix milliseconds after which the record is gone.
    pub expires_ms: i64,
    /// When it was consumed (codes, refresh tokens).
    pub used_ms: Option<i64>,
}

/// What [`Store::consume`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Unused until now; it is now used.
    Fresh(Record),
    /// Used before: a replay.
    Reused(Record),
    /// Unknown or expired.
    Missing,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Insert, or replace the record with the same kind and id.
    async fn put(&self, record: Record) -> Result<(), StoreError>;
    /// The live record, if any.
    async fn get(&self, kind: &str, id: &str, now_ms: i64) -> Result<Option<Record>, StoreError>;
    /// Mark a live record used, atomically across replicas.
    async fn consume(&self, kind: &str, id: &str, now_ms: i64) -> Result<Consumed, StoreError>;
    /// Move a record's expiry (a client used again).
    async fn touch(&self, kind: &str, id: &str, expires_ms: i64) -> Result<(), StoreError>;
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, StoreError>;
    /// Delete every record of a token family; how many.
    async fn delete_family(&self, family: &str) -> Result<u64, StoreError>;
    /// Every live record of `kind`, of `subject` when given, newest expiry first.
    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Record>, StoreError>;
    /// How many live records of `kind`.
    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, StoreError>;
    /// Delete what has expired; how many.
    async fn prune(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// The store of a single process with no database (tests).
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Vec<Record>>);

#[async_trait]
impl Store for MemoryStore {
    async fn put(&self, record: Record) -> Result<(), StoreError> {
        let mut rows = wharf_core::sync::lock(&self.0);
        rows.retain(|r| !(r.kind == record.kind && r.id == record.id));
        rows.push(record);
        Ok(())
    }
    async fn get(&self, kind: &str, id: &str, now_ms: i64) -> Result<Option<Record>, StoreError> {
        Ok(wharf_core::sync::lock(&self.0)
            .iter()
            .find(|r| r.kind == kind && r.id == id && r.expires_ms > now_ms)
            .cloned())
    }
    async fn consume(&self, kind: &str, id: &str, now_ms: i64) -> Result<Consumed, StoreError> {
        let mut rows = wharf_core::sync::lock(&self.0);
        let Some(r) = rows
            .iter_mut()
            .find(|r| r.kind == kind && r.id == id && r.expires_ms > now_ms)
        else {
            return Ok(Consumed::Missing);
        };
        if r.used_ms.is_some() {
            return Ok(Consumed::Reused(r.clone()));
        }
        r.used_ms = Some(now_ms);
        Ok(Consumed::Fresh(r.clone()))
    }
    async fn touch(&self, kind: &str, id: &str, expires_ms: i64) -> Result<(), StoreError> {
        for r in wharf_core::sync::lock(&self.0)
            .iter_mut()
            .filter(|r| r.kind == kind && r.id == id)
        {
            r.expires_ms = expires_ms;
        }
        Ok(())
    }
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let mut rows = wharf_core::sync::lock(&self.0);
        let before = rows.len();
        rows.retain(|r| !(r.kind == kind && r.id == id));
        Ok(rows.len() < before)
    }
    async fn delete_family(&self, family: &str) -> Result<u64, StoreError> {
        let mut rows = wharf_core::sync::lock(&self.0);
        let before = rows.len();
        rows.retain(|r| r.family.as_deref() != Some(family));
        Ok((before - rows.len()) as u64)
    }
    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Record>, StoreError> {
        let mut out: Vec<Record> = wharf_core::sync::lock(&self.0)
            .iter()
            .filter(|r| {
                r.kind == kind
                    && r.expires_ms > now_ms
                    && subject.is_none_or(|s| r.subject.as_deref() == Some(s))
            })
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.expires_ms));
        Ok(out)
    }
    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, StoreError> {
        Ok(wharf_core::sync::lock(&self.0)
            .iter()
            .filter(|r| r.kind == kind && r.expires_ms > now_ms)
            .count() as u64)
    }
    async fn prune(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut rows = wharf_core::sync::lock(&self.0);
        let before = rows.len();
        rows.retain(|r| r.expires_ms > now_ms);
        Ok((before - rows.len()) as u64)
    }
}
