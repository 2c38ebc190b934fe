//! Host and Origin checks (DNS-rebinding protection).

use serde_json::json;
use wharf_http::HttpConfig;

use crate::common::{client, start};

async fn status_with(config: HttpConfig, headers: &[(&str, &str)], path: &str) -> u16 {
    let s = start(config).await;
    let mut req = client()
        .post(s.url(path))
        .json(&json!({"action": "list_tools"}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_foreign_host_is_forbidden() {
    assert_eq!(
        status_with(
            HttpConfig::default(),
            &[("host", "evil.example.com")],
            "/mcp"
        )
        .await,
        403
    );
    assert_eq!(
        status_with(
            HttpConfig::default(),
            &[("host", "evil.example.com:8000")],
            "/mcp/sse"
        )
        .await,
        403
    );
}

#[tokio::test]
async fn a_foreign_origin_is_forbidden() {
    assert_eq!(
        status_with(
            HttpConfig::default(),
            &[("origin", "http://evil.example.com")],
            "/mcp"
        )
        .await,
        403
    );
    assert_eq!(
        status_with(
            HttpConfig::default(),
            &[("origin", "http://localhost:5173")],
            "/mcp"
        )
        .await,
        200
    );
}

#[tokio::test]
async fn configured_hosts_and_origins_are_allowed() {
    let config = HttpConfig {
        allowed_hosts: vec!["mcp.example.com".into()],
        allowed_origins: vec!["https://chat.example.com".into()],
        ..HttpConfig::default()
    };
    let ok = [
        ("host", "mcp.example.com"),
        ("origin", "https://chat.example.com"),
    ];
    assert_eq!(status_with(config.clone(), &ok, "/mcp").await, 200);
    assert_eq!(
        status_with(config.clone(), &[("host", "127.0.0.1")], "/mcp").await,
        403
    );
    assert_eq!(
        status_with(
            config,
            &[
                ("host", "mcp.example.com"),
                ("origin", "https://evil.example.com")
            ],
            "/mcp"
        )
        .await,
        403
    );
}

#[tokio::test]
async fn health_is_not_guarded_so_probes_by_ip_work() {
    let s = start(HttpConfig::default()).await;
    let r = client()
        .get(s.url("/health"))
        .header("host", "10.1.2.3:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_legacy_sse_endpoint_is_guarded() {
    let s = start(HttpConfig::default()).await;
    let r = client()
        .get(s.url("/sse"))
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
