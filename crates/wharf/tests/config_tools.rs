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

/// One 2026-07-28 request (no session), as a JSON value.
async fn modern(w: &Wharf, method: &str, name: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let res = reqwest::Client::new()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{method}: {}", res.status());
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_configured_tool_renders_with_its_own_widget() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("widgets")).unwrap();
    std::fs::write(
        data.path().join("widgets/ids.html"),
        "<!doctype html><p>ids</p>",
    )
    .unwrap();
    let config = data.path().join("wharf.toml");
    std::fs::write(
        &config,
        r#"
[[tools]]
name = "ids_titled"
description = "Use this when the user names an item by its exact title."
sql = "SELECT id FROM items WHERE title = ?1"
params = ["title"]
invoking = "Looking up…"
invoked = "Looked up"
[tools.parameters]
type = "object"
required = ["title"]
properties.title = { type = "string", maxLength = 200 }
[tools.widget]
template = "widgets/ids.html"
description = "A list of ids."
resource_domains = ["https://cdn.example.com"]
"#,
    )
    .unwrap();
    let w = Wharf::start_with_config(data.path(), &config, &[("WHARF_PROFILE", "catalog")]).await;

    let tools = modern(&w, "tools/list", "", json!({})).await;
    let tool = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ids_titled")
        .unwrap()
        .clone();
    let uri = "ui://wharf/tools/ids_titled.html";
    assert_eq!(tool["_meta"]["ui"]["resourceUri"], uri);
    assert_eq!(
        tool["_meta"]["openai/outputTemplate"],
        "ui://wharf/tools/ids_titled.skybridge.html"
    );
    assert_eq!(
        tool["_meta"]["openai/toolInvocation/invoking"],
        "Looking up…"
    );
    assert_eq!(tool["outputSchema"]["properties"]["rows"]["maxItems"], 500);

    let read = modern(&w, "resources/read", uri, json!({"uri": uri})).await;
    let c = &read["result"]["contents"][0];
    assert_eq!(c["mimeType"], "text/html;profile=mcp-app");
    assert_eq!(c["text"], "<!doctype html><p>ids</p>");
    assert_eq!(
        c["_meta"]["ui"]["csp"]["resourceDomains"],
        json!(["https://cdn.example.com"])
    );
    assert_eq!(
        c["_meta"]["openai/widgetCSP"]["resource_domains"],
        json!(["https://cdn.example.com"])
    );
    assert_eq!(c["_meta"]["openai/widgetDescription"], "A list of ids.");
}

#[tokio::test]
async fn a_claim_bound_parameter_comes_from_the_caller_not_the_arguments() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("wharf.toml");
    std::fs::write(
        &config,
        r#"
[[tools]]
name = "whoami_sql"
description = "Use this when the user asks who they are signed in as."
sql = "SELECT ?1 AS me"
params = ["owner"]
bind_claims = { owner = "sub" }
"#,
    )
    .unwrap();
    let keys =
        "alice:alice-0123456789abcdef0123456789abcdef,bob:bob-0123456789abcdef0123456789abcdef0";
    let w = Wharf::start_with_config(
        data.path(),
        &config,
        &[("WHARF_PROFILE", "catalog"), ("WHARF_API_KEYS", keys)],
    )
    .await;
    let ask = |key: &'static str, args: Value| {
        let url = w.url("/mcp");
        async move {
            reqwest::Client::new()
                .post(url)
                .header("authorization", format!("Bearer {key}"))
                .json(&json!({"action": "call_tool", "name": "whoami_sql", "arguments": args}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let alice = ask("alice-0123456789abcdef0123456789abcdef", json!({})).await;
    assert_eq!(
        alice["structuredContent"]["rows"],
        json!([["key:alice"]]),
        "{alice}"
    );
    // An argument of the same name does not override the token.
    let bob = ask(
        "bob-0123456789abcdef0123456789abcdef0",
        json!({"owner": "key:alice"}),
    )
    .await;
    assert_eq!(
        bob["structuredContent"]["rows"],
        json!([["key:bob"]]),
        "{bob}"
    );
}
