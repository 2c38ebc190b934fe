//! What the model reads when its host shows it only `content` (2025-03-26
//! clients, some hosts): every tool's text carries the answer itself, not a
//! summary of `structuredContent`.

use rmcp::model::{CallToolResponse, JsonObject};
use serde_json::{Value, json};
use wharf_catalog::SqlLimits;
use wharf_core::{App, CallContext};

use crate::fixtures;

async fn text(app: &App, tool: &str, args: Value) -> (String, Value) {
    let args: JsonObject = args.as_object().cloned().unwrap();
    let CallToolResponse::Complete(r) = app
        .call_tool(tool, args, CallContext::detached(Default::default()))
        .await
        .unwrap()
    else {
        panic!("not complete")
    };
    assert_ne!(r.is_error, Some(true), "{tool}: {:?}", r.content);
    let text = r.content[0].as_text().unwrap().text.clone();
    (text, r.structured_content.unwrap_or_default())
}

#[tokio::test]
async fn the_tool_names_settings_accept_are_the_tools_there_are() {
    let f = fixtures(SqlLimits::default()).await.remove(0);
    let names: Vec<String> = wharf_catalog::tools::catalog_tools(f.catalog.clone())
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(names, wharf_catalog::tools::TOOL_NAMES);
}

#[tokio::test]
async fn every_tools_text_carries_its_answer() {
    for f in fixtures(SqlLimits::default()).await {
        let app = App::builder("catalog", "1")
            .widget(&wharf_catalog::widget())
            .tools(wharf_catalog::tools::catalog_tools(f.catalog.clone()))
            .build()
            .unwrap();
        let name = f.name;

        let (t, s) = text(&app, "search_items", json!({"query": "fetch", "limit": 3})).await;
        for hit in s["hits"].as_array().unwrap() {
            for field in ["id", "title"] {
                assert!(t.contains(hit[field].as_str().unwrap()), "{name}: {t}");
            }
            let snippet = hit["snippet"].as_str().unwrap();
            assert!(t.contains(snippet), "{name}: the snippet too: {t}");
        }

        let (t, s) = text(&app, "get_item", json!({"id": "api.fetch"})).await;
        for field in ["title", "body", "url"] {
            assert!(
                t.contains(s[field].as_str().unwrap()),
                "{name}: {field}: {t}"
            );
        }
        assert!(
            t.contains("Tags: ") && t.contains(s["tags"][0].as_str().unwrap()),
            "{name}: {t}"
        );
        let attributes = t
            .lines()
            .find_map(|l| l.strip_prefix("Attributes: "))
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(attributes).unwrap(),
            s["attributes"],
            "{name}"
        );

        let (t, _) = text(&app, "list_tables", json!({})).await;
        assert!(t.contains("items"), "{name}: {t}");
        let (t, s) = text(&app, "describe_table", json!({"table": "items"})).await;
        for c in s["columns"].as_array().unwrap() {
            assert!(t.contains(c["name"].as_str().unwrap()), "{name}: {t}");
        }

        // The rows themselves, one JSON array each, and how many were left out.
        let sql = "SELECT id, title FROM items WHERE id LIKE 'api.fetch%' ORDER BY id";
        let (t, s) = text(&app, "execute_sql_query", json!({"sql": sql})).await;
        let rows = s["rows"].as_array().unwrap();
        assert!(!rows.is_empty());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("{} row(s). Columns: [\"id\",\"title\"]", rows.len()),
            "{name}"
        );
        for (line, row) in lines[1..].iter().zip(rows) {
            assert_eq!(&serde_json::from_str::<Value>(line).unwrap(), row, "{name}");
        }
        let many = "SELECT id FROM items ORDER BY id LIMIT 80";
        let (t, s) = text(&app, "execute_sql_query", json!({"sql": many})).await;
        assert_eq!(s["rows"].as_array().unwrap().len(), 80, "{name}");
        assert_eq!(
            t.lines().count(),
            1 + 50 + 1,
            "{name}: 50 rows shown, then a note"
        );
        assert!(
            t.ends_with(
                "(30 more row(s) in structuredContent; ask for fewer columns or add LIMIT)"
            ),
            "{name}: {t}"
        );
    }
}
