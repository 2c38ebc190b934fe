//! The gateway's audit trail: records handed over by the gateway without
//! waiting (a bounded queue; a full one drops and counts), written to the
//! database in batches, pruned past the retention every hour; and
//! `wharf gateway audit`, which reads them back. Also `wharf gateway tokens`,
//! who is signed in to which upstream (the vault's rows), and revoking them.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use prometheus::{IntCounterVec, Opts};
use tokio::sync::mpsc;
use wharf_catalog::AuditLog;
use wharf_core::{AuditQuery, AuditRecord};

use crate::output::say;
use wharf_core::untrusted::shown;

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;
/// Records written in one transaction at most.
const BATCH: usize = 512;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The gateway's [`wharf_gateway::AuditSink`]: a queue to the writer task.
pub(crate) struct AuditWriter {
    queue: mpsc::Sender<AuditRecord>,
    /// Handed over and not yet written (or dropped).
    pending: Arc<AtomicU64>,
    records: IntCounterVec,
}

impl wharf_gateway::AuditSink for AuditWriter {
    fn record(&self, record: AuditRecord) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(record).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.records.with_label_values(&["dropped"]).inc();
        }
    }
}

impl AuditWriter {
    /// Start writing to `log`, pruning what is older than `retention`; the
    /// counts go to `registry` (`wharf_audit_records_total{result}`).
    pub(crate) fn start(
        log: Arc<dyn AuditLog>,
        retention: Duration,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Arc<Self>> {
        let records = IntCounterVec::new(
            Opts::new(
                "audit_records_total",
                "Audit records of gateway tool calls, by result: written, dropped (queue full or database error)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(records.clone()))?;
        let (queue, mut rx) = mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicU64::new(0));
        let (counts, left) = (records.clone(), pending.clone());
        let writer = log.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let n = batch.len() as u64;
                let result = match writer.append(std::mem::take(&mut batch)).await {
                    Ok(()) => "written",
                    Err(e) => {
                        tracing::warn!(error = %e, records = n, "audit records not written");
                        "dropped"
                    }
                };
                counts.with_label_values(&[result]).inc_by(n);
                left.fetch_sub(n, Ordering::SeqCst);
            }
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                let cutoff = wharf_core::now_ms()
                    .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
                match log.prune(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(records = n, "audit records past the retention deleted")
                    }
                    Err(e) => tracing::warn!(error = %e, "audit records not pruned"),
                }
            }
        });
        Ok(Arc::new(Self {
            queue,
            pending,
            records,
        }))
    }

    /// Wait (up to `within`) until every record handed over is written: the
    /// last calls before a shutdown are in the trail too.
    pub(crate) async fn flush(&self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `wharf gateway audit`'s filters, as typed.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    pub user: Option<String>,
    pub tool: Option<String>,
    pub upstream: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: usize,
    pub json_output: bool,
}

/// A time as typed: an RFC 3339 instant, or a duration back from now (`1h`, `7d`).
fn instant(text: &str, flag: &str) -> anyhow::Result<i64> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        return Ok(ms);
    }
    let back = humantime::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "{flag} {text}: not a time; write a duration back from now (30m, 24h, 7d) or an instant (2026-11-29T10:00:00Z)"
        )
    })?;
    Ok(wharf_core::now_ms().saturating_sub(back.as_millis() as i64))
}

/// `wharf gateway audit`: the calls that match, newest first, as a table or JSON lines.
pub(crate) async fn query(log: Arc<dyn AuditLog>, f: Filters) -> anyhow::Result<()> {
    let query = AuditQuery {
        subject: f.user,
        tool: f.tool,
        upstream: f.upstream,
        outcome: f.outcome,
        since_ms: f
            .since
            .as_deref()
            .map(|t| instant(t, "--since"))
            .transpose()?,
        until_ms: f
            .until
            .as_deref()
            .map(|t| instant(t, "--until"))
            .transpose()?,
        limit: f.limit.max(1),
    };
    let records = log
        .query(query)
        .await
        .context("cannot read the audit trail")?;
    if f.json_output {
        for r in &records {
            say!("{}", serde_json::to_string(r)?)?;
        }
        return Ok(());
    }
    if records.is_empty() {
        eprintln!("no calls match");
        return Ok(());
    }
    say!(
        "{:<24} {:<24} {:<28} {:<12} {:<14} {:>9}  call id",
        "time (UTC)",
        "user",
        "tool",
        "upstream",
        "outcome",
        "ms"
    )?;
    for r in &records {
        let at = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_millis(r.at_ms.max(0) as u64),
        );
        // What callers and upstreams chose (subjects, names) is shown escaped:
        // no control sequence reaches the terminal.
        let user = if r.subject.is_empty() {
            "(anonymous)".into()
        } else {
            shown(&r.subject)
        };
        say!(
            "{:<24} {:<24} {:<28} {:<12} {:<14} {:>9.1}  {}",
            at.to_string(),
            user,
            shown(&r.tool),
            shown(&r.upstream),
            r.outcome,
            r.latency_ms,
            shown(&r.call_id)
        )?;
    }
    Ok(())
}

/// `wharf gateway tokens`: who is signed in to which upstream; `--revoke`
/// deletes a user's tokens (they sign in again at their next call).
pub(crate) async fn tokens(
    table: Arc<dyn wharf_catalog::TokenTable>,
    user: Option<String>,
    upstream: Option<String>,
    revoke: bool,
) -> anyhow::Result<()> {
    if revoke {
        let user = user.context("--revoke needs --user")?;
        let n = table
            .delete(&user, upstream.as_deref())
            .await
            .context("cannot change the token vault")?;
        say!("revoked {n} token(s) of {user}")?;
        return Ok(());
    }
    let rows = table
        .list(user.as_deref())
        .await
        .context("cannot read the token vault")?;
    if rows.is_empty() {
        eprintln!("nobody is signed in to an upstream");
        return Ok(());
    }
    say!(
        "{:<20} {:<32} {:<24}",
        "upstream",
        "user",
        "signed in or refreshed (UTC)"
    )?;
    for (up, subject, updated) in rows
        .iter()
        .filter(|(u, _, _)| upstream.as_ref().is_none_or(|x| x == u))
    {
        let at = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis((*updated).max(0) as u64),
        );
        // The gateway's own registration with the upstream's server is kept beside the tokens.
        let (up, subject) = match up.strip_suffix("#client") {
            Some(up) => (shown(up), "(the gateway's registration)".into()),
            None => (shown(up), shown(subject)),
        };
        say!("{up:<20} {subject:<32} {at}")?;
    }
    Ok(())
}
