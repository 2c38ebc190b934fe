//! Legacy (2025-x) sessions: ids, expiry, the cap, stateless mode.

use std::time::{Duration, Instant};

use serde_json::json;
use wharf_http::HttpConfig;

use crate::common::{initialize, legacy_call, rpc_body, start};

fn list() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

#[tokio::test]
async fn initialize_mints_a_session_that_later_requests_use() {
    let s = start(HttpConfig::default()).await;
    let r = initialize(&s).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let body = rpc_body(legacy_call(&s, &id, list()).await).await;
    assert_eq!(
        body["result"]["tools"].as_array().unwrap().len(),
        2,
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_session_is_404() {
    let s = start(HttpConfig::default()).await;
    let r = legacy_call(&s, "no-such-session", list()).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_idle_session_expires_with_404() {
    let config = HttpConfig {
        session_idle_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let s = start(config).await;
    let r = initialize(&s).await;
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Each probe is a request, which would keep the session alive; so the
        // probes are spaced wider than the idle timeout.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = legacy_call(&s, &id, list()).await.status();
        if status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session never expired (last status {status})"
        );
    }
}

#[tokio::test]
async fn the_session_cap_answers_503_with_retry_after() {
    let config = HttpConfig {
        max_sessions: 2,
        ..HttpConfig::default()
    };
    let s = start(config).await;
    for _ in 0..2 {
        assert_eq!(initialize(&s).await.status(), 200);
    }
    let r = initialize(&s).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum of 2 sessions"),
        "{body}"
    );
}

#[tokio::test]
async fn a_deleted_session_frees_its_place() {
    let config = HttpConfig {
        max_sessions: 1,
        ..HttpConfig::default()
    };
    let s = start(config).await;
    let r = initialize(&s).await;
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let deleted = crate::common::client()
        .delete(s.url("/mcp"))
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let deadline = Instant::now() + Duration::from_secs(5);
    while initialize(&s).await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "the deleted session's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stateless_mode_mints_no_session() {
    let config = HttpConfig {
        stateless: true,
        ..HttpConfig::default()
    };
    let s = start(config).await;
    let r = initialize(&s).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
}

#[tokio::test]
async fn a_session_belongs_to_the_key_that_created_it() {
    use wharf_http::auth::{ApiKey, AuthConfig};
    const ALICE: &str = "alice-0123456789abcdef0123456789abcdef";
    const MALLORY: &str = "mallory-0123456789abcdef0123456789abcd";
    let s = start(HttpConfig {
        auth: AuthConfig {
            api_keys: vec![
                ApiKey {
                    name: "alice".into(),
                    key: ALICE.into(),
                },
                ApiKey {
                    name: "mallory".into(),
                    key: MALLORY.into(),
                },
            ],
            ..Default::default()
        },
        ..HttpConfig::default()
    })
    .await;
    let post = |key: &'static str, session: Option<String>, body: serde_json::Value| {
        let mut r = crate::common::client()
            .post(s.url("/mcp"))
            .bearer_auth(key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(id) = session {
            r = r.header("mcp-session-id", id);
        }
        r.json(&body).send()
    };
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    let r = post(ALICE, None, init).await.unwrap();
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let stolen = post(MALLORY, Some(id.clone()), list()).await.unwrap();
    assert_eq!(stolen.status(), 404);
    let deleted = crate::common::client()
        .delete(s.url("/mcp"))
        .bearer_auth(MALLORY)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 404);
    let own = post(ALICE, Some(id), list()).await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        rpc_body(own).await["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
