//! The catalog app, what `wharf serve` runs by default: search and retrieval over
//! the database's catalog, plus read-only SQL, loaded with the sample catalog
//! when the database is empty.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use wharf_catalog::Catalog;
use wharf_core::App;

pub(crate) async fn app(
    catalog: Arc<dyn Catalog>,
    metrics: wharf_catalog::DbMetrics,
    defined: &[crate::config::tools::ToolDef],
    tool_timeout: Duration,
    max_rows: usize,
    security: &[(String, wharf_core::SecurityScheme)],
    seed: bool,
) -> anyhow::Result<App> {
    if seed
        && let Some(n) = wharf_catalog::seed_if_empty(catalog.as_ref(), wharf_catalog::sample_items)
            .await
            .context("cannot load the sample catalog")?
    {
        tracing::info!(
            items = n,
            "loaded the sample catalog into the empty database"
        );
    }
    // Searches use FTS5 until the index is current; build it now, off the
    // startup path.
    let preparing = catalog.clone();
    tokio::spawn(async move {
        if let Err(e) = preparing.prepare_search().await {
            tracing::warn!(error = %e, "search index not built; searching with FTS5");
        }
    });
    let count = catalog.count().await.context("cannot read the catalog")?;
    let (defined_tools, widgets) = super::config_tools::build(defined, &catalog, max_rows)?;
    let app = App::builder("wharf-catalog", env!("CARGO_PKG_VERSION"))
        .title("Wharf catalog")
        .instructions(format!(
            "A searchable catalog of {count} items. Use search_items to find items by words, get_item for one item's \
             details, and list_tables, describe_table and execute_sql_query for questions that need counting or filtering."
        ))
        .default_tool_timeout(tool_timeout)
        .collector(Box::new(metrics))
        .tools(defined_tools)
        .widget(&wharf_catalog::widget())
        .tools(wharf_catalog::tools::catalog_tools(catalog).into_iter().map(|spec| {
            let schemes: Vec<wharf_core::SecurityScheme> = security
                .iter()
                .filter(|(tool, _)| tool == spec.name())
                .map(|(_, scheme)| scheme.clone())
                .collect();
            if schemes.is_empty() { spec } else { spec.security(schemes) }
        }));
    Ok(widgets.iter().fold(app, |app, w| app.widget(w)).build()?)
}
