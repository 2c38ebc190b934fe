//! A [`Catalog`] that measures the one it wraps: every operation's latency and
//! failures as metrics (`wharf_db_query_duration_seconds{op}`,
//! `wharf_db_errors_total{op}`), a span per operation when tracing is on, and the
//! pool's use (`wharf_db_pool_connections{pool,state}`) read at scrape time.

use std::{future::Future, sync::Arc};

use tokio::time::Instant;

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    Catalog, CatalogError, Column, ImportSummary, Item, QueryResult, SearchPage, SearchQuery,
};

/// How many connections of one pool are in use and idle, and its ceiling.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolUse {
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

/// Reads a pool's use; `(pool name, use)` for each pool the database has.
pub type PoolProbe = Arc<dyn Fn() -> Vec<(&'static str, PoolUse)> + Send + Sync>;

/// The database series, for [`AppBuilder::collector`](wharf_core::AppBuilder::collector).
pub struct DbMetrics {
    latency: HistogramVec,
    errors: IntCounterVec,
    pool: GaugeVec,
    probe: PoolProbe,
}

impl std::fmt::Debug for DbMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbMetrics")
    }
}

impl DbMetrics {
    pub fn new(probe: PoolProbe) -> Self {
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "db_query_duration_seconds",
                "Time of each catalog operation on the database, by operation",
            )
            .buckets(wharf_core::metrics::LATENCY_BUCKETS.to_vec()),
            &["op"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "db_errors_total",
                "Catalog operations that failed in the database (not the caller's input), by operation",
            ),
            &["op"],
        )
        .expect("valid metric");
        let pool = GaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by pool and state (in_use, idle, max)",
            ),
            &["pool", "state"],
        )
        .expect("valid metric");
        Self {
            latency,
            errors,
            pool,
            probe,
        }
    }
}

impl Collector for DbMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.latency.desc();
        d.extend(self.errors.desc());
        d.extend(self.pool.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (name, u) in (self.probe)() {
            for (state, n) in [("in_use", u.in_use), ("idle", u.idle), ("max", u.max)] {
                self.pool.with_label_values(&[name, state]).set(n as f64);
            }
        }
        let mut out = self.latency.collect();
        out.extend(self.errors.collect());
        out.extend(self.pool.collect());
        out
    }
}

/// `inner`, measured into `metrics`; `system` names the database in spans.
pub fn instrument(
    inner: Arc<dyn Catalog>,
    system: &'static str,
    metrics: &DbMetrics,
) -> Arc<dyn Catalog> {
    Arc::new(Instrumented {
        inner,
        system,
        latency: metrics.latency.clone(),
        errors: metrics.errors.clone(),
    })
}

struct Instrumented {
    inner: Arc<dyn Catalog>,
    system: &'static str,
    latency: HistogramVec,
    errors: IntCounterVec,
}

impl Instrumented {
    async fn measure<T>(
        &self,
        op: &'static str,
        run: impl Future<Output = Result<T, CatalogError>>,
    ) -> Result<T, CatalogError> {
        // A span only inside a traced call: no cost when tracing is off.
        let span = if tracing::Span::current().is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "db",
                otel.name = format!("{} {op}", self.system),
                otel.kind = "client",
                db.system.name = self.system,
                db.operation.name = op,
                otel.status_code = tracing::field::Empty,
            )
        };
        let started = Instant::now();
        let result = run.instrument(span.clone()).await;
        self.latency
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        if let Err(CatalogError::Db(_) | CatalogError::Timeout(_)) = &result {
            self.errors.with_label_values(&[op]).inc();
            span.record("otel.status_code", "ERROR");
        }
        result
    }
}

#[async_trait::async_trait]
impl Catalog for Instrumented {
    async fn search(&self, query: SearchQuery) -> Result<SearchPage, CatalogError> {
        self.measure("search", self.inner.search(query)).await
    }
    async fn get(&self, id: &str) -> Result<Option<Item>, CatalogError> {
        self.measure("get", self.inner.get(id)).await
    }
    async fn upsert(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.measure("upsert", self.inner.upsert(items)).await
    }
    async fn replace(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError> {
        self.measure("replace", self.inner.replace(items)).await
    }
    async fn export(&self) -> Result<Vec<Item>, CatalogError> {
        self.measure("export", self.inner.export()).await
    }
    async fn count(&self) -> Result<u64, CatalogError> {
        self.measure("count", self.inner.count()).await
    }
    async fn prepare_search(&self) -> Result<(), CatalogError> {
        self.measure("prepare_search", self.inner.prepare_search())
            .await
    }
    async fn list_tables(&self) -> Result<Vec<String>, CatalogError> {
        self.measure("list_tables", self.inner.list_tables()).await
    }
    async fn describe_table(&self, table: &str) -> Result<Vec<Column>, CatalogError> {
        self.measure("describe_table", self.inner.describe_table(table))
            .await
    }
    fn sql_dialect(&self) -> crate::SqlDialect {
        self.inner.sql_dialect()
    }
    async fn query(&self, sql: &str, params: Vec<Value>) -> Result<QueryResult, CatalogError> {
        self.measure("query", self.inner.query(sql, params)).await
    }
    async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, CatalogError> {
        self.measure("execute", self.inner.execute(sql, params))
            .await
    }
}
