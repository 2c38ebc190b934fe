//! The audit trail's contract on both backends: records come back newest
//! first, each filter narrows, `error` means every outcome but `ok`, pruning
//! removes exactly the old ones, and user SQL cannot read the table.

use std::sync::Arc;

use wharf_catalog::{AuditLog, PgAuditLog, PgDatabase, SqliteAuditLog, SqliteDatabase};
use wharf_core::{AuditQuery, AuditRecord};

async fn logs() -> Vec<(&'static str, Arc<dyn AuditLog>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDatabase::open(&dir.path().join("audit.db"))
        .await
        .unwrap();
    let mut out: Vec<(&'static str, Arc<dyn AuditLog>, _)> =
        vec![("sqlite", Arc::new(SqliteAuditLog::new(db)), Some(dir))];
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        let url = crate::empty_postgres_database().await;
        let pg = PgAuditLog::new(PgDatabase::connect(&url, 2).await.unwrap());
        out.push(("postgres", Arc::new(pg), None));
    }
    out
}

fn record(at_ms: i64, subject: &str, tool: &str, outcome: &str) -> AuditRecord {
    AuditRecord {
        at_ms,
        call_id: format!("call-{at_ms}"),
        subject: subject.into(),
        tool: tool.into(),
        upstream: tool.split('_').next().unwrap().into(),
        outcome: outcome.into(),
        latency_ms: 1.5,
        args_hash: "sha256:00".into(),
        endpoint: (at_ms == 3000).then(|| "math".into()),
    }
}

#[tokio::test]
async fn the_audit_trail_answers_every_filter_on_every_backend() {
    for (name, log, _dir) in logs().await {
        let all = vec![
            record(1000, "key:ci", "a_add", "ok"),
            record(2000, "key:ops", "a_echo", "upstream"),
            record(3000, "key:ci", "b_add", "tool_error"),
            record(4000, "key:ci", "a_add", "ok"),
        ];
        log.append(all.clone()).await.unwrap();
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery {
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            q
        };
        let at = |records: Vec<AuditRecord>| records.iter().map(|r| r.at_ms).collect::<Vec<_>>();
        let got = log.query(q(|_| {})).await.unwrap();
        assert_eq!(at(got.clone()), [4000, 3000, 2000, 1000], "{name}");
        assert_eq!(got[1], all[2], "{name}: a record comes back whole");
        let by = async |f: fn(&mut AuditQuery)| at(log.query(q(f)).await.unwrap());
        assert_eq!(
            by(|q| q.subject = Some("key:ci".into())).await,
            [4000, 3000, 1000],
            "{name}"
        );
        assert_eq!(
            by(|q| q.tool = Some("a_add".into())).await,
            [4000, 1000],
            "{name}"
        );
        assert_eq!(
            by(|q| q.upstream = Some("b".into())).await,
            [3000],
            "{name}"
        );
        assert_eq!(
            by(|q| q.outcome = Some("error".into())).await,
            [3000, 2000],
            "{name}"
        );
        assert_eq!(
            by(|q| q.outcome = Some("upstream".into())).await,
            [2000],
            "{name}"
        );
        assert_eq!(
            by(|q| {
                q.since_ms = Some(2000);
                q.until_ms = Some(4000);
            })
            .await,
            [3000, 2000],
            "{name}"
        );
        assert_eq!(by(|q| q.limit = 1).await, [4000], "{name}");
        assert_eq!(log.prune(3000).await.unwrap(), 2, "{name}");
        assert_eq!(by(|_| {}).await, [4000, 3000], "{name}");
    }
}

#[tokio::test]
async fn model_written_sql_cannot_read_the_audit_trail() {
    for f in crate::fixtures(crate::quick_limits()).await {
        let tables = f.catalog.list_tables().await.unwrap();
        assert!(
            !tables.iter().any(|t| t == "gateway_audit"),
            "{}: {tables:?}",
            f.name
        );
        let e = f
            .catalog
            .query("SELECT subject FROM gateway_audit", vec![])
            .await
            .unwrap_err();
        assert!(!e.to_string().is_empty(), "{}", f.name);
    }
}
