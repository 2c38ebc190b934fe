//! Arguments of every catalog tool (`search_items`, `get_item`, `list_tables`,
//! `describe_table`, `execute_sql_query`), called through `App::call_tool` on a
//! real SQLite catalog loaded with the sample: schema validation, cursors,
//! search words, item ids, table names and model-written SQL. Input: one byte
//! that picks the tool, then either a JSON object (the arguments) or any text,
//! which becomes the tool's main argument. Nothing may panic, abort or hang.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wharf_core::{App, CallContext};

const TOOLS: &[(&str, &str)] = &[
    ("search_items", "query"),
    ("search_items", "cursor"),
    ("get_item", "id"),
    ("list_tables", ""),
    ("describe_table", "table"),
    ("execute_sql_query", "sql"),
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn app() -> &'static Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    APP.get_or_init(|| {
        runtime().block_on(async {
            // Held in a static (not leaked): the sanitizer's leak check stays on.
            static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
            let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
            let db = wharf_catalog::SqliteDatabase::open(&dir.path().join("fuzz.db"))
                .await
                .unwrap();
            let limits = wharf_catalog::SqlLimits {
                timeout: std::time::Duration::from_millis(100),
                max_rows: 50,
                max_bytes: 64 * 1024,
            };
            let catalog = wharf_catalog::SqliteCatalog::new(db, limits);
            wharf_catalog::seed_if_empty(&catalog, wharf_catalog::sample_items)
                .await
                .unwrap();
            catalog.update_search_index().await.unwrap();
            let tools = wharf_catalog::tools::catalog_tools(Arc::new(catalog));
            Arc::new(
                App::builder("fuzz", "1")
                    .widget(&wharf_catalog::widget())
                    .tools(tools)
                    .build()
                    .unwrap(),
            )
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (tool, field) = TOOLS[usize::from(pick) % TOOLS.len()];
    let arguments = match serde_json::from_slice::<Value>(rest) {
        Ok(Value::Object(map)) => map,
        _ => {
            let text = String::from_utf8_lossy(rest).into_owned();
            let value = match field {
                "" => json!({}),
                "cursor" => json!({"query": "grid", "cursor": text}),
                field => json!({ field: text }),
            };
            value.as_object().cloned().unwrap_or_default()
        }
    };
    let app = app().clone();
    runtime().block_on(async move {
        let call = app.call_tool(tool, arguments, CallContext::detached(Default::default()));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .expect("a tool call did not finish in 10 s");
    });
});
