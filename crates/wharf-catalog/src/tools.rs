//! The catalog's MCP tools: `search_items`, `get_item`, and the read-only SQL
//! tools `list_tables`, `describe_table`, `execute_sql_query`.
//!
//! Input schemas are written out by hand so that every bound a model should know
//! (lengths, `limit` 1..50 default 10) is in them; Wharf validates arguments
//! against them before a handler runs. Output schemas come from the Rust types
//! of `structuredContent`.

use std::sync::Arc;

use rmcp::model::{JsonObject, ToolAnnotations};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wharf_core::{ToolError, ToolSpec, structured_result};

use crate::catalog::{Catalog, CatalogError, Column, QueryResult, SearchPage, SearchQuery};
use crate::item::Item;

/// Rows of a SQL answer written into its text content (every row is in
/// `structuredContent`), and the most bytes of them.
const TEXT_ROWS: usize = 50;
const TEXT_BYTES: usize = 8 * 1024;

fn obj(v: Value) -> JsonObject {
    v.as_object().cloned().unwrap_or_default()
}

fn read_only() -> ToolAnnotations {
    let mut a = ToolAnnotations::default();
    a.read_only_hint = Some(true);
    a.destructive_hint = Some(false);
    a.idempotent_hint = Some(true);
    a.open_world_hint = Some(false);
    a
}

/// The one mapping of catalog errors onto tool errors: what the caller can fix
/// is a tool error it reads; a database fault is internal (logged, not shown).
impl From<CatalogError> for ToolError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(m) => ToolError::Failed(m),
            CatalogError::NotFound(m) => ToolError::NotFound(m),
            e @ CatalogError::Timeout(_) => ToolError::Failed(e.to_string()),
            CatalogError::Db(e) => ToolError::internal(e),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(args: JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args)).map_err(|e| ToolError::invalid("", e.to_string()))
}

#[derive(Deserialize)]
struct SearchArgs {
    query: String,
    limit: Option<u32>,
    cursor: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct GetArgs {
    id: String,
}

#[derive(Deserialize)]
struct TableArgs {
    table: String,
}

#[derive(Deserialize)]
struct SqlArgs {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Tables {
    tables: Vec<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct TableDescription {
    table: String,
    columns: Vec<Column>,
}

/// The names of the catalog's tools, for settings that name them.
pub const TOOL_NAMES: &[&str] = &[
    "search_items",
    "get_item",
    "list_tables",
    "describe_table",
    "execute_sql_query",
];

/// All catalog tools over `catalog`. `search_items` and `get_item` render with
/// [`crate::widget`], which the app must register (`AppBuilder::widget`).
pub fn catalog_tools(catalog: Arc<dyn Catalog>) -> Vec<ToolSpec> {
    vec![
        search_items(catalog.clone()),
        get_item(catalog.clone()),
        list_tables(catalog.clone()),
        describe_table(catalog.clone()),
        execute_sql_query(catalog),
    ]
}

fn search_items(catalog: Arc<dyn Catalog>) -> ToolSpec {
    ToolSpec::new("search_items")
        .title("Search the catalog")
        .description(
            "Use this when the user wants to find items in the catalog by words (a feature, a topic, a name). \
             Returns ranked hits with id, title, a snippet with the matched words in **bold**, tags, URL and score; \
             pass `next_cursor` back as `cursor` for more. Use get_item with a hit's id for the whole item.",
        )
        .input_schema(obj(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 500, "description": "What to look for, in words (a name, a topic, a question). Items with every word rank first; when none has them all, the closest matches come back, and the result says so in `note`."},
                "limit": {"type": "integer", "minimum": 1, "maximum": crate::catalog::MAX_LIMIT, "default": 10, "description": "Hits per page."},
                "cursor": {"type": "string", "maxLength": 500, "description": "The next_cursor of the previous page."},
                "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "minLength": 1, "maxLength": 64}, "description": "Only items with all of these tags."}
            },
            "required": ["query"],
            "additionalProperties": false
        })))
        .output::<SearchPage>()
        .annotations(read_only())
        .widget(&crate::widget())
        .invocation("Searching the catalog…", "Searched the catalog")
        .handler(move |_, args| {
            let catalog = catalog.clone();
            async move {
                let a: SearchArgs = parse(args)?;
                let page = catalog
                    .search(SearchQuery { query: a.query.clone(), limit: a.limit.unwrap_or(10), cursor: a.cursor, tags: a.tags })
                    .await
                    .map_err(ToolError::from)?;
                let mut text = match page.hits.len() {
                    0 => format!("No items match \"{}\".", a.query),
                    n => format!("{n} item(s) match \"{}\"{}:", a.query, if page.next_cursor.is_some() { " (more with next_cursor)" } else { "" }),
                };
                if let Some(note) = &page.note {
                    text = format!("{note} {text}");
                }
                for (i, h) in page.hits.iter().enumerate() {
                    text.push_str(&format!("\n{}. {} [{}]: {}", i + 1, h.title, h.id, h.snippet));
                }
                structured_result(&page, text)
            }
        })
}

fn get_item(catalog: Arc<dyn Catalog>) -> ToolSpec {
    ToolSpec::new("get_item")
        .title("Get an item")
        .description("Use this when you have an item's id (from search_items) and need the whole item: title, body, URL, tags and attributes.")
        .input_schema(obj(json!({
            "type": "object",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": crate::item::MAX_ID_LEN, "description": "The item's id."}},
            "required": ["id"],
            "additionalProperties": false
        })))
        .output::<Item>()
        .annotations(read_only())
        .widget(&crate::widget())
        .invocation("Opening the item…", "Opened the item")
        .handler(move |_, args| {
            let catalog = catalog.clone();
            async move {
                let a: GetArgs = parse(args)?;
                let Some(item) = catalog.get(&a.id).await.map_err(ToolError::from)? else {
                    return Err(ToolError::NotFound(format!("No item has the id `{}`. Use search_items to find ids.", a.id)));
                };
                structured_result(&item, item_text(&item))
            }
        })
}

fn list_tables(catalog: Arc<dyn Catalog>) -> ToolSpec {
    ToolSpec::new("list_tables")
        .title("List tables")
        .description(
            "Use this before writing SQL for execute_sql_query: it lists the tables you may query.",
        )
        .input_schema(obj(
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ))
        .output::<Tables>()
        .annotations(read_only())
        .handler(move |_, _| {
            let catalog = catalog.clone();
            async move {
                let tables = catalog.list_tables().await.map_err(ToolError::from)?;
                let text = format!("Tables: {}", tables.join(", "));
                structured_result(&Tables { tables }, text)
            }
        })
}

fn describe_table(catalog: Arc<dyn Catalog>) -> ToolSpec {
    ToolSpec::new("describe_table")
        .title("Describe a table")
        .description("Use this to learn a table's columns and types before querying it with execute_sql_query.")
        .input_schema(obj(json!({
            "type": "object",
            "properties": {"table": {"type": "string", "minLength": 1, "maxLength": 128, "description": "A name from list_tables."}},
            "required": ["table"],
            "additionalProperties": false
        })))
        .output::<TableDescription>()
        .annotations(read_only())
        .handler(move |_, args| {
            let catalog = catalog.clone();
            async move {
                let a: TableArgs = parse(args)?;
                let columns = catalog.describe_table(&a.table).await.map_err(ToolError::from)?;
                let text = columns.iter().map(|c| format!("{} {}", c.name, c.kind)).collect::<Vec<_>>().join(", ");
                structured_result(&TableDescription { table: a.table, columns }, text)
            }
        })
}

fn execute_sql_query(catalog: Arc<dyn Catalog>) -> ToolSpec {
    let dialect = catalog.sql_dialect();
    ToolSpec::new("execute_sql_query")
        .title("Run a read-only SQL query")
        .description(format!(
            "Use this for questions search cannot answer (counts, groupings, filters on attributes). Runs ONE read-only \
             {} statement; put values in `params` and refer to them as {}. Results are capped in rows, size and time; \
             a cut result says so in `truncated`. Writes, several statements and ATTACH are refused.",
            dialect.name(),
            dialect.placeholders()
        ))
        .input_schema(obj(json!({
            "type": "object",
            "properties": {
                "sql": {"type": "string", "minLength": 1, "maxLength": 10000, "description": "One SELECT (or WITH ... SELECT) statement."},
                "params": {"type": "array", "maxItems": 100, "items": {"type": ["string", "number", "integer", "boolean", "null"]}, "description": format!("Values bound to {}, ...", dialect.placeholders())}
            },
            "required": ["sql"],
            "additionalProperties": false
        })))
        .output::<QueryResult>()
        .annotations(read_only())
        .handler(move |_, args| {
            let catalog = catalog.clone();
            async move {
                let a: SqlArgs = parse(args)?;
                let result = catalog.query(&a.sql, a.params).await.map_err(ToolError::from)?;
                structured_result(&result, rows_text(&result))
            }
        })
}

/// An item as the model reads it without `structuredContent`: every field,
/// the attributes as one line of JSON.
fn item_text(item: &Item) -> String {
    let mut text = format!("{} [{}]\n\n{}", item.title, item.id, item.body);
    if let Some(url) = &item.url {
        text.push_str(&format!("\n\nURL: {url}"));
    }
    if !item.tags.is_empty() {
        text.push_str(&format!("\nTags: {}", item.tags.join(", ")));
    }
    if !item.attributes.is_empty() {
        text.push_str(&format!(
            "\nAttributes: {}",
            Value::Object(item.attributes.clone())
        ));
    }
    text
}

/// A SQL answer as the model reads it without `structuredContent`: the
/// columns, then one JSON array per row, up to [`TEXT_ROWS`] rows and
/// [`TEXT_BYTES`], saying how many more there are.
fn rows_text(result: &QueryResult) -> String {
    let n = result.rows.len();
    let mut text = format!("{n} row(s). Columns: {}", json!(result.columns));
    let mut shown = 0;
    for row in result.rows.iter().take(TEXT_ROWS) {
        let line = Value::Array(row.clone()).to_string();
        if text.len() + line.len() > TEXT_BYTES {
            break;
        }
        text.push('\n');
        text.push_str(&line);
        shown += 1;
    }
    if shown < n {
        text.push_str(&format!(
            "\n({} more row(s) in structuredContent; ask for fewer columns or add LIMIT)",
            n - shown
        ));
    }
    if let Some(t) = &result.truncated {
        text.push_str(&format!("\nTruncated: {t}"));
    }
    text
}
