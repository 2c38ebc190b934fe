//! JSON-RPC batches on `/mcp`. Protocol version 2025-03-26 says a server must
//! accept an array of messages in one POST; later versions removed batches, so
//! a batch is taken only from a client that names 2025-03-26 (or, as that
//! version's clients do, no version header at all).
//!
//! rmcp takes one message per request, so each message of the batch goes
//! through the same path as a message of its own (intake rules, per-tool rate
//! limits, the fast path, rmcp), in order, and the answers to its requests are
//! returned together as one JSON array. A batch of notifications and responses
//! only is answered 202, as one such message would be.

use axum::{
    body::Bytes,
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use serde_json::Value;

use wharf_core::jsonrpc::Message;

use crate::{intake::Refusal, mcp::McpState, rpc_info::RpcInfo};

/// The one protocol version that has batches.
const BATCH_VERSION: &str = "2025-03-26";

/// Messages one batch may hold: far more than any client sends at once, few
/// enough that one POST cannot queue unbounded work.
const MAX_BATCH: usize = 100;

/// Answer a batch (see the module's notes).
pub(crate) async fn answer(
    state: &McpState,
    parts: Parts,
    body: &Bytes,
    messages: Vec<Message<'_>>,
) -> Response {
    let info = RpcInfo {
        method: Some("batch".into()),
        tool: None,
    };
    let refuse = |refusal: Refusal| {
        let mut r = refusal.into_response();
        r.extensions_mut().insert(info.clone());
        r
    };
    if let Some(version) = parts
        .headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != BATCH_VERSION)
    {
        return refuse(Refusal::invalid(format!(
            "JSON-RPC batches exist only in protocol version {BATCH_VERSION}; this request is {}: send one message per POST",
            wharf_core::untrusted::shown(version)
        )));
    }
    if messages.len() > MAX_BATCH {
        return refuse(Refusal::invalid(format!(
            "a batch of {} messages; send at most {MAX_BATCH} per POST",
            messages.len()
        )));
    }
    if messages.iter().any(|m| m.method() == Some("initialize")) {
        return refuse(Refusal::invalid(
            "`initialize` cannot be part of a batch; send it alone",
        ));
    }
    let mut answers = Vec::new();
    for message in &messages {
        let mut one = parts.clone();
        // Each answer is read back as JSON, whatever rmcp would have streamed.
        one.headers
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let tool = state.intake.resolve(message);
        let raw = body.slice_ref(message.raw.get().as_bytes());
        let response = crate::mcp::rpc(state, one, raw, message, tool).await;
        if !message.is_request() {
            continue;
        }
        let answer = match response.into_body().collect().await {
            Ok(collected) => serde_json::from_slice::<Value>(&collected.to_bytes()).ok(),
            Err(_) => None,
        };
        answers.push(answer.unwrap_or_else(|| {
            let id = message
                .id
                .clone()
                .map_or(Value::Null, rmcp::model::RequestId::into_json_value);
            serde_json::json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": -32603, "message": "internal error: no answer"}
            })
        }));
    }
    let mut response = if answers.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        (StatusCode::OK, axum::Json(Value::Array(answers))).into_response()
    };
    response.extensions_mut().insert(info);
    response
}
