//! The default app over MCP: the catalog tools on the sample data, every result
//! checked against the tool's published output schema.

use serde_json::{Value, json};

use crate::process::Wharf;

async fn rpc(w: &Wharf, method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let mut req = reqwest::Client::new()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    let r = req
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()
}

#[tokio::test]
async fn catalog_tools_answer_within_their_output_schemas() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(data.path(), &[], &[("WHARF_PROFILE", "catalog")]).await;
    let ready = reqwest::get(w.url("/ready")).await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "the database answers, so the server is ready"
    );
    let tools = rpc(&w, "tools/list", json!({})).await;
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "search_items",
            "get_item",
            "list_tables",
            "describe_table",
            "execute_sql_query"
        ]
    );
    for t in &tools {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{}", t["name"]);
        assert!(
            t["description"].as_str().unwrap().starts_with("Use this"),
            "{}",
            t["name"]
        );
    }
    let schema_of =
        |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["outputSchema"].clone();
    let calls = [
        (
            "search_items",
            json!({"query": "grid template columns", "limit": 3}),
        ),
        ("get_item", json!({"id": "api.fetch"})),
        ("list_tables", json!({})),
        ("describe_table", json!({"table": "items"})),
        (
            "execute_sql_query",
            json!({"sql": "SELECT id FROM items WHERE id LIKE ?1 ORDER BY id LIMIT 2", "params": ["css.%"]}),
        ),
    ];
    for (name, args) in calls {
        let answer = rpc(&w, "tools/call", json!({"name": name, "arguments": args})).await;
        let result = &answer["result"];
        assert_eq!(result["isError"], false, "{name}: {answer}");
        let validator = jsonschema::validator_for(&schema_of(name)).unwrap();
        let structured = &result["structuredContent"];
        let errors: Vec<String> = validator
            .iter_errors(structured)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?} in {structured}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
    }
    let hit = rpc(&w, "tools/call", json!({"name": "search_items", "arguments": {"query": "grid template columns", "limit": 1}})).await;
    assert_eq!(
        hit["result"]["structuredContent"]["hits"][0]["id"],
        "css.properties.grid-template-columns"
    );
}

#[tokio::test]
async fn mistakes_are_tool_errors_the_model_can_read() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(data.path(), &[], &[("WHARF_PROFILE", "catalog")]).await;
    let cases = [
        (
            "get_item",
            json!({"id": "no.such.item"}),
            "No item has the id `no.such.item`",
        ),
        (
            "search_items",
            json!({"query": "fetch", "limit": 0}),
            "`limit`",
        ),
        (
            "search_items",
            json!({"query": "fetch", "cursor": "bogus"}),
            "`cursor`",
        ),
        (
            "execute_sql_query",
            json!({"sql": "DELETE FROM items"}),
            "only statements that read",
        ),
        (
            "describe_table",
            json!({"table": "secrets"}),
            "tables: items",
        ),
    ];
    for (name, args, expected) in cases {
        let answer = rpc(&w, "tools/call", json!({"name": name, "arguments": args})).await;
        assert_eq!(answer["result"]["isError"], true, "{name}: {answer}");
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(expected), "{name}: {text}");
    }
    let count = rpc(
        &w,
        "tools/call",
        json!({"name": "execute_sql_query", "arguments": {"sql": "SELECT count(*) FROM items"}}),
    )
    .await;
    assert_eq!(
        count["result"]["structuredContent"]["rows"][0][0], 12_522,
        "nothing was deleted"
    );
}

/// A command whose reader has gone (`| head`) ends quietly with 0, as `cat`
/// does: no panic, no error message.
fn ends_quietly_without_a_reader(args: &[&str], dir: &std::path::Path) {
    use std::process::{Command, Stdio};
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(crate::process::BIN)
        .args(args)
        .current_dir(dir)
        .env("WHARF_PROFILE", "catalog")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{args:?}: {stderr}"
    );
}

#[tokio::test]
async fn terminal_commands_end_quietly_when_their_reader_goes_away() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(data.path(), &[], &[("WHARF_PROFILE", "catalog")]).await;
    let url = w.url("/mcp");
    let dir = data.path().to_owned();
    tokio::task::spawn_blocking(move || {
        ends_quietly_without_a_reader(&["client", "--url", &url, "tools"], &dir);
        ends_quietly_without_a_reader(
            &["--data-dir", dir.to_str().unwrap(), "catalog", "export"],
            &dir,
        );
    })
    .await
    .unwrap();
}

/// The exit codes docs/gateway.md documents, and help that lists only the
/// flags a command uses.
#[test]
fn exit_codes_and_help_say_what_the_docs_say() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::process::BIN)
            .args(args)
            .env("WHARF_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let stdio = format!("{} --profile builtin stdio", crate::process::BIN);
    let client = |rest: &[&str]| {
        let mut args = vec!["client", "--stdio", stdio.as_str()];
        args.extend_from_slice(rest);
        run(&args).0
    };
    assert_eq!(client(&["call", "echo", "--arg", "text=hi"]), 0);
    assert_eq!(client(&["call", "echo"]), 1, "a tool error");
    assert_eq!(
        client(&["call", "no_such_tool"]),
        2,
        "a tool it does not have"
    );
    assert_eq!(client(&["call", "echo", "--json", "{bad"]), 2, "not JSON");
    assert_eq!(
        client(&["call", "echo", "--arg", "text"]),
        2,
        "not name=value"
    );
    assert_eq!(
        client(&["read", "ui://no/such"]),
        3,
        "refused by the server"
    );
    assert_eq!(
        run(&["client", "--url", "http://127.0.0.1:9/mcp", "tools"]).0,
        3,
        "unreachable"
    );
    assert_eq!(run(&["client", "tools"]).0, 2, "no server named");
    assert_eq!(
        run(&["--log-format", "xml", "check"]).0,
        78,
        "bad configuration"
    );

    let (_, client_help) = run(&["client", "--help"]);
    let (_, serve_help) = run(&["serve", "--help"]);
    let (_, export_help) = run(&["catalog", "export", "--help"]);
    for flag in ["--profile", "--database", "--data-dir"] {
        assert!(!client_help.contains(flag), "client does not use {flag}");
        assert!(serve_help.contains(flag), "serve uses {flag}");
    }
    assert!(export_help.contains("--data-dir") && !export_help.contains("--profile"));
    assert!(
        serve_help.contains("postgres://"),
        "--database names both backends"
    );
}
