//! The real binary under requests an attacker would send: a forged search
//! cursor, huge tool names and values with a log consumer that does not read,
//! a SQL statement still running when the drain grace ends, and a data
//! directory deleted under a running server. The process must stay up (or exit
//! when told to, on time), stay within its memory, and keep saying the truth
//! on `/ready`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::Wharf;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn call(w: &Wharf, name: &str, arguments: Value) -> reqwest::Response {
    client()
        .post(w.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": name, "arguments": arguments}))
        .send()
        .await
        .unwrap()
}

/// The server's resident memory in MB.
fn rss_mb(w: &Wharf) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", w.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

const CATALOG: &[(&str, &str)] = &[("WHARF_PROFILE", "catalog")];

#[tokio::test]
async fn a_forged_cursor_is_a_tool_error_and_the_process_stays_up() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(data.path(), &[], CATALOG).await;
    let first: Value = call(&w, "search_items", json!({"query": "grid", "limit": 2}))
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["structuredContent"]["next_cursor"].as_str().unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoded = String::from_utf8(engine.decode(cursor).unwrap()).unwrap();
    let print = decoded.split(':').nth(2).unwrap();
    let forged = engine.encode(format!("v1:9223372036854775807:{print}"));
    let r = call(
        &w,
        "search_items",
        json!({"query": "grid", "limit": 50, "cursor": forged}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["isError"], true, "{body}");
    assert!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("deepest page"),
        "{body}"
    );
    let health = client().get(w.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn huge_client_values_cannot_grow_the_log_or_forge_a_line() {
    let data = tempfile::tempdir().unwrap();
    // Logs go to a pipe this test does not read until the end: a consumer that
    // stalls as soon as the pipe's buffer is full.
    let w = Wharf::start_logged_with_env(data.path(), &[], CATALOG).await;
    let before = rss_mb(&w);
    let huge_name = format!("forged\nERROR fake line {}", "n".repeat(3_000_000));
    let huge_query = "q".repeat(3_000_000);
    for i in 0..60 {
        let r = if i % 2 == 0 {
            call(&w, &huge_name, json!({})).await
        } else {
            call(&w, "search_items", json!({"query": huge_query})).await
        };
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let grew = rss_mb(&w).saturating_sub(before);
    assert!(grew < 100, "the server grew by {grew} MB");
    let stderr = w.terminate_with_stderr();
    assert!(
        !stderr.lines().any(|l| l.starts_with("ERROR fake line")),
        "a client value forged a log line"
    );
    let longest = stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8 * 1024, "a log line of {longest} bytes");
}

#[tokio::test]
async fn a_statement_still_running_at_the_end_of_the_grace_is_answered_and_the_process_exits() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("WHARF_PROFILE", "catalog"),
        ("WHARF_SQL_TIMEOUT", "120s"),
        ("WHARF_SHUTDOWN_GRACE", "1s"),
    ];
    let w = Wharf::start_with_env(data.path(), &[], &env).await;
    let url = w.url("/mcp");
    let running = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({"action": "call_tool", "name": "execute_sql_query", "arguments": {
                "sql": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
            }}))
            .send()
            .await
    });
    // Let the statement start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    let status = tokio::task::spawn_blocking(move || w.terminate())
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(6),
        "exited {took:?} after SIGTERM"
    );
    let answer = running.await.unwrap().unwrap();
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn ready_fails_when_the_data_directory_is_deleted() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let w = Wharf::start_with_env(&data, &[], CATALOG).await;
    assert_eq!(
        client().get(w.url("/ready")).send().await.unwrap().status(),
        200
    );
    // The search index may be writing into the directory: try until it is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir_all(&data).is_err() || data.join("wharf.db").exists() {
        assert!(
            Instant::now() < deadline,
            "cannot delete {}",
            data.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let r = client().get(w.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("wharf.db"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
