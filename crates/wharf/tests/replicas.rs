//! Sessions that outlive a process: a second replica on the same database, a
//! restart, and SIGTERM.

use serde_json::{Value, json};

use crate::process::Wharf;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn initialize(w: &Wharf) -> String {
    let r = client()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// Call `echo` in `session`; the status and the JSON-RPC answer.
async fn echo(w: &Wharf, session: &str, text: &str) -> (u16, Value) {
    let r = client()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let answer = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    (status, answer)
}

#[tokio::test]
async fn a_session_minted_by_one_replica_is_served_by_another() {
    let data = tempfile::tempdir().unwrap();
    let a = Wharf::start(data.path(), &[]).await;
    let b = Wharf::start(data.path(), &[]).await;
    let session = initialize(&a).await;
    let (status, answer) = echo(&b, &session, "via b").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "via b", "{answer}");
    let (status, _) = echo(&a, &session, "back on a").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_restart_does_not_break_a_connected_client() {
    let data = tempfile::tempdir().unwrap();
    let before = Wharf::start(data.path(), &[]).await;
    let session = initialize(&before).await;
    assert!(before.terminate().success(), "SIGTERM exits 0");
    let after = Wharf::start(data.path(), &[]).await;
    let (status, answer) = echo(&after, &session, "still here").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

#[tokio::test]
async fn memory_sessions_do_not_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let memory = [("WHARF_SESSION_STORE", "memory")];
    let before = Wharf::start_with_env(data.path(), &[], &memory).await;
    let session = initialize(&before).await;
    assert!(before.terminate().success());
    let after = Wharf::start_with_env(data.path(), &[], &memory).await;
    assert_eq!(
        echo(&after, &session, "x").await.0,
        404,
        "an unknown session is 404, so the client initializes again"
    );
}

/// The catalog and the session store on PostgreSQL: two replicas on one
/// database serve the same catalog and each other's sessions. Runs when
/// `TEST_POSTGRES_URL` names a server (`cargo xtask ci` starts one).
#[tokio::test]
async fn two_replicas_on_postgres_share_the_catalog_and_sessions() {
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("PostgreSQL not tested: set TEST_POSTGRES_URL (cargo xtask ci does)");
        return;
    };
    let env = [
        ("WHARF_DATABASE", url.as_str()),
        ("WHARF_PROFILE", "catalog"),
    ];
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Wharf::start_with_env(a_dir.path(), &[], &env).await;
    let b = Wharf::start_with_env(b_dir.path(), &[], &env).await;
    let session = initialize(&a).await;
    let r = client()
        .post(b.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search_items", "arguments": {"query": "grid template columns", "limit": 1}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "replica b serves a's session");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("css.properties.grid-template-columns"),
        "{text}"
    );
}

/// `initialize` and `echo` under an API key.
async fn initialize_as(w: &Wharf, key: &str) -> String {
    let r = client()
        .post(w.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

async fn echo_as(w: &Wharf, key: &str, session: &str) -> u16 {
    client()
        .post(w.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_session_is_its_creators_alone_on_every_replica() {
    const ALICE: &str = "alice-0123456789abcdef0123456789abcdef";
    const MALLORY: &str = "mallory-0123456789abcdef0123456789abcd";
    let keys = format!("alice:{ALICE},mallory:{MALLORY}");
    let env = [("WHARF_API_KEYS", keys.as_str())];
    let data = tempfile::tempdir().unwrap();
    let a = Wharf::start_with_env(data.path(), &[], &env).await;
    let b = Wharf::start_with_env(data.path(), &[], &env).await;
    let session = initialize_as(&a, ALICE).await;
    // Another key that learns the id can neither use nor end the session,
    // on the replica that holds it or on one that would restore it.
    assert_eq!(echo_as(&a, MALLORY, &session).await, 404);
    assert_eq!(echo_as(&b, MALLORY, &session).await, 404);
    let ended = client()
        .delete(b.url("/mcp"))
        .bearer_auth(MALLORY)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 404);
    assert_eq!(echo_as(&b, ALICE, &session).await, 200);
    assert_eq!(echo_as(&a, ALICE, &session).await, 200);
}
