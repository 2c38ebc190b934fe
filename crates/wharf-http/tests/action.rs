//! The JSON action API on `POST /mcp` and `POST /mcp/sse`.

use serde_json::{Value, json};
use wharf_http::HttpConfig;

use crate::common::{client, start};

async fn action(path: &str, body: Value) -> (u16, Value, String) {
    let s = start(HttpConfig::default()).await;
    let r = client().post(s.url(path)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, ctype)
}

#[tokio::test]
async fn list_tools_answers_plain_json() {
    let (status, body, ctype) = action("/mcp", json!({"action": "list_tools"})).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "gate"]);
}

#[tokio::test]
async fn call_tool_runs_the_tool() {
    let (status, body, _) = action(
        "/mcp",
        json!({"action": "call_tool", "name": "echo", "arguments": {"text": "hi"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["text"], "hi");
    assert_eq!(body["isError"], false);
}

#[tokio::test]
async fn an_unknown_action_lists_the_valid_ones() {
    let (status, body, _) = action("/mcp", json!({"action": "delete_everything"})).await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("list_tools") && message.contains("call_tool"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_tool_is_404() {
    let (status, body, _) = action("/mcp", json!({"action": "call_tool", "name": "nope"})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_tool");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("echo"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_arguments_are_400_naming_the_field() {
    let (status, body, _) = action(
        "/mcp",
        json!({"action": "call_tool", "name": "echo", "arguments": {"text": ""}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "text");
    let (status, body, _) = action(
        "/mcp",
        json!({"action": "call_tool", "name": "echo", "arguments": {"text": 5}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "text");
    let (status, body, _) = action(
        "/mcp",
        json!({"action": "call_tool", "name": "echo", "arguments": [1]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn call_tool_without_a_name_says_so() {
    let (status, body, _) = action("/mcp", json!({"action": "call_tool"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`name`"),
        "{body}"
    );
}

#[tokio::test]
async fn the_sse_form_answers_one_event() {
    let (status, body, ctype) = action(
        "/mcp/sse",
        json!({"action": "call_tool", "name": "echo", "arguments": {"text": "streamed"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let text = body.as_str().unwrap();
    assert!(text.contains("event: result"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let value: Value = serde_json::from_str(data).unwrap();
    assert_eq!(value["content"][0]["text"], "streamed");
}

#[tokio::test]
async fn health_reports_the_transport_and_version() {
    let (status, body, _) = {
        let s = start(HttpConfig::default()).await;
        let r = client().get(s.url("/health")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["transport"], "http");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn ready_reports_the_apps_check() {
    let s = start(HttpConfig::default()).await;
    let r = client().get(s.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");

    let failing: wharf_http::ReadyCheck =
        std::sync::Arc::new(|| Box::pin(async { Err("database: connection refused".into()) }));
    let s = start(HttpConfig {
        ready_checks: vec![failing],
        ..HttpConfig::default()
    })
    .await;
    let r = client()
        .get(s.url("/ready"))
        .header("host", "10.0.0.7:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "probes by pod IP are not Host-checked");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "database: connection refused");
}
