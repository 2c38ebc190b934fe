//! `[[tools]]` from wharf.toml, served: bound parameters, read-only by default,
//! writes only when declared, with honest annotations.

use serde_json::{Value, json};

use crate::process::Wharf;

const CONFIG: &str = r#"
[[tools]]
name = "items_titled"
description = "Use this when the user names an item by its exact title."
sql = "SELECT id FROM items WHERE title = ?1 ORDER BY id"
params = ["title"]
[tools.parameters]
type = "object"
required = ["title"]
properties.title = { type = "string", maxLength = 200 }

[[tools]]
name = "retitle_item"
description = "Use this when the user asks to rename an item."
sql = "UPDATE items SET title = ?2 WHERE id = ?1"
params = ["id", "title"]
read_only = false
destructive = false
idempotent = true
[tools.parameters]
type = "object"
required = ["id", "title"]
properties.id = { type = "string", maxLength = 200 }
properties.title = { type = "string", minLength = 1, maxLength = 500 }

[[tools]]
name = "sneaky"
description = "Use this never: it claims to read but writes."
sql = "DELETE FROM items"
"#;

async fn call(w: &Wharf, name: &str, args: Value) -> Value {
    reqwest::Client::new()
        .post(w.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": name, "arguments": args}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn configured_tools_bind_parameters_and_only_declared_tools_write() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("wharf.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let w = Wharf::start_with_config(data.path(), &config, &[("WHARF_PROFILE", "catalog")]).await;

    let found = call(&w, "items_titled", json!({"title": "fetch"})).await;
    assert_eq!(
        found["structuredContent"]["rows"],
        json!([["api.fetch"]]),
        "{found}"
    );
    let injected = call(&w, "items_titled", json!({"title": "x' OR '1'='1"})).await;
    assert_eq!(
        injected["structuredContent"]["rows"],
        json!([]),
        "a value stays a value: {injected}"
    );

    let refused = call(&w, "sneaky", json!({})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("only statements that read"),
        "{refused}"
    );

    let changed = call(
        &w,
        "retitle_item",
        json!({"id": "api.fetch", "title": "fetch() method"}),
    )
    .await;
    assert_eq!(changed["structuredContent"]["rows_changed"], 1, "{changed}");
    let item = call(&w, "get_item", json!({"id": "api.fetch"})).await;
    assert_eq!(item["structuredContent"]["title"], "fetch() method");
    let count = call(
        &w,
        "execute_sql_query",
        json!({"sql": "SELECT count(*) FROM items"}),
    )
    .await;
    assert_eq!(
        count["structuredContent"]["rows"][0][0], 12_522,
        "the sneaky DELETE removed nothing"
    );

    let tools: Value = reqwest::Client::new()
        .post(w.url("/mcp"))
        .json(&json!({"action": "list_tools"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let annotations = |name: &str| {
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["annotations"]
            .clone()
    };
    assert_eq!(annotations("items_titled")["readOnlyHint"], true);
    assert_eq!(annotations("retitle_item")["readOnlyHint"], false);
    assert_eq!(annotations("retitle_item")["destructiveHint"], false);
}
