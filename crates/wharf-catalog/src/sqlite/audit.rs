//! The audit trail on SQLite (`gateway_audit`), per [`crate::audit`].

use rusqlite::params;
use wharf_core::{AuditQuery, AuditRecord};

use crate::{
    audit::{AuditLog, OutcomeFilter},
    catalog::CatalogError,
    sqlite::database::SqliteDatabase,
};

#[derive(Debug, Clone)]
pub struct SqliteAuditLog {
    db: SqliteDatabase,
}

impl SqliteAuditLog {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl AuditLog for SqliteAuditLog {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<(), CatalogError> {
        if records.is_empty() {
            return Ok(());
        }
        Ok(self
            .db
            .run(move |c| {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO gateway_audit (at_ms, call_id, subject, tool, upstream, outcome, latency_ms, args_hash, endpoint)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?;
                    for r in &records {
                        stmt.execute(params![
                            r.at_ms, r.call_id, r.subject, r.tool, r.upstream, r.outcome,
                            r.latency_ms, r.args_hash, r.endpoint
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, CatalogError> {
        Ok(self
            .db
            .run(move |c| {
                // NULL parameters switch a condition off; every value is bound.
                let (errors, exactly) = match OutcomeFilter::of(&query) {
                    OutcomeFilter::Any => (false, None),
                    OutcomeFilter::Errors => (true, None),
                    OutcomeFilter::Exactly(o) => (false, Some(o)),
                };
                let mut stmt = c.prepare_cached(
                    "SELECT at_ms, call_id, subject, tool, upstream, outcome, latency_ms, args_hash, endpoint
                     FROM gateway_audit
                     WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR tool = ?2)
                       AND (?3 IS NULL OR upstream = ?3) AND (?4 IS NULL OR outcome = ?4)
                       AND (?5 = 0 OR outcome <> 'ok')
                       AND (?6 IS NULL OR at_ms >= ?6) AND (?7 IS NULL OR at_ms < ?7)
                     ORDER BY at_ms DESC, id DESC LIMIT ?8",
                )?;
                let rows = stmt.query_map(
                    params![
                        query.subject, query.tool, query.upstream, exactly, errors,
                        query.since_ms, query.until_ms, query.limit as i64
                    ],
                    |r| {
                        Ok(AuditRecord {
                            at_ms: r.get(0)?,
                            call_id: r.get(1)?,
                            subject: r.get(2)?,
                            tool: r.get(3)?,
                            upstream: r.get(4)?,
                            outcome: r.get(5)?,
                            latency_ms: r.get(6)?,
                            args_hash: r.get(7)?,
                            endpoint: r.get(8)?,
                        })
                    },
                )?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn prune(&self, before_ms: i64) -> Result<usize, CatalogError> {
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM gateway_audit WHERE at_ms < ?1",
                    params![before_ms],
                )?)
            })
            .await?)
    }
}
