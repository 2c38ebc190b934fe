//! `wharf chat` and `wharf eval` against a local fake of the model providers.
//! The fake speaks the real wire formats (Anthropic Messages, OpenAI chat
//! completions: `tool_use` / `tool_calls`, tool results) and answers 429 before
//! its first real answer; the tools are a real `wharf serve`.

use std::{
    io::Write,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Json, extract::State, http::HeaderMap, response::IntoResponse};
use serde_json::{Value, json};

use crate::process::{BIN, Wharf};

#[derive(Default)]
struct Fake {
    /// (path, headers, body) of every request.
    seen: Mutex<Vec<(String, HeaderMap, Value)>>,
    refused_once: AtomicBool,
}

/// What the scripted model does with the latest user words: "add"/"plus" →
/// the `add` tool; "echo" → nothing (a miss for eval); anything else → text.
fn wants_add(text: &str) -> bool {
    text.contains("add") || text.contains("plus")
}

fn busy(fake: &Fake) -> Option<axum::response::Response> {
    if fake.refused_once.swap(true, Ordering::SeqCst) {
        return None;
    }
    Some(
        (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            Json(json!({"error": {"type": "rate_limit_error", "message": "slow down"}})),
        )
            .into_response(),
    )
}

/// Record a request; the 429 to answer first, when it is due.
fn arrived(
    fake: &Fake,
    path: &str,
    headers: HeaderMap,
    body: &Value,
) -> Option<axum::response::Response> {
    fake.seen
        .lock()
        .unwrap()
        .push((path.into(), headers, body.clone()));
    busy(fake)
}

async fn anthropic(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(r) = arrived(&fake, "/v1/messages", headers, &body) {
        return r;
    }
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    let block = &last["content"][0];
    let content = if block["type"] == "tool_result" {
        json!([{"type": "text", "text": format!("The sum is {}.", block["content"].as_str().unwrap().lines().next().unwrap())}])
    } else if wants_add(block["text"].as_str().unwrap_or("")) {
        json!([{"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}}])
    } else {
        json!([{"type": "text", "text": "Hi! No tool needed."}])
    };
    Json(
        json!({"id": "msg_1", "type": "message", "role": "assistant", "content": content,
        "stop_reason": if content[0]["type"] == "tool_use" { "tool_use" } else { "end_turn" }}),
    )
    .into_response()
}

async fn openai(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(r) = arrived(&fake, "/chat/completions", headers, &body) {
        return r;
    }
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    let message = if last["role"] == "tool" {
        json!({"role": "assistant", "content": format!("The sum is {}.", last["content"].as_str().unwrap().lines().next().unwrap())})
    } else if wants_add(last["content"].as_str().unwrap_or("")) {
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":2,\"b\":3}"}}]})
    } else {
        json!({"role": "assistant", "content": "Hi! No tool needed."})
    };
    Json(json!({"id": "cmpl", "object": "chat.completion", "choices": [{"index": 0, "message": message,
        "finish_reason": "stop"}]}))
    .into_response()
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/v1/messages", axum::routing::post(anthropic))
        .route("/v1/chat/completions", axum::routing::post(openai))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, base)
}

/// Run `wharf ARGS` with `input` on stdin and the provider variables of `env`.
async fn wharf(args: Vec<String>, env: Vec<(&'static str, String)>, input: &str) -> (i32, String) {
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args(&args)
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .env(
                "XDG_CACHE_HOME",
                std::env::temp_dir().join("wharf-chat-test-cache"),
            )
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_runs_the_tool_loop_with_anthropic_after_a_429() {
    let data = tempfile::tempdir().unwrap();
    let server = Wharf::start(data.path(), &[]).await;
    let (fake, base) = start_fake().await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (code, out) = wharf(
        vec!["chat".into(), "--url".into(), url],
        vec![
            ("ANTHROPIC_API_KEY", "test-key".into()),
            ("ANTHROPIC_BASE_URL", base),
        ],
        "please add 2 and 3\nhello\n/metrics\n/quit\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("[tool] add {\"a\":2,\"b\":3}"), "{out}");
    assert!(out.contains("[result] 5"), "{out}");
    assert!(out.contains("assistant> The sum is 5."), "{out}");
    assert!(out.contains("assistant> Hi! No tool needed."), "{out}");
    assert!(out.contains("calls 2"), "tools/list and tools/call: {out}");

    let seen = fake.seen.lock().unwrap();
    // 429, then the tool_use turn, the tool_result turn and the plain message.
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (_, headers, first) = &seen[0];
    assert_eq!(headers["x-api-key"], "test-key");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"add") && tools.contains(&"echo"),
        "{tools:?}"
    );
    assert_eq!(
        first, &seen[1].2,
        "the refused request is sent again as it was"
    );
    let result_turn = &seen[2].2["messages"].as_array().unwrap()[2];
    assert_eq!(result_turn["content"][0]["type"], "tool_result");
    assert_eq!(result_turn["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(result_turn["content"][0]["is_error"], false);
    // The second message carries the whole conversation.
    assert_eq!(seen[3].2["messages"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_speaks_openai_compatible_servers() {
    let data = tempfile::tempdir().unwrap();
    let server = Wharf::start(data.path(), &[]).await;
    let (fake, base) = start_fake().await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (code, out) = wharf(
        vec![
            "chat".into(),
            "--url".into(),
            url,
            "--model".into(),
            "llama3".into(),
        ],
        vec![
            ("OPENAI_API_KEY", "local".into()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
        ],
        "what is two plus three\n/quit\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("assistant> The sum is 5."), "{out}");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "429, tool call, answer");
    assert_eq!(seen[1].1["authorization"], "Bearer local");
    assert_eq!(seen[1].2["model"], "llama3");
    assert_eq!(seen[1].2["tools"][0]["type"], "function");
    let messages = seen[2].2["messages"].as_array().unwrap();
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "add");
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_chat_says_what_to_set_and_call_still_works() {
    let data = tempfile::tempdir().unwrap();
    let server = Wharf::start(data.path(), &[]).await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (code, out) = wharf(
        vec!["chat".into(), "--url".into(), url],
        vec![],
        "hello\n/call add {\"a\": 1, \"b\": 2}\n/call add {\"a\": \"x\"}\n/tools\n/quit\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("set ANTHROPIC_API_KEY"), "{out}");
    assert!(out.contains("OPENAI_API_KEY"), "{out}");
    assert!(out.contains("[result] 3"), "{out}");
    assert!(
        out.contains("[error]"),
        "a bad argument is the tool's error: {out}"
    );
    assert!(out.contains("  echo  "), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_reports_precision_and_recall_of_tool_selection() {
    let data = tempfile::tempdir().unwrap();
    let server = Wharf::start(data.path(), &[]).await;
    let (_fake, base) = start_fake().await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let golden = data.path().join("golden.yaml");
    std::fs::write(
        &golden,
        "prompts:\n\
         \x20 - prompt: add 2 and 3\n    kind: direct\n    expect: add\n\
         \x20 - prompt: what is two plus three\n    kind: indirect\n    expect: [add]\n\
         \x20 - prompt: hello there\n    kind: negative\n    expect: none\n\
         \x20 - prompt: echo this back\n    kind: direct\n    expect: echo\n",
    )
    .unwrap();
    let env = vec![
        ("ANTHROPIC_API_KEY", "k".to_owned()),
        ("ANTHROPIC_BASE_URL", base.clone()),
    ];
    let args = |extra: &[&str]| {
        let mut a = vec![
            "eval".to_owned(),
            golden.display().to_string(),
            "--url".into(),
            url.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, out) = wharf(args(&["--json-output"]), env.clone(), "").await;
    assert_eq!(code, 0, "{out}");
    let json_start = out.find('{').unwrap();
    let report: Value =
        serde_json::from_str(&out[json_start..out.rfind('}').unwrap() + 1]).unwrap();
    assert_eq!(report["passed"], 3);
    assert_eq!(report["precision"], 1.0);
    let recall = report["recall"].as_f64().unwrap();
    assert!((recall - 2.0 / 3.0).abs() < 1e-9, "{report}");
    let rows = report["prompts"].as_array().unwrap();
    assert_eq!(rows[3]["ok"], false);
    assert_eq!(rows[3]["recall"], 0.0);
    assert_eq!(rows[2]["selected"], json!([]));

    let (code, out) = wharf(args(&["--min-recall", "0.9"]), env.clone(), "").await;
    assert_eq!(code, 1, "below the bar: {out}");
    assert!(
        out.contains("precision 1.00, recall 0.67, 3/4 prompts exact"),
        "{out}"
    );

    // A golden file naming a tool the server lacks is refused with the list.
    std::fs::write(&golden, "prompts:\n  - prompt: x\n    expect: nope\n").unwrap();
    let (code, out) = wharf(args(&[]), env, "").await;
    assert_ne!(code, 0);
    assert!(
        out.contains("expects `nope`, which the server does not have; it has: add, echo"),
        "{out}"
    );
}

/// "Chat with my configured servers": no server named, config/mcp.json used.
#[tokio::test(flavor = "multi_thread")]
async fn chat_and_demo_with_no_server_named_use_the_gateway_file() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("config")).unwrap();
    let servers = serde_json::json!({"mcpServers": {"tools": {
        "command": BIN, "args": ["--profile", "builtin", "stdio"], "env": {"WHARF_LOG": "warn"}
    }}});
    std::fs::write(project.path().join("config/mcp.json"), servers.to_string()).unwrap();
    let dir = project.path().display().to_string();
    let (code, out) = wharf(
        vec!["-C".into(), dir.clone(), "chat".into()],
        vec![],
        "/call tools_add {\"a\": 1, \"b\": 2}\n/tools\n/quit\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Connected to wharf-gateway"), "{out}");
    assert!(out.contains("[result] 3"), "{out}");
    assert!(out.contains("tools_echo"), "{out}");

    let (code, out) = wharf(
        vec!["-C".into(), dir, "demo".into(), "--gateway".into()],
        vec![],
        "",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("tools") && out.contains("stdio") && out.contains("healthy"),
        "{out}"
    );
    assert!(
        out.contains("tools_search_items") || out.contains("tools_echo"),
        "{out}"
    );

    // Nothing named and no file: say both ways.
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = wharf(
        vec![
            "-C".into(),
            empty.path().display().to_string(),
            "chat".into(),
        ],
        vec![],
        "",
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.contains("--url") && out.contains("config/mcp.json"),
        "{out}"
    );
}
