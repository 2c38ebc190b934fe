//! Graceful shutdown: a request in flight when shutdown starts still gets its answer.

use std::time::Duration;

use serde_json::json;
use wharf_http::HttpConfig;

use crate::common::{modern_meta, rpc_body, start, start_with_grace};

#[tokio::test]
async fn shutdown_lets_an_inflight_call_finish() {
    let s = start(HttpConfig::default()).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "gate", "arguments": {}, "_meta": modern_meta()}});
    let call = tokio::spawn(post_gate(s.url("/mcp"), body));
    // Wait until the handler is running, then start the shutdown.
    let entered = s.gate_entered.acquire().await.unwrap();
    entered.forget();
    s.shutdown.cancel();
    // The listener stops accepting while the call is still held at the gate.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(s.addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting connections while draining"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s.drain.is_draining());
    assert_eq!(s.drain.inflight(), 1);
    s.gate.add_permits(1);
    let answer = rpc_body(call.await.unwrap().expect("an answer")).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "through",
        "{answer}"
    );
    tokio::time::timeout(Duration::from_secs(5), s.served)
        .await
        .expect("serve returns after the drain")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let s = start_with_grace(HttpConfig::default(), Duration::from_millis(200)).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "gate", "arguments": {}, "_meta": modern_meta()}});
    let _call = tokio::spawn(post_gate(s.url("/mcp"), body));
    s.gate_entered.acquire().await.unwrap().forget();
    s.shutdown.cancel();
    // The gate never opens; serve must still return once the grace period is over.
    tokio::time::timeout(Duration::from_secs(10), s.served)
        .await
        .expect("serve returns after the grace period")
        .unwrap()
        .unwrap();
}

async fn post_gate(url: String, body: serde_json::Value) -> Option<reqwest::Response> {
    crate::common::client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "gate")
        .json(&body)
        .send()
        .await
        .ok()
}
