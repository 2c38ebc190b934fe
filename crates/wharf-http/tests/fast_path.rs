//! The stateless fast path (`server.fast_path`) answers what rmcp answers.
//!
//! Two servers with the same tools, one with the fast path and one without,
//! get the same requests with the same `X-Request-Id` (so the same call id);
//! status, content type and JSON-RPC message must be equal. A `path` tool tells
//! which path served it (the fast path gives a handler no peer), so a case that
//! should take the fast path is shown to take it.

use rmcp::model::{CallToolResponse, InputRequiredResult};
use serde_json::{Value, json};
use wharf_core::{App, ToolError, ToolSpec, text_result};
use wharf_http::HttpConfig;

use crate::common::{EchoArgs, TestServer, client, modern_meta, start_app};

fn app() -> App {
    let mut mirrored = serde_json::Map::new();
    mirrored.insert("type".into(), json!("object"));
    mirrored.insert(
        "properties".into(),
        json!({"region": {"type": "string", "x-mcp-header": "Region"}}),
    );
    App::builder("test", "1.0.0")
        .tool(
            ToolSpec::typed("echo", |_, a: EchoArgs| async move {
                Ok::<_, ToolError>(text_result(a.text))
            })
            .read_only(),
        )
        .tool(ToolSpec::new("path").handler(|ctx, _| async move {
            let path = if ctx.peer().is_some() { "rmcp" } else { "direct" };
            Ok::<_, ToolError>(text_result(path))
        }))
        .tool(ToolSpec::new("context").handler(|ctx, _| async move {
            // What a handler knows about the request, whichever path served it.
            let meta = ctx.meta().map(|m| {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter().cloned().collect::<Vec<_>>()
            });
            Ok::<_, ToolError>(text_result(
                json!({
                    "rpc_id": ctx.rpc_id().map(ToString::to_string),
                    "meta_keys": meta,
                    "client_capabilities": ctx.client_capabilities(),
                    "progress_token": ctx.progress_token().is_some(),
                    "client": ctx.client().map(|c| c.to_string()),
                    "cancelled": ctx.cancellation().is_cancelled(),
                })
                .to_string(),
            ))
        }))
        .tool(ToolSpec::new("fails").handler(|_, _| async move {
            Err::<CallToolResponse, _>(ToolError::Failed("the thing broke".into()))
        }))
        .tool(ToolSpec::new("crashes").handler(|_, _| async move {
            Err::<CallToolResponse, _>(ToolError::internal("a secret cause"))
        }))
        .tool(ToolSpec::new("asks").handler(|ctx, _| async move {
            if let Some(answer) = ctx.input_responses().and_then(|r| r.get("name")) {
                return Ok(text_result(format!("hello {answer}")).into());
            }
            let ask: InputRequiredResult = serde_json::from_value(json!({
                "resultType": "input_required",
                "inputRequests": {"name": {"method": "elicitation/create", "params": {
                    "mode": "form", "message": "name?",
                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
                }}},
                "requestState": "round-1"
            }))
            .map_err(ToolError::internal)?;
            Ok::<_, ToolError>(CallToolResponse::InputRequired(ask))
        }))
        .tool(ToolSpec::new("task").handler(|_, _| async move {
            // A task handle: only a client that declared the tasks extension may get one.
            let task: rmcp::model::CreateTaskResult = serde_json::from_value(json!({
                "resultType": "task", "taskId": "t-1", "status": "working",
                "createdAt": "2026-11-22T00:00:00Z", "lastUpdatedAt": "2026-11-22T00:00:00Z",
                "ttlMs": 60000
            }))
            .map_err(ToolError::internal)?;
            Ok::<_, ToolError>(CallToolResponse::Task(task))
        }))
        .tool(
            ToolSpec::new("mirrored")
                .input_schema(mirrored)
                .handler(|_, _| async move { Ok::<_, ToolError>(text_result("ok")) }),
        )
        .build()
        .expect("valid test app")
}

async fn servers() -> (TestServer, TestServer) {
    let on = start_app(app(), HttpConfig::default()).await;
    let off = start_app(
        app(),
        HttpConfig {
            fast_path: false,
            ..HttpConfig::default()
        },
    )
    .await;
    (on, off)
}

fn call(name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": name, "arguments": args, "_meta": modern_meta()}})
}

const HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
    ("mcp-protocol-version", "2026-07-28"),
    ("mcp-method", "tools/call"),
];

/// What a client sees: status, content type, and the JSON-RPC message.
async fn send(s: &TestServer, body: &str, headers: &[(&str, &str)], request_id: &str) -> Value {
    let mut request = client()
        .post(s.url("/mcp"))
        .header("x-request-id", request_id);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.body(body.to_owned()).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let message: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    json!({"status": status, "content_type": content_type, "message": message})
}

/// Send the same request to both servers; the answers must be equal.
async fn same(on: &TestServer, off: &TestServer, body: &Value, extra: &[(&str, &str)]) -> Value {
    let mut headers: Vec<(&str, &str)> = HEADERS.to_vec();
    let name = body
        .pointer("/params/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    headers.push(("mcp-name", name));
    for (k, v) in extra {
        headers.retain(|(h, _)| h != k);
        if !v.is_empty() {
            headers.push((k, v));
        }
    }
    let body = body.to_string();
    let fast = send(on, &body, &headers, "req-1").await;
    let slow = send(off, &body, &headers, "req-1").await;
    assert_eq!(fast, slow, "the fast path answered differently for {body}");
    fast
}

fn text(answer: &Value) -> &str {
    answer
        .pointer("/message/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {answer}"))
}

/// Which path served a call of the `path` tool: "direct" (fast path) or "rmcp".
async fn served_by(s: &TestServer, body: &Value, extra: (&str, &str)) -> Value {
    let headers: Vec<(&str, &str)> = HEADERS
        .iter()
        .copied()
        .chain([("mcp-name", "path")])
        .filter(|(k, _)| *k != extra.0)
        .chain([extra])
        .collect();
    let r = send(s, &body.to_string(), &headers, "a").await;
    r.pointer("/message/result/content/0/text")
        .cloned()
        .unwrap_or_else(|| json!({ "not served": r }))
}

#[tokio::test]
async fn an_ordinary_call_takes_the_fast_path_and_a_peer_needing_one_does_not() {
    let (on, off) = servers().await;
    let body = call("path", json!({}));
    let none = ("mcp-name", "path");
    assert_eq!(served_by(&on, &body, none).await, "direct");
    assert_eq!(served_by(&off, &body, none).await, "rmcp");

    // A progress token or a log level asks for messages only a peer can send.
    for (key, value) in [
        ("progressToken", json!("p1")),
        ("io.modelcontextprotocol/logLevel", json!("debug")),
    ] {
        let mut asking = body.clone();
        asking["params"]["_meta"][key] = value;
        assert_eq!(served_by(&on, &asking, none).await, "rmcp", "{key}");
    }
    // So does anything the fast path leaves to rmcp's checks.
    for extra in [
        ("accept", "application/json;q=1, text/event-stream"),
        ("mcp-param-region", "eu"),
        ("mcp-name", "=?base64?cGF0aA==?="),
    ] {
        assert_ne!(served_by(&on, &body, extra).await, "direct", "{extra:?}");
    }
}

#[tokio::test]
async fn results_and_tool_errors_are_the_same_on_both_paths() {
    let (on, off) = servers().await;
    let r = same(&on, &off, &call("echo", json!({"text": "hi"})), &[]).await;
    assert_eq!(text(&r), "hi");
    assert_eq!(r["message"]["result"]["_meta"]["wharf/callId"], "req-1");
    assert_eq!(r["content_type"], "application/json");

    let r = same(&on, &off, &call("echo", json!({"text": ""})), &[]).await;
    assert_eq!(r["message"]["result"]["isError"], true, "{r}");
    let r = same(&on, &off, &call("echo", json!({})), &[]).await;
    assert!(text(&r).contains("\"text\" is a required property"), "{r}");
    let r = same(&on, &off, &call("fails", json!({})), &[]).await;
    assert!(text(&r).contains("the thing broke"), "{r}");
    let r = same(&on, &off, &call("crashes", json!({})), &[]).await;
    assert!(!r.to_string().contains("a secret cause"), "{r}");
    let mut no_arguments = call("echo", json!({}));
    no_arguments["params"]
        .as_object_mut()
        .unwrap()
        .remove("arguments");
    same(&on, &off, &no_arguments, &[]).await;
    let mut string_id = call("echo", json!({"text": "x"}));
    string_id["id"] = json!("call-9");
    let r = same(&on, &off, &string_id, &[]).await;
    assert_eq!(r["message"]["id"], "call-9");
}

#[tokio::test]
async fn a_handler_sees_the_same_request_on_both_paths() {
    let (on, off) = servers().await;
    let r = same(&on, &off, &call("context", json!({})), &[]).await;
    let seen: Value = serde_json::from_str(text(&r)).unwrap();
    assert_eq!(seen["rpc_id"], "7");
    assert_eq!(seen["client_capabilities"], json!({}));
    assert_eq!(seen["client"], "127.0.0.1");
    assert_eq!(seen["cancelled"], false);
    assert!(
        seen["meta_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("io.modelcontextprotocol/clientInfo")),
        "{seen}"
    );
}

#[tokio::test]
async fn a_task_handle_reaches_only_a_client_that_declared_tasks_on_both_paths() {
    let (on, off) = servers().await;
    let r = same(&on, &off, &call("task", json!({})), &[]).await;
    assert!(r["message"]["error"].is_object(), "{r}");
    let mut declared = call("task", json!({}));
    declared["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    let r = same(&on, &off, &declared, &[]).await;
    assert_eq!(r["message"]["result"]["taskId"], "t-1", "{r}");
}

#[tokio::test]
async fn input_required_rounds_are_the_same_on_both_paths() {
    let (on, off) = servers().await;
    let r = same(&on, &off, &call("asks", json!({})), &[]).await;
    assert_eq!(
        r["message"]["result"]["resultType"], "input_required",
        "{r}"
    );
    assert_eq!(r["message"]["result"]["requestState"], "round-1");
    let mut retry = call("asks", json!({}));
    retry["params"]["inputResponses"] =
        json!({"name": {"action": "accept", "content": {"name": "ann"}}});
    retry["params"]["requestState"] = json!("round-1");
    let r = same(&on, &off, &retry, &[]).await;
    assert!(text(&r).starts_with("hello "), "{r}");
}

#[tokio::test]
async fn requests_the_fast_path_declines_get_rmcp_answers_on_both_servers() {
    let (on, off) = servers().await;
    let echo = call("echo", json!({"text": "hi"}));
    // Unknown tool, headers that disagree with the body or are missing, a legacy
    // session id, an unsupported or missing version, a tool mirroring arguments
    // in headers, a malformed body.
    same(&on, &off, &call("nope", json!({})), &[]).await;
    let r = same(&on, &off, &echo, &[("mcp-name", "fails")]).await;
    assert_eq!(r["status"], 400, "{r}");
    same(&on, &off, &echo, &[("mcp-name", "")]).await;
    same(&on, &off, &echo, &[("mcp-method", "")]).await;
    same(&on, &off, &echo, &[("mcp-protocol-version", "2025-11-25")]).await;
    same(&on, &off, &echo, &[("mcp-session-id", "no-such-session")]).await;
    same(&on, &off, &echo, &[("accept", "application/json")]).await;
    same(&on, &off, &echo, &[("content-type", "text/plain")]).await;
    let mut old = echo.clone();
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let r = same(&on, &off, &old, &[("mcp-protocol-version", "2099-01-01")]).await;
    assert_eq!(r["status"], 400, "{r}");
    let mut bare = echo.clone();
    bare["params"].as_object_mut().unwrap().remove("_meta");
    same(&on, &off, &bare, &[]).await;
    let mut wrong_version = echo.clone();
    wrong_version["jsonrpc"] = json!("1.0");
    same(&on, &off, &wrong_version, &[]).await;
    let r = same(&on, &off, &call("mirrored", json!({"region": "eu"})), &[]).await;
    assert_eq!(
        r["status"], 400,
        "a missing Mcp-Param-Region is rmcp's to refuse: {r}"
    );
    same(
        &on,
        &off,
        &call("mirrored", json!({"region": "eu"})),
        &[("mcp-param-region", "eu")],
    )
    .await;
}
