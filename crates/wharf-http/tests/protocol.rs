//! The 2026-07-28 protocol rules on `/mcp`: header validation, versions, methods.

use serde_json::{Value, json};
use wharf_http::HttpConfig;

use crate::common::{client, modern_meta, post_modern, rpc_body, start};

fn call(name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args, "_meta": modern_meta()}})
}

#[tokio::test]
async fn a_modern_call_works_without_a_session() {
    let s = start(HttpConfig::default()).await;
    let r = post_modern(&s, call("echo", json!({"text": "hi"})), &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
    let body = rpc_body(r).await;
    assert_eq!(body["result"]["content"][0]["text"], "hi", "{body}");
    assert_eq!(body["result"]["resultType"], "complete");
}

#[tokio::test]
async fn a_mismatched_method_header_is_400_header_mismatch() {
    let s = start(HttpConfig::default()).await;
    let r = post_modern(
        &s,
        call("echo", json!({"text": "hi"})),
        &[("mcp-method", "tools/list")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let body = rpc_body(r).await;
    assert_eq!(body["error"]["code"], -32020, "{body}");
}

#[tokio::test]
async fn a_mismatched_name_header_is_400_header_mismatch() {
    let s = start(HttpConfig::default()).await;
    let body = call("echo", json!({"text": "hi"}));
    let r = client()
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "gate")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(rpc_body(r).await["error"]["code"], -32020);
}

#[tokio::test]
async fn an_unknown_protocol_version_is_400_with_the_supported_list() {
    let s = start(HttpConfig::default()).await;
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": {"_meta": meta}});
    let r = post_modern(&s, body, &[("mcp-protocol-version", "2099-01-01")]).await;
    assert_eq!(r.status(), 400);
    let body = rpc_body(r).await;
    assert_eq!(body["error"]["code"], -32022, "{body}");
    let supported = body["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.iter().any(|v| v == "2026-07-28"), "{body}");
    assert!(supported.iter().any(|v| v == "2025-11-25"), "{body}");
}

#[tokio::test]
async fn discover_names_the_server() {
    let s = start(HttpConfig::default()).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta()}});
    let body = rpc_body(post_modern(&s, body, &[]).await).await;
    assert_eq!(
        body["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "test",
        "{body}"
    );
}

#[tokio::test]
async fn get_and_delete_are_405_for_modern_clients() {
    let s = start(HttpConfig::default()).await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = client()
            .request(method.clone(), s.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let config = HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    };
    let s = start(config).await;
    let big = "x".repeat(4096);
    let r = post_modern(&s, call("echo", json!({"text": big})), &[]).await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn invalid_arguments_are_a_tool_error_naming_the_field() {
    let s = start(HttpConfig::default()).await;
    let body = rpc_body(
        post_modern(
            &s,
            call("echo", json!({"text": "this text is far too long"})),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("`text`"), "{text}");
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let s = start(HttpConfig::default()).await;
    let body = rpc_body(post_modern(&s, call("nope", json!({})), &[]).await).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[tokio::test]
async fn responses_carry_a_request_id_header() {
    let s = start(HttpConfig::default()).await;
    let r = post_modern(
        &s,
        call("echo", json!({"text": "hi"})),
        &[("x-request-id", "abc-123")],
    )
    .await;
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn metrics_count_requests_with_bounded_labels() {
    let s = start(HttpConfig::default()).await;
    post_modern(&s, call("echo", json!({"text": "hi"})), &[]).await;
    post_modern(&s, call("no-such-tool", json!({})), &[]).await;
    let invented = json!({"jsonrpc": "2.0", "id": 1, "method": "x/made-up-by-the-client", "params": {"_meta": modern_meta()}});
    post_modern(&s, invented, &[]).await;
    let text = crate::common::metrics_text(&s).await;
    assert!(
        text.contains(r#"wharf_requests_total{method="tools/call",status="200",tool="echo"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tool="-""#),
        "an unknown tool is not a label value: {text}"
    );
    assert!(
        !text.contains("no-such-tool") && !text.contains("made-up"),
        "client input never becomes a label: {text}"
    );
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(
        text.contains("wharf_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains(r#"wharf_build_info{version=""#), "{text}");
    assert!(text.contains("wharf_sessions 0"), "{text}");
}
