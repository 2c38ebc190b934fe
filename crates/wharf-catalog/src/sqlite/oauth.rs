//! The authorization server's records on SQLite (`oauth_records`), per [`crate::oauth`].

use rusqlite::{OptionalExtension, Row, params};

use crate::{
    catalog::CatalogError,
    oauth::{COLUMNS, OAuthRow, OAuthTable, Taken},
    sqlite::database::SqliteDatabase,
};

#[derive(Debug, Clone)]
pub struct SqliteOAuthTable {
    db: SqliteDatabase,
}

impl SqliteOAuthTable {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<OAuthRow> {
    Ok(OAuthRow {
        kind: r.get(0)?,
        id: r.get(1)?,
        family: r.get(2)?,
        subject: r.get(3)?,
        client_id: r.get(4)?,
        data: r.get(5)?,
        expires_ms: r.get(6)?,
        used_ms: r.get(7)?,
    })
}

#[async_trait::async_trait]
impl OAuthTable for SqliteOAuthTable {
    async fn put(&self, o: OAuthRow) -> Result<(), CatalogError> {
        Ok(self
            .db
            .run(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO oauth_records (kind, id, family, subject, client_id, data, expires_ms, used_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![o.kind, o.id, o.family, o.subject, o.client_id, o.data, o.expires_ms, o.used_ms],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn get(
        &self,
        kind: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthRow>, CatalogError> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM oauth_records WHERE kind = ?1 AND id = ?2 AND expires_ms > ?3"),
                    params![k, i, now_ms],
                    row,
                )
                .optional()?)
            })
            .await?)
    }

    async fn consume(&self, kind: &str, id: &str, now_ms: i64) -> Result<Taken, CatalogError> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        Ok(self
            .db
            .run(move |c| {
                let fresh = c
                    .query_row(
                        &format!(
                            "UPDATE oauth_records SET used_ms = ?3
                             WHERE kind = ?1 AND id = ?2 AND expires_ms > ?3 AND used_ms IS NULL
                             RETURNING {COLUMNS}"
                        ),
                        params![k, i, now_ms],
                        row,
                    )
                    .optional()?;
                if let Some(r) = fresh {
                    return Ok(Taken::Fresh(r));
                }
                let seen = c
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM oauth_records WHERE kind = ?1 AND id = ?2 AND expires_ms > ?3"),
                        params![k, i, now_ms],
                        row,
                    )
                    .optional()?;
                Ok(seen.map_or(Taken::Missing, Taken::Reused))
            })
            .await?)
    }

    async fn touch(&self, kind: &str, id: &str, expires_ms: i64) -> Result<(), CatalogError> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        Ok(self
            .db
            .run(move |c| {
                c.execute(
                    "UPDATE oauth_records SET expires_ms = ?3 WHERE kind = ?1 AND id = ?2",
                    params![k, i, expires_ms],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<bool, CatalogError> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM oauth_records WHERE kind = ?1 AND id = ?2",
                    params![k, i],
                )? > 0)
            })
            .await?)
    }

    async fn delete_family(&self, family: &str) -> Result<u64, CatalogError> {
        let f = family.to_owned();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute("DELETE FROM oauth_records WHERE family = ?1", params![f])? as u64)
            })
            .await?)
    }

    async fn list(
        &self,
        kind: &str,
        subject: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<OAuthRow>, CatalogError> {
        let (k, s) = (kind.to_owned(), subject.map(String::from));
        Ok(self
            .db
            .run(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM oauth_records
                     WHERE kind = ?1 AND (?2 IS NULL OR subject = ?2) AND expires_ms > ?3
                     ORDER BY expires_ms DESC"
                ))?;
                let rows = stmt.query_map(params![k, s, now_ms], row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn count(&self, kind: &str, now_ms: i64) -> Result<u64, CatalogError> {
        let k = kind.to_owned();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM oauth_records WHERE kind = ?1 AND expires_ms > ?2",
                    params![k, now_ms],
                    |r| r.get::<_, i64>(0),
                )? as u64)
            })
            .await?)
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, CatalogError> {
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM oauth_records WHERE expires_ms <= ?1",
                    params![now_ms],
                )? as u64)
            })
            .await?)
    }
}
