//! A test server: an app with a few tools, served on 127.0.0.1:0.

use std::{net::SocketAddr, sync::Arc};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wharf_core::{App, ToolError, ToolSpec, text_result};
use wharf_http::{Drain, HttpConfig};

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct EchoArgs {
    #[schemars(length(min = 1, max = 20))]
    pub text: String,
}

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub drain: Arc<Drain>,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Calls to the `gate` tool wait for a permit from here.
    pub gate: Arc<Semaphore>,
    /// One permit is added each time a `gate` call starts.
    pub gate_entered: Arc<Semaphore>,
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub(crate) fn app(gate: Arc<Semaphore>, gate_entered: Arc<Semaphore>) -> App {
    App::builder("test", "1.0.0")
        .tool(
            ToolSpec::typed("echo", |_, a: EchoArgs| async move {
                Ok::<_, ToolError>(text_result(a.text))
            })
            .description("Echo")
            .read_only(),
        )
        .tool(
            ToolSpec::new("gate")
                .description("Waits until the test opens the gate")
                .handler(move |_, _| {
                    let (gate, entered) = (gate.clone(), gate_entered.clone());
                    async move {
                        entered.add_permits(1);
                        let _permit = gate.acquire().await.map_err(ToolError::internal)?;
                        Ok::<_, ToolError>(text_result("through"))
                    }
                }),
        )
        .build()
        .expect("valid test app")
}

pub(crate) async fn start(config: HttpConfig) -> TestServer {
    start_with_grace(config, std::time::Duration::from_secs(10)).await
}

pub(crate) async fn start_with_grace(config: HttpConfig, grace: std::time::Duration) -> TestServer {
    let gate = Arc::new(Semaphore::new(0));
    let gate_entered = Arc::new(Semaphore::new(0));
    let app = app(gate.clone(), gate_entered.clone());
    let mut server = serve_app(app, config, grace).await;
    (server.gate, server.gate_entered) = (gate, gate_entered);
    server
}

/// Serve `app` with `config` (for tests that need tools of their own).
pub(crate) async fn start_app(app: App, config: HttpConfig) -> TestServer {
    serve_app(app, config, std::time::Duration::from_secs(5)).await
}

async fn serve_app(app: App, config: HttpConfig, grace: std::time::Duration) -> TestServer {
    let server = wharf_http::build(Arc::new(app), &config).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let drain = server.drain.clone();
    let served = tokio::spawn(wharf_http::serve(
        listener,
        server.serving(),
        shutdown.clone(),
        grace,
    ));
    TestServer {
        addr,
        shutdown,
        drain,
        served,
        gate: Arc::new(Semaphore::new(0)),
        gate_entered: Arc::new(Semaphore::new(0)),
    }
}

/// The `/metrics` page as text.
pub(crate) async fn metrics_text(s: &TestServer) -> String {
    client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// `_meta` for a 2026-07-28 request.
pub(crate) fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// POST a JSON-RPC message with the headers a 2026-07-28 client sends; `extra`
/// replaces any of them.
pub(crate) async fn post_modern(
    s: &TestServer,
    body: Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    let mut set = |k: &str, v: &str| {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    };
    set("accept", "application/json, text/event-stream");
    set("mcp-protocol-version", "2026-07-28");
    set("mcp-method", body["method"].as_str().unwrap_or_default());
    if let Some(name) = body.pointer("/params/name").and_then(Value::as_str) {
        set("mcp-name", name);
    }
    for (k, v) in extra {
        set(k, v);
    }
    client()
        .post(s.url("/mcp"))
        .headers(headers)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON-RPC message in a response that is either JSON or an SSE stream.
pub(crate) async fn rpc_body(response: reqwest::Response) -> Value {
    let is_sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !is_sse {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in stream: {text}"))
}

/// Initialize a legacy session; returns its id.
pub(crate) async fn initialize(s: &TestServer) -> reqwest::Response {
    client()
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        }))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn legacy_call(s: &TestServer, session: &str, body: Value) -> reqwest::Response {
    client()
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A real redis-server on a free loopback port, stopped when dropped.
pub(crate) struct Redis {
    child: std::process::Child,
    pub url: String,
    pub port: u16,
}

impl Redis {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    pub(crate) fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the rate-limit tests need redis-server on PATH (Debian package redis-server; .ci/run installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
            port,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
