//! The audit trail on PostgreSQL (`gateway_audit`), per [`crate::audit`].

use wharf_core::{AuditQuery, AuditRecord};

use crate::{
    audit::{AuditLog, OutcomeFilter},
    catalog::CatalogError,
    postgres::database::{PgDatabase, db},
};

#[derive(Debug, Clone)]
pub struct PgAuditLog {
    db: PgDatabase,
}

impl PgAuditLog {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl AuditLog for PgAuditLog {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<(), CatalogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut c = self.db.pool.get().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO gateway_audit (at_ms, call_id, subject, tool, upstream, outcome, latency_ms, args_hash, endpoint)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await
            .map_err(db)?;
        for r in &records {
            tx.execute(
                &stmt,
                &[
                    &r.at_ms,
                    &r.call_id,
                    &r.subject,
                    &r.tool,
                    &r.upstream,
                    &r.outcome,
                    &r.latency_ms,
                    &r.args_hash,
                    &r.endpoint,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, CatalogError> {
        let (errors, exactly) = match OutcomeFilter::of(&query) {
            OutcomeFilter::Any => (false, None),
            OutcomeFilter::Errors => (true, None),
            OutcomeFilter::Exactly(o) => (false, Some(o)),
        };
        let c = self.db.pool.get().await.map_err(db)?;
        // NULL parameters switch a condition off; every value is bound.
        let rows = c
            .query(
                "SELECT at_ms, call_id, subject, tool, upstream, outcome, latency_ms, args_hash, endpoint
                 FROM gateway_audit
                 WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR tool = $2)
                   AND ($3::text IS NULL OR upstream = $3) AND ($4::text IS NULL OR outcome = $4)
                   AND (NOT $5 OR outcome <> 'ok')
                   AND ($6::bigint IS NULL OR at_ms >= $6) AND ($7::bigint IS NULL OR at_ms < $7)
                 ORDER BY at_ms DESC, id DESC LIMIT $8",
                &[
                    &query.subject, &query.tool, &query.upstream, &exactly, &errors,
                    &query.since_ms, &query.until_ms, &(query.limit as i64),
                ],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                at_ms: r.get(0),
                call_id: r.get(1),
                subject: r.get(2),
                tool: r.get(3),
                upstream: r.get(4),
                outcome: r.get(5),
                latency_ms: r.get(6),
                args_hash: r.get(7),
                endpoint: r.get(8),
            })
            .collect())
    }

    async fn prune(&self, before_ms: i64) -> Result<usize, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        Ok(
            c.execute("DELETE FROM gateway_audit WHERE at_ms < $1", &[&before_ms])
                .await
                .map_err(db)? as usize,
        )
    }
}
