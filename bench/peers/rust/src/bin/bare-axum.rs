//! The practical limit: a JSON-RPC `tools/call` for `echo` and `add` answered by a
//! plain axum handler, with no MCP library (no header checks, no sessions, no
//! validation beyond what serde does).

use axum::{Json, Router, routing::post};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Call {
    id: Value,
    method: String,
    #[serde(default)]
    params: Params,
}

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Value,
}

async fn mcp(Json(call): Json<Call>) -> Json<Value> {
    let text = match (call.method.as_str(), call.params.name.as_str()) {
        ("tools/call", "echo") => call.params.arguments["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ("tools/call", "add") => {
            let n = |k: &str| call.params.arguments[k].as_f64().unwrap_or(0.0);
            (n("a") + n("b")).to_string()
        }
        _ => {
            return Json(json!({"jsonrpc": "2.0", "id": call.id,
                "error": {"code": -32601, "message": "unknown method or tool"}}));
        }
    };
    Json(json!({"jsonrpc": "2.0", "id": call.id,
        "result": {"content": [{"type": "text", "text": text}], "isError": false}}))
}

#[tokio::main]
async fn main() {
    wharf_bench_peers::serve(Router::new().route("/mcp", post(mcp))).await;
}
