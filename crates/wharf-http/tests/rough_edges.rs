//! What real clients hit at the edges of the protocol: malformed bodies,
//! batches, `Accept` headers that name only JSON, the status of a session's
//! end, and one rule for every POST route (the per-tool rate limit, the call
//! id of an action-API answer).

use std::collections::HashMap;

use serde_json::{Value, json};
use wharf_http::{HttpConfig, rate_limit::RateLimitConfig};

use crate::common::{TestServer, client, initialize, legacy_call, rpc_body, start};

/// POST raw bytes to `/mcp` as a 2025-11-25 client would.
async fn post_raw(s: &TestServer, body: &'static [u8]) -> reqwest::Response {
    client()
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn json_error(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn malformed_bodies_get_400_and_a_json_rpc_error() {
    let s = start(HttpConfig::default()).await;
    let cases: &[(&[u8], i64)] = &[
        (b"{", -32700),
        (b"\xff\xfe{\"jsonrpc\":\"2.0\"}", -32700),
        (
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            -32600,
        ),
        (
            br#"{"jsonrpc":"2.0","id":99999999999999999999,"method":"tools/list"}"#,
            -32600,
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            -32600,
        ),
        (br#""just a string""#, -32600),
    ];
    for (body, code) in cases {
        let (status, error) = json_error(post_raw(&s, body).await).await;
        assert_eq!(status, 400, "{}: {error}", String::from_utf8_lossy(body));
        assert_eq!(error["error"]["code"], *code, "{error}");
        assert_eq!(error["jsonrpc"], "2.0");
    }
    // A known method with params of the wrong shape: the caller's 400 with
    // invalid params, not 415 (nor rmcp's "method not found").
    let r = initialize(&s).await;
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    for bad in [
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"arguments": 3}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": 5}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": 5}),
    ] {
        let (status, error) = json_error(legacy_call(&s, &session, bad.clone()).await).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["error"]["code"], -32602, "{bad}: {error}");
        assert_eq!(error["id"], 5, "{error}");
    }
}

#[tokio::test]
async fn an_unknown_session_is_404_as_a_json_rpc_error() {
    let s = start(HttpConfig::default()).await;
    let r = legacy_call(
        &s,
        "no-such-session",
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    let (status, error) = json_error(r).await;
    assert_eq!(status, 404);
    assert_eq!(error["id"], 3);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Session not found"),
        "{error}"
    );
}

/// Initialize a 2025-03-26 session (whose clients send no version header).
async fn old_session(s: &TestServer) -> String {
    let r = client()
        .post(s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_2025_03_26_session_may_send_a_batch() {
    let s = start(HttpConfig::default()).await;
    let session = old_session(&s).await;
    let batch = json!([
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "a", "method": "tools/list"},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "batched"}}},
        {"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    ]);
    let r = client()
        .post(s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answers: Value = r.json().await.unwrap();
    let answers = answers.as_array().expect("an array of answers");
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["id"], "a");
    assert_eq!(answers[0]["result"]["tools"].as_array().unwrap().len(), 2);
    assert_eq!(answers[1]["id"], "b");
    assert_eq!(answers[1]["result"]["content"][0]["text"], "batched");
    assert_eq!(answers[2]["id"], "c");
    assert!(
        answers[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    // Notifications only: 202, as for one notification.
    let r = client()
        .post(s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // A later version has no batches: a clear 400.
    let r = client()
        .post(s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]))
        .send()
        .await
        .unwrap();
    let (status, error) = json_error(r).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2025-03-26"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_that_accepts_only_json_gets_json() {
    let s = start(HttpConfig::default()).await;
    for accept in ["application/json", "*/*"] {
        let init = client()
            .post(s.url("/mcp"))
            .header("accept", accept)
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200, "{accept}");
        let session = init.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        // A session's answers come as an event stream from rmcp; this client gets JSON.
        let r = client()
            .post(s.url("/mcp"))
            .header("accept", accept)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "json"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{accept}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{accept}: {:?}",
            r.headers()
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], 9);
        assert_eq!(body["result"]["content"][0]["text"], "json", "{body}");
    }
    // Only an event stream can answer a GET stream: 406 stays.
    let r = client()
        .get(s.url("/mcp"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn ending_a_session_answers_204() {
    let s = start(HttpConfig::default()).await;
    let r = initialize(&s).await;
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let r = client()
        .delete(s.url("/mcp"))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let after = legacy_call(
        &s,
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(after.status(), 404);
}

fn echo_limited_to(n: u32) -> HttpConfig {
    HttpConfig {
        rate_limit: RateLimitConfig {
            enabled: true,
            anonymous_per_minute: 1000,
            subject_per_minute: 1000,
            tools: HashMap::from([("echo".to_owned(), n)]),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn a_tool_limit_holds_on_every_post_route() {
    let action = json!({"action": "call_tool", "name": "echo", "arguments": {"text": "x"}});
    // The action API, as JSON and as an event.
    for path in ["/mcp", "/mcp/sse"] {
        let s = start(echo_limited_to(2)).await;
        for _ in 0..2 {
            let r = client()
                .post(s.url(path))
                .json(&action)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
        let r = client()
            .post(s.url(path))
            .json(&action)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{path}: the third call passed");
    }
    // The HTTP+SSE transport.
    let s = start(echo_limited_to(2)).await;
    let mut stream = client().get(s.url("/sse")).send().await.unwrap();
    let first = String::from_utf8_lossy(&stream.chunk().await.unwrap().unwrap()).into_owned();
    let endpoint = first
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap()
        .trim()
        .to_owned();
    let post = |body: Value| client().post(s.url(&endpoint)).json(&body).send();
    post(json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    }))
    .await
    .unwrap();
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    let call = |id: u32| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}});
    for id in 1..=2 {
        assert_eq!(post(call(id)).await.unwrap().status(), 202);
    }
    assert_eq!(
        post(call(3)).await.unwrap().status(),
        429,
        "the third call through /messages passed"
    );
}

#[tokio::test]
async fn every_action_api_answer_to_a_call_names_its_call_id() {
    let s = start(HttpConfig::default()).await;
    for (arguments, status) in [(json!({"text": "fine"}), 200), (json!({"text": ""}), 400)] {
        let r = client()
            .post(s.url("/mcp"))
            .header("x-request-id", "call-under-test")
            .json(&json!({"action": "call_tool", "name": "echo", "arguments": arguments}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["_meta"]["wharf/callId"], "call-under-test", "{body}");
    }
}

#[tokio::test]
async fn a_modern_call_with_only_json_accepted_gets_json() {
    let s = start(HttpConfig::default()).await;
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "m"}, "_meta": crate::common::modern_meta()}});
    let r = crate::common::post_modern(&s, call, &[("accept", "application/json")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(rpc_body(r).await["result"]["content"][0]["text"], "m");
}
