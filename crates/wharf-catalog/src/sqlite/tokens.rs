//! The token vault on SQLite (`gateway_tokens`), per [`crate::tokens`].

use rusqlite::{OptionalExtension, params};

use crate::{catalog::CatalogError, sqlite::database::SqliteDatabase, tokens::TokenTable};

#[derive(Debug, Clone)]
pub struct SqliteTokenTable {
    db: SqliteDatabase,
}

impl SqliteTokenTable {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl TokenTable for SqliteTokenTable {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, CatalogError> {
        let (u, s) = (upstream.to_owned(), subject.to_owned());
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT sealed FROM gateway_tokens WHERE upstream = ?1 AND subject = ?2",
                    params![u, s],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?)
    }

    async fn put(&self, upstream: &str, subject: &str, sealed: &str) -> Result<(), CatalogError> {
        let (u, s, t) = (upstream.to_owned(), subject.to_owned(), sealed.to_owned());
        Ok(self
            .db
            .run(move |c| {
                c.execute(
                    "INSERT INTO gateway_tokens (upstream, subject, sealed, updated_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (upstream, subject) DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms",
                    params![u, s, t, wharf_core::now_ms()],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, CatalogError> {
        let (s, u) = (subject.to_owned(), upstream.map(String::from));
        Ok(self
            .db
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM gateway_tokens WHERE subject = ?1 AND (?2 IS NULL OR upstream = ?2)",
                    params![s, u],
                )?)
            })
            .await?)
    }

    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, CatalogError> {
        let u = upstream.to_owned();
        Ok(self
            .db
            .run(move |c| {
                Ok(c.query_row(
                    "SELECT subject, sealed FROM gateway_tokens WHERE upstream = ?1 ORDER BY updated_ms DESC LIMIT 1",
                    params![u],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
            })
            .await?)
    }

    async fn list(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<(String, String, i64)>, CatalogError> {
        let s = subject.map(String::from);
        Ok(self
            .db
            .run(move |c| {
                let mut stmt = c.prepare(
                    "SELECT upstream, subject, updated_ms FROM gateway_tokens
                     WHERE ?1 IS NULL OR subject = ?1 ORDER BY updated_ms DESC",
                )?;
                let rows = stmt.query_map(params![s], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }
}
