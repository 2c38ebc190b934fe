//! The token vault on PostgreSQL (`gateway_tokens`), per [`crate::tokens`].

use crate::{
    catalog::CatalogError,
    postgres::database::{PgDatabase, db},
    tokens::TokenTable,
};

#[derive(Debug, Clone)]
pub struct PgTokenTable {
    db: PgDatabase,
}

impl PgTokenTable {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl TokenTable for PgTokenTable {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let row = c
            .query_opt(
                "SELECT sealed FROM gateway_tokens WHERE upstream = $1 AND subject = $2",
                &[&upstream, &subject],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put(&self, upstream: &str, subject: &str, sealed: &str) -> Result<(), CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "INSERT INTO gateway_tokens (upstream, subject, sealed, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (upstream, subject) DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms",
            &[&upstream, &subject, &sealed, &wharf_core::now_ms()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        Ok(c.execute(
            "DELETE FROM gateway_tokens WHERE subject = $1 AND ($2::text IS NULL OR upstream = $2)",
            &[&subject, &upstream],
        )
        .await
        .map_err(db)? as usize)
    }

    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let row = c
            .query_opt(
                "SELECT subject, sealed FROM gateway_tokens WHERE upstream = $1 ORDER BY updated_ms DESC LIMIT 1",
                &[&upstream],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn list(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<(String, String, i64)>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let rows = c
            .query(
                "SELECT upstream, subject, updated_ms FROM gateway_tokens
                 WHERE $1::text IS NULL OR subject = $1 ORDER BY updated_ms DESC",
                &[&subject],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}
