//! Rate limits (per IP, per subject, per tool; in process and shared through a
//! real redis-server) and load shedding. Limits are set low so that a handful of
//! requests crosses them; nothing here depends on timing.

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};
use wharf_http::{
    HttpConfig,
    auth::{ApiKey, AuthConfig},
    rate_limit::{Backend, FailMode, RateLimitConfig},
};

use crate::common::{Redis, TestServer, client, start};

const KEY_A: &str = "key-a-0123456789abcdef0123456789abcdef";
const KEY_B: &str = "key-b-0123456789abcdef0123456789abcdef";

fn limits(anonymous: u32, subject: u32) -> RateLimitConfig {
    RateLimitConfig {
        enabled: true,
        anonymous_per_minute: anonymous,
        subject_per_minute: subject,
        ..Default::default()
    }
}

async fn list(s: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = client()
        .post(s.url("/mcp"))
        .json(&json!({"action": "list_tools"}));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn echo(s: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = client()
        .post(s.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": "echo", "arguments": {"text": "hi"}}));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn assert_429(r: reqwest::Response, bucket: &str) {
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32000);
    assert_eq!(body["error"]["data"]["limit"], bucket);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many requests")
    );
}

async fn metric(s: &TestServer, series: &str) -> f64 {
    crate::common::metrics_text(s)
        .await
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn anonymous_callers_are_limited_per_ip() {
    let s = start(HttpConfig {
        rate_limit: limits(3, 100),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(list(&s, &[]).await.status(), 200);
    }
    assert_429(list(&s, &[]).await, "ip").await;
    // Probes are never limited.
    assert_eq!(
        client()
            .get(s.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        metric(&s, "wharf_rate_limited_total{bucket=\"ip\"}").await,
        1.0
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let untrusted = start(HttpConfig {
        rate_limit: limits(2, 100),
        ..Default::default()
    })
    .await;
    // A client cannot pick a fresh bucket by writing X-Forwarded-For itself.
    for i in 0..2 {
        let ip = format!("203.0.113.{i}");
        assert_eq!(
            list(&untrusted, &[("x-forwarded-for", &ip)]).await.status(),
            200
        );
    }
    assert_eq!(
        list(&untrusted, &[("x-forwarded-for", "203.0.113.9")])
            .await
            .status(),
        429
    );

    let behind_proxy = start(HttpConfig {
        rate_limit: limits(2, 100),
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Default::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            list(&behind_proxy, &[("x-forwarded-for", "203.0.113.1")])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        list(&behind_proxy, &[("x-forwarded-for", "203.0.113.1")])
            .await
            .status(),
        429
    );
    assert_eq!(
        list(&behind_proxy, &[("x-forwarded-for", "203.0.113.2")])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn authenticated_callers_are_limited_per_subject_not_per_ip() {
    let s = start(HttpConfig {
        auth: AuthConfig {
            api_keys: vec![
                ApiKey {
                    name: "a".into(),
                    key: KEY_A.into(),
                },
                ApiKey {
                    name: "b".into(),
                    key: KEY_B.into(),
                },
            ],
            oauth: None,
            anonymous: false,
        },
        rate_limit: limits(100, 2),
        ..Default::default()
    })
    .await;
    let a = format!("Bearer {KEY_A}");
    let b = format!("Bearer {KEY_B}");
    for _ in 0..2 {
        assert_eq!(list(&s, &[("authorization", &a)]).await.status(), 200);
    }
    assert_429(list(&s, &[("authorization", &a)]).await, "subject").await;
    // Same IP, another subject: its own bucket.
    assert_eq!(list(&s, &[("authorization", &b)]).await.status(), 200);
}

#[tokio::test]
async fn refused_credentials_draw_from_the_ip_bucket() {
    let s = start(HttpConfig {
        auth: AuthConfig {
            api_keys: vec![ApiKey {
                name: "a".into(),
                key: KEY_A.into(),
            }],
            oauth: None,
            anonymous: false,
        },
        rate_limit: limits(2, 100),
        ..Default::default()
    })
    .await;
    let bad = "Bearer not-the-key-0123456789abcdef0123456789";
    assert_eq!(list(&s, &[("authorization", bad)]).await.status(), 401);
    assert_eq!(list(&s, &[("authorization", bad)]).await.status(), 401);
    assert_429(list(&s, &[("authorization", bad)]).await, "ip").await;
    // Every refused credential is counted, the throttled one too.
    assert_eq!(
        metric(&s, "wharf_auth_failures_total{reason=\"unknown_key\"}").await,
        3.0
    );
}

#[tokio::test]
async fn a_tool_can_have_a_limit_of_its_own() {
    let s = start(HttpConfig {
        rate_limit: RateLimitConfig {
            tools: HashMap::from([("echo".to_owned(), 2)]),
            ..limits(100, 100)
        },
        ..Default::default()
    })
    .await;
    assert_eq!(echo(&s, &[]).await.status(), 200);
    assert_eq!(echo(&s, &[]).await.status(), 200);
    assert_429(echo(&s, &[]).await, "`echo` tool").await;
    // The same over JSON-RPC (2026-07-28), and other requests are unaffected.
    let r = crate::common::post_modern(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "x"}, "_meta": crate::common::modern_meta()}}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(list(&s, &[]).await.status(), 200);
}

fn redis_limits(url: &str, on_error: FailMode) -> RateLimitConfig {
    RateLimitConfig {
        backend: Backend::Redis {
            url: url.to_owned(),
            prefix: format!("test:{}:", uuid::Uuid::new_v4()),
        },
        on_backend_error: on_error,
        ..limits(4, 100)
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_share_one_limit() {
    let redis = Redis::start();
    let config = redis_limits(&redis.url, FailMode::Open);
    let one = start(HttpConfig {
        rate_limit: config.clone(),
        ..Default::default()
    })
    .await;
    let two = start(HttpConfig {
        rate_limit: config,
        ..Default::default()
    })
    .await;
    // Four requests in all, alternating replicas; the fifth is refused by either.
    for i in 0..4 {
        let s = if i % 2 == 0 { &one } else { &two };
        assert_eq!(list(s, &[]).await.status(), 200, "request {i}");
    }
    assert_429(list(&one, &[]).await, "ip").await;
    assert_429(list(&two, &[]).await, "ip").await;
}

#[tokio::test]
async fn when_redis_is_down_the_fail_mode_decides_and_it_is_counted() {
    let redis = Redis::start();
    let url = redis.url.clone();
    drop(redis);
    let open = start(HttpConfig {
        rate_limit: redis_limits(&url, FailMode::Open),
        ..Default::default()
    })
    .await;
    for _ in 0..6 {
        assert_eq!(
            list(&open, &[]).await.status(),
            200,
            "fail open lets requests through"
        );
    }
    assert_eq!(
        metric(&open, "wharf_rate_limit_backend_errors_total").await,
        6.0
    );

    let closed = start(HttpConfig {
        rate_limit: redis_limits(&url, FailMode::Closed),
        ..Default::default()
    })
    .await;
    let r = list(&closed, &[]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_redis_restart_is_survived() {
    let redis = Redis::start();
    let port = redis.port;
    let s = start(HttpConfig {
        rate_limit: redis_limits(&redis.url, FailMode::Closed),
        ..Default::default()
    })
    .await;
    assert_eq!(list(&s, &[]).await.status(), 200);
    drop(redis);
    assert_eq!(list(&s, &[]).await.status(), 503);
    let _again = Redis::start_on(port);
    // The connection manager reconnects; poll until it has.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if list(&s, &[]).await.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reconnected to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn past_the_concurrency_cap_requests_are_shed_with_503_and_it_recovers() {
    let s = start(HttpConfig {
        max_concurrent_requests: 2,
        rate_limit: limits(1000, 1000),
        ..Default::default()
    })
    .await;
    let gate = |s: &TestServer| {
        client()
            .post(s.url("/mcp"))
            .json(&json!({"action": "call_tool", "name": "gate", "arguments": {}}))
            .send()
    };
    let held: Vec<_> = (0..2).map(|_| tokio::spawn(gate(&s))).collect();
    // Wait until both calls are inside the tool.
    let _ = s.gate_entered.acquire_many(2).await.unwrap();
    let burst: Vec<u16> = futures::future::join_all((0..5).map(|_| list(&s, &[])))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(burst, [503; 5]);
    let r = list(&s, &[]).await;
    assert_eq!(r.headers()["retry-after"], "1");
    s.gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(list(&s, &[]).await.status(), 200);
    assert_eq!(metric(&s, "wharf_shed_total").await, 6.0);
}

#[tokio::test]
async fn json_nested_too_deep_is_refused_before_parsing() {
    let s = start(HttpConfig::default()).await;
    let deep = format!(
        "{{\"action\":\"call_tool\",\"name\":\"echo\",\"arguments\":{{\"text\":{}1{}}}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let r = client()
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(
        body["error"]["message"],
        "the request's JSON nests deeper than 64 levels; flatten the arguments"
    );
}

#[tokio::test]
async fn open_sse_streams_are_capped_and_a_closed_one_frees_its_place() {
    let s = start(HttpConfig {
        max_sse_streams: 1,
        ..Default::default()
    })
    .await;
    let open = || {
        client()
            .get(s.url("/sse"))
            .header("accept", "text/event-stream")
            .send()
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(metric(&s, "wharf_sse_streams").await, 1.0);
    let second = open().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_sse_streams")
    );
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = open().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream never freed its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
