//! The authorization server's records on PostgreSQL (`oauth_records`), per [`crate::oauth`].

use tokio_postgres::Row;

use crate::{
    catalog::CatalogError,
    oauth::{COLUMNS, OAuthRow, OAuthTable, Taken},
    postgres::database::{PgDatabase, db},
};

#[derive(Debug, Clone)]
pub struct PgOAuthTable {
    db: PgDatabase,
}

impl PgOAuthTable {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}

fn row(r: &Row) -> OAuthRow {
    OAuthRow {
        kind: r.get(0),
        id: r.get(1),
        family: r.get(2),
        subject: r.get(3),
        client_id: r.get(4),
        data: r.get(5),
        expires_ms: r.get(6),
        used_ms: r.get(7),
    }
}

#[async_trait::async_trait]
impl OAuthTable for PgOAuthTable {
    async fn put(&self, o: OAuthRow) -> Result<(), CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "INSERT INTO oauth_records (kind, id, family, subject, client_id, data, expires_ms, used_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (kind, id) DO UPDATE SET family = excluded.family, subject = excluded.subject,
               client_id = excluded.client_id, data = excluded.data, expires_ms = excluded.expires_ms,
               used_ms = excluded.used_ms",
            &[&o.kind, &o.id, &o.family, &o.subject, &o.client_id, &o.data, &o.expires_ms, &o.used_ms],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get(
        &self,
        kind: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthRow>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let r = c
            .query_opt(
                &format!("SELECT {COLUMNS} FROM oauth_records WHERE kind = $1 AND id = $2 AND expires_ms > $3"),
                &[&kind, &id, &now_ms],
            )
            .await
            .map_err(db)?;
        Ok(r.as_ref().map(row))
    }

    async fn consume(&self, kind: &str, id: &str, now_ms: i64) -> Result<Taken, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        // Row-locked by the UPDATE: a second replica's UPDATE waits, then finds
        // `used_ms` set and matches nothing.
        if let Some(r) = c
            .query_opt(
                &format!(
                    "UPDATE oauth_records SET used_ms = $3
                     WHERE kind = $1 AND id = $2 AND expires_ms > $3 AND used_ms IS NULL
                     RETURNING {COLUMNS}"
                ),
                &[&kind, &id, &now_ms],
            )
            .await
            .map_err(db)?
        {
            return Ok(Taken::Fresh(row(&r)));
        }
        let seen = c
            .query_opt(
                &format!("SELECT {COLUMNS} FROM oauth_records WHERE kind = $1 AND id = $2 AND expires_ms > $3"),
                &[&kind, &id, &now_ms],
            )
            .await
            .map_err(db)?;
        Ok(seen
            .as_ref()
            .map_or(Taken::Missing, |r| Taken::Reused(row(r))))
    }

    async fn touch(&self, kind: &str, id: &str, expires_ms: i64) -> Result<(), CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "UPDATE oauth_records SET expires_ms = $3 WHERE kind = $1 AND id = $2",
            &[&kind, &id, &expires_ms],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<bool, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let n = c
            .execute(
                "DELETE FROM oauth_records WHERE kind = $1 AND id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    async fn delete_family(&self, family: &str) -> Result<u64, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute("DELETE FROM oauth_records WHERE family = $1", &[&family])
            .await
            .map_err(db)
    }

    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<OAuthRow>, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let rows = c
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM oauth_records
                     WHERE kind = $1 AND ($2::text IS NULL OR subject = $2) AND expires_ms > $3
                     ORDER BY expires_ms DESC"
                ),
                &[&kind, &subject, &now_ms],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row).collect())
    }

    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        let r = c
            .query_one(
                "SELECT COUNT(*) FROM oauth_records WHERE kind = $1 AND expires_ms > $2",
                &[&kind, &now_ms],
            )
            .await
            .map_err(db)?;
        Ok(r.get::<_, i64>(0) as u64)
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, CatalogError> {
        let c = self.db.pool.get().await.map_err(db)?;
        c.execute(
            "DELETE FROM oauth_records WHERE expires_ms <= $1",
            &[&now_ms],
        )
        .await
        .map_err(db)
    }
}
