//! The authorization server's table on both backends: a code consumed once
//! (also when two tasks race for it), a replay told apart from an unknown
//! code, families deleted together, expiry, and out of reach of model SQL.

use std::sync::Arc;

use wharf_catalog::{
    OAuthRow, OAuthTable, PgDatabase, PgOAuthTable, SqliteDatabase, SqliteOAuthTable, Taken,
};

async fn tables() -> Vec<(&'static str, Arc<dyn OAuthTable>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDatabase::open(&dir.path().join("oauth.db"))
        .await
        .unwrap();
    let mut out: Vec<(&'static str, Arc<dyn OAuthTable>, _)> =
        vec![("sqlite", Arc::new(SqliteOAuthTable::new(db)), Some(dir))];
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        let url = crate::empty_postgres_database().await;
        let pg = PgOAuthTable::new(PgDatabase::connect(&url, 4).await.unwrap());
        out.push(("postgres", Arc::new(pg), None));
    }
    out
}

fn rec(kind: &str, id: &str, family: Option<&str>, subject: &str, expires_ms: i64) -> OAuthRow {
    OAuthRow {
        kind: kind.into(),
        id: id.into(),
        family: family.map(String::from),
        subject: Some(subject.into()),
        client_id: Some("client-1".into()),
        data: format!("{{\"id\":\"{id}\"}}"),
        expires_ms,
        used_ms: None,
    }
}

#[tokio::test]
async fn a_code_is_consumed_once_and_a_replay_is_told_apart_on_every_backend() {
    for (name, t, _dir) in tables().await {
        t.put(rec("code", "c1", Some("f1"), "alice", 10_000))
            .await
            .unwrap();
        let Taken::Fresh(r) = t.consume("code", "c1", 1_000).await.unwrap() else {
            panic!("{name}: the first consume gets the code")
        };
        assert_eq!(r.data, "{\"id\":\"c1\"}", "{name}");
        assert!(
            matches!(
                t.consume("code", "c1", 1_001).await.unwrap(),
                Taken::Reused(_)
            ),
            "{name}"
        );
        assert_eq!(
            t.consume("code", "nope", 1_000).await.unwrap(),
            Taken::Missing,
            "{name}"
        );
        // Expired: missing, not reused.
        assert_eq!(
            t.consume("code", "c1", 20_000).await.unwrap(),
            Taken::Missing,
            "{name}"
        );

        // Eight tasks race for one code: exactly one wins.
        t.put(rec("code", "race", None, "alice", 10_000))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.consume("code", "race", 1_000).await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Taken::Fresh(_)) {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "{name}");
    }
}

#[tokio::test]
async fn families_lists_counts_and_expiry_on_every_backend() {
    for (name, t, _dir) in tables().await {
        t.put(rec("refresh", "r1", Some("fam"), "alice", 10_000))
            .await
            .unwrap();
        t.put(rec("refresh", "r2", Some("fam"), "alice", 10_000))
            .await
            .unwrap();
        t.put(rec("refresh", "r3", Some("other"), "bob", 10_000))
            .await
            .unwrap();
        t.put(rec("client", "k", None, "x", 5_000)).await.unwrap();
        assert_eq!(
            t.list("refresh", Some("alice"), 0).await.unwrap().len(),
            2,
            "{name}"
        );
        assert_eq!(t.list("refresh", None, 0).await.unwrap().len(), 3, "{name}");
        assert_eq!(t.count("refresh", 0).await.unwrap(), 3, "{name}");
        assert_eq!(t.delete_family("fam").await.unwrap(), 2, "{name}");
        assert_eq!(t.get("refresh", "r1", 0).await.unwrap(), None, "{name}");
        assert!(t.get("refresh", "r3", 0).await.unwrap().is_some(), "{name}");
        // A client used again lives longer; then pruned once expired.
        t.touch("client", "k", 50_000).await.unwrap();
        assert!(
            t.get("client", "k", 20_000).await.unwrap().is_some(),
            "{name}"
        );
        assert_eq!(
            t.prune(20_000).await.unwrap(),
            1,
            "{name}: r3 expired at 10,000"
        );
        assert!(t.delete("client", "k").await.unwrap(), "{name}");
        assert!(!t.delete("client", "k").await.unwrap(), "{name}");
        // Replaced in place.
        t.put(rec("consent", "alice\nc", None, "alice", 9_000))
            .await
            .unwrap();
        let mut again = rec("consent", "alice\nc", None, "alice", 9_000);
        again.data = "{\"v\":2}".into();
        t.put(again).await.unwrap();
        assert_eq!(
            t.get("consent", "alice\nc", 0).await.unwrap().unwrap().data,
            "{\"v\":2}",
            "{name}"
        );
    }
}

#[tokio::test]
async fn model_written_sql_cannot_read_the_authorization_servers_records() {
    for f in crate::fixtures(crate::quick_limits()).await {
        let tables = f.catalog.list_tables().await.unwrap();
        assert!(
            !tables.iter().any(|t| t == "oauth_records"),
            "{}: {tables:?}",
            f.name
        );
        assert!(
            f.catalog
                .query("SELECT id FROM oauth_records", vec![])
                .await
                .is_err(),
            "{}",
            f.name
        );
    }
}
