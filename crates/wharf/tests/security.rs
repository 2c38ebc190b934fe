//! Secrets stay secret: after every authentication path has been exercised, a
//! known API key, a refused token and a Redis password appear nowhere in the
//! logs (at debug level) or in `/metrics`. Keys can come from `*_FILE`.

use serde_json::json;

use crate::process::Wharf;

const KEY: &str = "SeCrEt-KeY-0f9e8d7c6b5a49382716afbecd";
const BAD_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTZUNyRXQtVG9LZW4ifQ.QkFEX1NJR05BVFVSRV9TRUNSRVQ";
const REDIS_PASSWORD: &str = "r3dis-PaSsWoRd-xyz";

async fn list(w: &Wharf, auth: Option<&str>) -> reqwest::StatusCode {
    let mut r = reqwest::Client::new()
        .post(w.url("/mcp"))
        .json(&json!({"action": "call_tool", "name": "echo", "arguments": {"text": "hi"}}));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.send().await.unwrap().status()
}

#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_metrics() {
    let data = tempfile::tempdir().unwrap();
    let key_file = data.path().join("api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    // An unreachable Redis whose URL holds a password: its errors are logged.
    let redis = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1/0");
    let w = Wharf::start_logged_with_env(
        data.path(),
        &["--log-format", "json"],
        &[
            ("MCP_API_KEY_FILE", key_file.to_str().unwrap()),
            ("WHARF_REDIS_URL", &redis),
        ],
    )
    .await;

    assert_eq!(list(&w, None).await, 401);
    assert_eq!(list(&w, Some(&format!("Bearer {BAD_TOKEN}"))).await, 401);
    assert_eq!(list(&w, Some(&format!("Basic {KEY}"))).await, 400);
    assert_eq!(list(&w, Some(&format!("Bearer {KEY}x"))).await, 401);
    assert_eq!(
        list(&w, Some(&format!("Bearer {KEY}"))).await,
        200,
        "the key read from MCP_API_KEY_FILE works"
    );

    let metrics = reqwest::get(w.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wharf_auth_failures_total{reason=\"missing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wharf_rate_limit_backend_errors_total"),
        "{metrics}"
    );
    let logs = w.terminate_with_stderr();
    assert!(
        logs.contains("the rate-limit backend (Redis) cannot be reached"),
        "the Redis path ran: {logs}"
    );
    assert!(logs.contains("credentials refused"), "{logs}");
    // The tool call's log line names the caller by subject.
    let call = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "tool call")
        .unwrap_or_else(|| panic!("no tool call line in {logs}"));
    assert_eq!(call["subject"], "key:default", "{call}");
    assert_eq!(call["tool"], "echo");
    for (what, secret) in [
        ("the API key", KEY),
        ("a refused token", BAD_TOKEN),
        ("the refused token's payload", "SeCrEt-ToKeN"),
        ("the Redis password", REDIS_PASSWORD),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs:\n{logs}");
        assert!(!metrics.contains(secret), "{what} is in /metrics");
    }
}

#[test]
fn a_secret_file_that_cannot_be_read_is_a_configuration_error() {
    let out = std::process::Command::new(crate::process::BIN)
        .arg("check")
        .env("WHARF_API_KEYS_FILE", "/nonexistent/keys")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WHARF_API_KEYS_FILE: cannot read /nonexistent/keys"),
        "{err}"
    );
}

#[tokio::test]
async fn two_wharf_processes_sharing_redis_enforce_one_limit() {
    let port = crate::process::free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("this test needs redis-server (Debian package redis-server)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/0");
    let env = [
        ("WHARF_REDIS_URL", url.as_str()),
        ("WHARF_RATE_LIMIT_ANONYMOUS", "5"),
    ];
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = Wharf::start_with_env(d1.path(), &[], &env).await;
    let two = Wharf::start_with_env(d2.path(), &[], &env).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            list(if i % 2 == 0 { &one } else { &two }, None)
                .await
                .as_u16(),
        );
    }
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429],
        "one budget of 5 across both processes"
    );
}
