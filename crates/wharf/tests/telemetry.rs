//! Traces and log files from a real `wharf serve`: spans exported over OTLP to
//! a receiver that decodes them as a collector does, joined to the caller's
//! trace; JSON log lines naming each call; the log file.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span,
};
use prost::Message;
use serde_json::{Value, json};

use crate::process::Wharf;

/// An OTLP/HTTP receiver on loopback: its base URL and what it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                sink.lock().unwrap().push(request);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn modern_call(id: u32, tool: &str, arguments: Value, meta_extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    meta.as_object_mut()
        .unwrap()
        .extend(meta_extra.as_object().unwrap().clone());
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments, "_meta": meta}})
}

async fn post(w: &Wharf, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(w.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", body["params"]["name"].as_str().unwrap());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.json(body).send().await.unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Multi-threaded: the receiver must answer while the test blocks on the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_joined_to_the_callers_trace() {
    let (endpoint, received) = receiver().await;
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(
        data.path(),
        &[],
        &[
            ("WHARF_PROFILE", "catalog"),
            ("WHARF_OTLP_ENDPOINT", &endpoint),
            ("WHARF_SERVICE_NAME", "wharf-under-test"),
        ],
    )
    .await;
    // The trace context in the HTTP headers...
    let (trace_a, parent_a) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let r = post(
        &w,
        &modern_call(1, "search_items", json!({"query": "tea"}), json!({})),
        &[("traceparent", &format!("00-{trace_a}-{parent_a}-01"))],
    )
    .await;
    assert_eq!(r.status(), 200);
    // ...and in the request's _meta, which wins.
    let (trace_b, parent_b) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let r = post(
        &w,
        &modern_call(
            2,
            "get_item",
            json!({"id": "no-such-item"}),
            json!({"traceparent": format!("00-{trace_b}-{parent_b}-01")}),
        ),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    // SIGTERM: the exporter flushes the batch on the way out.
    assert!(w.terminate().success());

    let requests = received.lock().unwrap();
    let service_names: Vec<String> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .filter(|a| a.key == "service.name")
        .map(|a| format!("{:?}", a.value))
        .collect();
    assert!(
        service_names.iter().all(|n| n.contains("wharf-under-test")) && !service_names.is_empty(),
        "{service_names:?}"
    );
    let spans: Vec<&Span> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let find = |name: &str, trace: &str| -> &Span {
        spans
            .iter()
            .find(|s| s.name == name && hex(&s.trace_id) == trace)
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|s| (&s.name, hex(&s.trace_id))).collect();
                panic!("no span `{name}` in trace {trace}; spans: {names:?}")
            })
    };
    // Header carrier: HTTP span under the caller's, tool span under it, database under that.
    let http = find("POST /mcp", trace_a);
    assert_eq!(hex(&http.parent_span_id), parent_a);
    let tool = find("tools/call search_items", trace_a);
    assert_eq!(tool.parent_span_id, http.span_id);
    let db = find("sqlite search", trace_a);
    assert_eq!(db.parent_span_id, tool.span_id);
    // _meta carrier: the MCP request span joins the _meta trace.
    let mcp = find("tools/call", trace_b);
    assert_eq!(hex(&mcp.parent_span_id), parent_b);
    let tool = find("tools/call get_item", trace_b);
    assert_eq!(tool.parent_span_id, mcp.span_id);
    find("sqlite get", trace_b);
}

#[tokio::test]
async fn tool_call_lines_name_the_call_and_the_log_file_gets_them_too() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("logs/mcp.log");
    let w = Wharf::start_logged_with_env(
        data.path(),
        &["--log-format", "json"],
        &[("WHARF_LOG_FILE", log.to_str().unwrap())],
    )
    .await;
    let r = post(
        &w,
        &modern_call(7, "echo", json!({"text": "hello"}), json!({})),
        &[],
    )
    .await;
    let header = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["_meta"]["wharf/callId"], header.as_str());
    // A failing call is logged at warn with its error.
    post(
        &w,
        &modern_call(8, "echo", json!({"text": 5}), json!({})),
        &[],
    )
    .await;
    let stderr = w.terminate_with_stderr();

    let parse = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let lines = parse(&stderr);
    let ok = lines
        .iter()
        .find(|l| l["message"] == "tool call" && l["outcome"] == "ok")
        .unwrap_or_else(|| panic!("no ok tool call line in {stderr}"));
    assert_eq!(ok["call_id"], header.as_str());
    assert_eq!(ok["rpc_id"], "7");
    assert_eq!(ok["tool"], "echo");
    assert_eq!(ok["client"], "127.0.0.1");
    assert_eq!(ok["subject"], "-");
    assert_eq!(ok["arg_bytes"], json!({"text": "hello"}).to_string().len());
    assert_eq!(ok["level"], "INFO");
    assert!(ok["elapsed_ms"].as_f64().is_some());
    let failed = lines
        .iter()
        .find(|l| l["message"] == "tool call" && l["outcome"] == "validation")
        .unwrap_or_else(|| panic!("no failed tool call line in {stderr}"));
    assert_eq!(failed["level"], "WARN");
    assert!(
        failed["error"].as_str().unwrap().contains("text"),
        "{failed}"
    );

    // The configured name is the file being written (`tail -f logs/mcp.log`):
    // a link to the day's file, named with the date; the file holds JSON lines
    // by default (log.file_format), whatever the stderr format.
    let mut files: Vec<_> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let dated = files.iter().find(|f| *f != "mcp.log").unwrap();
    assert!(
        dated.starts_with("mcp.2") && dated.ends_with(".log"),
        "{files:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(log.parent().unwrap().join(dated)).unwrap()
    );
    let in_file = parse(&text);
    assert!(
        in_file
            .iter()
            .any(|l| l["message"] == "tool call" && l["call_id"] == header.as_str()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharf_health_probes_a_running_server() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start(data.path(), &[]).await;
    let probe = |args: &[&str], env: &[(&str, String)]| {
        std::process::Command::new(crate::process::BIN)
            .arg("health")
            .args(args)
            .env_remove("WHARF_LISTEN")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(data.path())
            .output()
            .unwrap()
    };
    // The default URL: /ready on loopback at server.listen's port.
    let listen = [
        ("WHARF_LISTEN", format!("0.0.0.0:{}", w.port)),
        ("WHARF_ALLOW_UNAUTHENTICATED", "true".into()),
        ("WHARF_ALLOWED_HOSTS", "localhost".into()),
    ];
    let out = probe(&[], &listen);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/ready: 200"));
    let out = probe(&["--live", "--url", &w.url("/health")], &[]);
    assert!(out.status.success(), "{out:?}");
    w.terminate();
    let out = probe(&[], &listen);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/ready"),
        "{out:?}"
    );
}

/// The value of `name{labels}` on a Prometheus page.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn the_catalog_reports_tool_and_database_series() {
    let data = tempfile::tempdir().unwrap();
    let w = Wharf::start_with_env(data.path(), &[], &[("WHARF_PROFILE", "catalog")]).await;
    let r = post(
        &w,
        &modern_call(1, "search_items", json!({"query": "tea"}), json!({})),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let bad = "SELECT * FROM no_such_table";
    let r = post(
        &w,
        &modern_call(2, "execute_sql_query", json!({"sql": bad}), json!({})),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = reqwest::get(w.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tool = ("tool", "search_items");
    assert_eq!(
        sample(&text, "wharf_tool_calls_total", &[tool, ("outcome", "ok")]),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "wharf_db_query_duration_seconds_count",
            &[("op", "search")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "wharf_db_pool_connections",
            &[("pool", "main"), ("state", "max")]
        ),
        Some(8.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "wharf_db_pool_connections",
            &[("pool", "readonly"), ("state", "max")]
        ),
        Some(4.0),
        "{text}"
    );
    // A bad statement is the caller's mistake: a tool error, not a database error.
    let sql = ("tool", "execute_sql_query");
    assert!(
        sample(&text, "wharf_tool_calls_total", &[sql]).is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, "wharf_db_errors_total", &[("op", "query")]),
        None,
        "{text}"
    );
    // The process itself, under the names dashboards expect.
    let plain = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}: {text}"))
    };
    assert!(plain("process_resident_memory_bytes") > 1_000_000.0);
    assert!(plain("process_open_fds") >= 3.0);
    assert!(plain("process_max_fds") >= plain("process_open_fds"));
    assert!(plain("process_cpu_seconds_total") >= 0.0);
    assert!(plain("process_start_time_seconds") > 1_600_000_000.0);
    w.terminate();
}

#[tokio::test]
async fn a_log_file_holds_json_lines_while_stderr_reads_as_text() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("logs/mcp.log");
    let w = Wharf::start_logged_with_env(
        data.path(),
        &[],
        &[
            ("WHARF_LOG_FILE", log.to_str().unwrap()),
            // Python's spelling of a level, as guides write it.
            ("LOG_LEVEL", "INFO"),
        ],
    )
    .await;
    post(
        &w,
        &modern_call(1, "echo", json!({"text": "hi"}), json!({})),
        &[],
    )
    .await;
    let stderr = w.terminate_with_stderr();
    let call = stderr
        .lines()
        .find(|l| l.contains("tool call"))
        .unwrap_or_else(|| panic!("no tool call line in {stderr}"));
    assert!(serde_json::from_str::<Value>(call).is_err(), "{call}");
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("tool call"))
        .unwrap_or_else(|| panic!("no tool call line in {text}"));
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["tool"], "echo");
}
