//! `--log-format json`: one JSON object per line, one line per request.

use serde_json::{Value, json};

use crate::process::Wharf;

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_method_tool_status_and_latency() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_logged(data.path(), &["--log-format", "json"]).await;
    let r = reqwest::Client::new()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        }}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stderr = w.terminate_with_stderr();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["path"] == "/mcp")
        .unwrap_or_else(|| panic!("no request line in {stderr}"));
    assert_eq!(request["method"], "tools/call");
    assert_eq!(request["tool"], "echo");
    assert_eq!(request["status"], 200);
    assert!(request["elapsed_ms"].as_f64().unwrap() >= 0.0);
    assert!(
        request["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let call = lines
        .iter()
        .find(|l| l["message"] == "tool call")
        .expect("a tool call line");
    assert_eq!(call["outcome"], "ok");
}
