//! What an operator sees: tool-call series by outcome and error class, the call
//! id a user can quote, `/metrics` protection and the admin router, and the
//! drain delay during which `/ready` fails while connections are still accepted.

use std::time::Duration;

use serde_json::{Value, json};
use tower::ServiceExt;
use wharf_core::{App, ToolError, ToolSpec, text_result};
use wharf_http::HttpConfig;

use crate::common::{client, metrics_text, modern_meta, post_modern, rpc_body, start, start_app};

fn failing_app() -> App {
    App::builder("failing", "1.0.0")
        .tool(
            ToolSpec::typed("echo", |_, a: crate::common::EchoArgs| async move {
                Ok::<_, ToolError>(text_result(a.text))
            })
            .description("Echo"),
        )
        .tool(
            ToolSpec::new("slow")
                .description("Sleeps past its timeout")
                .timeout(Duration::from_millis(20))
                .handler(|_, _| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<_, ToolError>(text_result("late"))
                }),
        )
        .tool(
            ToolSpec::new("broken")
                .description("Fails in its handler")
                .handler(|_, _| async {
                    Err::<rmcp::model::CallToolResult, ToolError>(ToolError::Failed("no".into()))
                }),
        )
        .tool(
            ToolSpec::new("remote")
                .description("Its upstream is down")
                .handler(|_, _| async {
                    Err::<rmcp::model::CallToolResult, ToolError>(ToolError::Upstream(
                        "upstream down".into(),
                    ))
                }),
        )
        .build()
        .unwrap()
}

fn call(id: u32, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments, "_meta": modern_meta()}})
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn tool_calls_are_counted_by_outcome_and_error_class() {
    let s = start_app(failing_app(), HttpConfig::default()).await;
    for (i, (tool, args)) in [
        ("echo", json!({"text": "hi"})),
        ("echo", json!({"text": ""})),
        ("slow", json!({})),
        ("broken", json!({})),
        ("remote", json!({})),
        ("no_such_tool", json!({})),
    ]
    .into_iter()
    .enumerate()
    {
        post_modern(&s, call(i as u32, tool, args), &[]).await;
    }
    let text = metrics_text(&s).await;
    let calls = "wharf_tool_calls_total";
    let errors = "wharf_tool_errors_total";
    assert_eq!(
        sample(&text, calls, &[("tool", "echo"), ("outcome", "ok")]),
        Some(1.0),
        "{text}"
    );
    for (tool, class) in [
        ("echo", "validation"),
        ("slow", "timeout"),
        ("broken", "handler"),
        ("remote", "upstream"),
        ("-", "unknown_tool"),
    ] {
        assert_eq!(
            sample(&text, errors, &[("tool", tool), ("class", class)]),
            Some(1.0),
            "{tool}/{class} in\n{text}"
        );
    }
    // The client's unknown name never becomes a label value.
    assert!(!text.contains("no_such_tool"), "{text}");
    assert_eq!(
        sample(
            &text,
            "wharf_tool_call_duration_seconds_count",
            &[("tool", "slow")]
        ),
        Some(1.0)
    );
    // The HTTP series are there too, by method.
    assert!(
        sample(
            &text,
            "wharf_requests_total",
            &[("method", "tools/call"), ("tool", "echo")]
        )
        .is_some_and(|n| n >= 2.0),
        "{text}"
    );
}

#[tokio::test]
async fn the_call_id_is_in_the_result_meta_and_the_response_header() {
    let s = start(HttpConfig::default()).await;
    let r = post_modern(&s, call(1, "echo", json!({"text": "hi"})), &[]).await;
    let header = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = rpc_body(r).await;
    assert_eq!(
        body["result"]["_meta"]["wharf/callId"],
        header.as_str(),
        "{body}"
    );
    // A caller's own request id becomes the call id (a proxy's id traces through).
    let r = post_modern(
        &s,
        call(2, "echo", json!({"text": ""})),
        &[("x-request-id", "support-ticket-42")],
    )
    .await;
    assert_eq!(r.headers()["x-request-id"], "support-ticket-42");
    let body = rpc_body(r).await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(
        body["result"]["_meta"]["wharf/callId"], "support-ticket-42",
        "{body}"
    );
}

#[tokio::test]
async fn a_metrics_key_protects_the_page() {
    let s = start(HttpConfig {
        metrics_key: Some("scrape-secret-0123456789".into()),
        ..HttpConfig::default()
    })
    .await;
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = client()
        .get(s.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(s.url("/metrics"))
        .bearer_auth("scrape-secret-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("wharf_build_info"));
}

#[tokio::test]
async fn with_an_admin_listener_metrics_leave_the_main_one() {
    let config = HttpConfig {
        metrics_on_main: false,
        ..HttpConfig::default()
    };
    let server = wharf_http::build(std::sync::Arc::new(failing_app()), &config).unwrap();
    let get = |path: &str| {
        http::Request::get(path)
            .header("host", "localhost")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let main = server
        .router
        .clone()
        .oneshot(get("/metrics"))
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    for path in ["/metrics", "/health", "/ready"] {
        let admin = server.admin.clone().oneshot(get(path)).await.unwrap();
        assert_eq!(admin.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn during_the_drain_delay_ready_fails_but_connections_are_still_served() {
    let s = start(HttpConfig {
        drain_delay: Duration::from_millis(800),
        ..HttpConfig::default()
    })
    .await;
    assert_eq!(
        client().get(s.url("/ready")).send().await.unwrap().status(),
        200
    );
    s.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fresh connection (not a pooled one) is still accepted and served.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let ready = fresh().get(s.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let r = post_modern(&s, call(1, "echo", json!({"text": "still here"})), &[]).await;
    assert_eq!(
        rpc_body(r).await["result"]["content"][0]["text"],
        "still here"
    );
    // After the delay the listener closes.
    tokio::time::timeout(Duration::from_secs(10), s.served)
        .await
        .expect("serve returns after the delay")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
}
