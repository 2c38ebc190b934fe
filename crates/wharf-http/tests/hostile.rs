//! Clients that try to hold what others need: slow bodies, trickled heads,
//! idle connections, one client's flood of requests, panicking handlers, and
//! calls still running when a drain ends. Each attack comes from 127.0.0.1 and
//! an ordinary client from 127.0.0.2 (another address on loopback), which must
//! keep being served. Limits are set low and deadlines short, so every attack
//! is bounded in count and time.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use wharf_core::{App, ToolError, ToolSpec, text_result};
use wharf_http::{ConnectionLimits, HttpConfig};

use crate::common::{TestServer, client, metrics_text, start, start_app, start_with_grace};

/// A connection from `source` (an address on loopback) to `to`.
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// An ordinary client on another address than the attacker's.
fn bystander() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn echo_from(c: &reqwest::Client, s: &TestServer) -> reqwest::StatusCode {
    c.post(s.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": "echo", "arguments": {"text": "hi"}}))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::REQUEST_TIMEOUT)
}

async fn metric(s: &TestServer, series: &str) -> f64 {
    metrics_text(s)
        .await
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Read until the server closes the connection (or `limit` passes); the bytes read.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn no_rate_limit() -> wharf_http::rate_limit::RateLimitConfig {
    wharf_http::rate_limit::RateLimitConfig {
        enabled: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_and_others_are_served() {
    let s = start(HttpConfig {
        body_timeout: Duration::from_secs(1),
        body_min_rate: 1024,
        rate_limit: no_rate_limit(),
        ..Default::default()
    })
    .await;
    let mut slow = connect_from("127.0.0.1", s.addr).await;
    let head = "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..40 {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    // The ordinary client is served while the body trickles.
    let others = async {
        for _ in 0..5 {
            assert_eq!(echo_from(&bystander(), &s).await, 200);
        }
    };
    tokio::join!(trickle, others);
    let answer = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("the slow client was not cut");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("arrived too slowly"), "{answer}");
    // Cut at the deadline (1 s + a few bytes at 1 KiB/s), not when the body ended.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        metric(&s, "wharf_timeouts_total{phase=\"body\"}").await,
        1.0
    );
}

#[tokio::test]
async fn a_head_sent_a_line_at_a_time_is_cut_at_the_header_deadline() {
    let s = start(HttpConfig {
        connections: ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut slow = connect_from("127.0.0.1", s.addr).await;
    let started = Instant::now();
    slow.write_all(b"POST /mcp HTTP/1.1\r\n").await.unwrap();
    for i in 0..20 {
        if slow
            .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(3))
            .await
            .is_some(),
        "the connection was still open"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        metric(&s, "wharf_timeouts_total{phase=\"header\"}").await,
        1.0
    );
}

#[tokio::test]
async fn idle_connections_are_capped_per_address_and_closed_at_the_deadline() {
    let s = start(HttpConfig {
        connections: ConnectionLimits {
            max_connections_per_client: 5,
            header_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from("127.0.0.1", s.addr).await);
    }
    // Three over the cap are closed at once; the others at the header deadline.
    let started = Instant::now();
    let mut closed_at = Vec::new();
    for mut c in idle {
        read_until_closed(&mut c, Duration::from_secs(5))
            .await
            .expect("an idle connection was never closed");
        closed_at.push(started.elapsed());
    }
    // Meanwhile, and after, another address is served.
    assert_eq!(
        bystander()
            .get(s.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        closed_at.iter().all(|t| *t < Duration::from_secs(4)),
        "{closed_at:?}"
    );
    assert_eq!(
        metric(&s, "wharf_connections_refused_total{reason=\"per_client\"}").await,
        3.0
    );
    assert_eq!(
        metric(&s, "wharf_timeouts_total{phase=\"header\"}").await,
        5.0
    );
}

#[tokio::test]
async fn past_max_connections_new_ones_are_refused_and_the_admin_ready_says_saturated() {
    let config = HttpConfig {
        connections: ConnectionLimits {
            max_connections: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let app = crate::common::app(
        Arc::new(tokio::sync::Semaphore::new(0)),
        Arc::new(tokio::sync::Semaphore::new(0)),
    );
    let server = wharf_http::build(Arc::new(app), &config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(wharf_http::serve(
        listener,
        server.serving(),
        stop.clone(),
        Duration::ZERO,
    ));
    tokio::spawn(wharf_http::serve(
        admin,
        server.admin_serving(),
        stop.clone(),
        Duration::ZERO,
    ));
    let ready = || async {
        bystander()
            .get(format!("http://{admin_addr}/ready"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(ready().await.status(), 200);
    let mut held = Vec::new();
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        held.push(connect_from(source, addr).await);
    }
    let mut refused = connect_from("127.0.0.6", addr).await;
    assert!(
        read_until_closed(&mut refused, Duration::from_secs(2))
            .await
            .is_some(),
        "a connection past the cap was kept"
    );
    let r = ready().await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("3 of 3 connections"),
        "{body}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ready().await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "still saturated after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
}

#[tokio::test]
async fn one_client_cannot_hold_every_request_place() {
    let s = start(HttpConfig {
        max_requests_per_client: 3,
        rate_limit: no_rate_limit(),
        ..Default::default()
    })
    .await;
    let attacker = client();
    let mut held = Vec::new();
    for _ in 0..3 {
        let c = attacker.clone();
        let url = s.url("/mcp");
        held.push(tokio::spawn(async move {
            c.post(url)
                .json(&json!({"action": "call_tool", "name": "gate"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let _entered = s.gate_entered.acquire_many(3).await.unwrap();
    let fourth = attacker
        .post(s.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": "echo", "arguments": {"text": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(fourth.status(), 429);
    assert_eq!(fourth.headers()["retry-after"], "1");
    let body: Value = fourth.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_requests_per_client"),
        "{body}"
    );
    assert_eq!(echo_from(&bystander(), &s).await, 200);
    s.gate.add_permits(3);
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(echo_from(&attacker, &s).await, 200);
    assert_eq!(metric(&s, "wharf_client_inflight_refused_total").await, 1.0);
}

#[tokio::test]
async fn saturated_request_places_make_ready_fail() {
    let s = start(HttpConfig {
        max_concurrent_requests: 2,
        rate_limit: no_rate_limit(),
        ..Default::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let url = s.url("/mcp");
        held.push(tokio::spawn(async move {
            client()
                .post(url)
                .json(&json!({"action": "call_tool", "name": "gate"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let _entered = s.gate_entered.acquire_many(2).await.unwrap();
    let r = client().get(s.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().starts_with("saturated"),
        "{body}"
    );
    s.gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(
        client().get(s.url("/ready")).send().await.unwrap().status(),
        200
    );
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

fn panicking_app() -> App {
    App::builder("panics", "1")
        .tool(
            ToolSpec::typed("boom", |_, _: Nothing| async move {
                if std::hint::black_box(true) {
                    panic!("a handler bug");
                }
                Ok::<_, ToolError>(text_result("unreachable"))
            })
            .description("panics"),
        )
        .tool(
            ToolSpec::typed("boom_blocking", |_, _: Nothing| async move {
                let r = tokio::task::spawn_blocking(|| {
                    if std::hint::black_box(true) {
                        panic!("a bug in blocking code");
                    }
                    1
                })
                .await
                .map_err(ToolError::internal)?;
                Ok::<_, ToolError>(text_result(r.to_string()))
            })
            .description("panics on the blocking pool"),
        )
        .tool(
            ToolSpec::typed("fine", |_, _: Nothing| async move {
                Ok::<_, ToolError>(text_result("fine"))
            })
            .description("works"),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_panicking_handler_is_an_internal_error_on_every_path_and_the_server_carries_on() {
    let s = start_app(panicking_app(), HttpConfig::default()).await;
    let through_rmcp = start_app(
        panicking_app(),
        HttpConfig {
            fast_path: false,
            ..Default::default()
        },
    )
    .await;
    for tool in ["boom", "boom_blocking"] {
        // The action API.
        let r = client()
            .post(s.url("/mcp"))
            .json(&json!({"action": "call_tool", "name": tool}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["isError"], true, "{body}");
        let text = body["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("internal error (call id "), "{text}");
        assert!(!text.contains("bug"), "the panic message leaked: {text}");
        assert!(body["_meta"]["wharf/callId"].is_string(), "{body}");
        // 2026-07-28 over the fast path and through rmcp.
        for server in [&s, &through_rmcp] {
            let call = json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": tool, "arguments": {}, "_meta": crate::common::modern_meta()}
            });
            let r = crate::common::post_modern(server, call, &[]).await;
            let body = crate::common::rpc_body(r).await;
            assert_eq!(body["result"]["isError"], true, "{body}");
        }
    }
    for server in [&s, &through_rmcp] {
        let r = client()
            .post(server.url("/mcp"))
            .json(&json!({"action": "call_tool", "name": "fine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn a_call_still_running_when_the_grace_ends_is_answered_503() {
    let s = start_with_grace(
        HttpConfig {
            rate_limit: no_rate_limit(),
            ..Default::default()
        },
        Duration::from_millis(500),
    )
    .await;
    let url = s.url("/mcp");
    let call = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({"action": "call_tool", "name": "gate"}))
            .send()
            .await
            .unwrap()
    });
    let _entered = s.gate_entered.acquire().await.unwrap();
    let started = Instant::now();
    s.shutdown.cancel();
    let r = call.await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    s.served.await.unwrap().unwrap();
}
