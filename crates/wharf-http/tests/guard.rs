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

#[tokio::test]
async fn browsers_get_cors_for_allowed_origins_and_preflights_skip_auth() {
    let s = crate::common::start(wharf_http::HttpConfig {
        auth: wharf_http::auth::AuthConfig {
            api_keys: vec![wharf_http::auth::ApiKey {
                name: "a".into(),
                key: "key-a-0123456789abcdef0123456789abcdef".into(),
            }],
            oauth: None,
            anonymous: false,
        },
        ..Default::default()
    })
    .await;
    let preflight = |origin: &'static str| {
        crate::common::client()
            .request(reqwest::Method::OPTIONS, s.url("/mcp"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
    };
    let ok = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(
        ok.status(),
        200,
        "a preflight carries no credentials and must not get 401"
    );
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("mcp-protocol-version"),
        "{allowed}"
    );

    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The real request still needs its key; the 401 is readable by the page.
    let r = crate::common::client()
        .post(s.url("/mcp"))
        .header("origin", "http://localhost:5173")
        .json(&serde_json::json!({"action": "list_tools"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
}

#[tokio::test]
async fn a_tunnel_host_is_told_which_setting_admits_it_and_that_a_key_follows() {
    let s = start(HttpConfig::default()).await;
    let r = client()
        .post(s.url("/mcp"))
        .header("host", "abc123.ngrok-free.app")
        .json(&json!({"action": "list_tools"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    for expected in [
        "Host `abc123.ngrok-free.app` is not allowed",
        "WHARF_ALLOWED_HOSTS=abc123.ngrok-free.app",
        "API key (MCP_API_KEY)",
        "A tunnel from a laptop",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
}
