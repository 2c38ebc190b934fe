//! The simple JSON action API, for curl users and the classic deployment guides.
//!
//! `POST /mcp` with `{"action":"list_tools"}` or
//! `{"action":"call_tool","name":"...","arguments":{...}}` answers plain JSON;
//! `POST /mcp/sse` answers the same as one `text/event-stream` event. It is told
//! from JSON-RPC by the absence of `"jsonrpc"`. No MCP library offers this shape,
//! so it is written here, on the same `App::call_tool` path as MCP calls.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response, sse},
};
use rmcp::model::{CallToolResponse, Extensions, JsonObject};
use serde::Deserialize;
use serde_json::{Value, json};
use wharf_core::{App, CallContext, ToolError};

/// The actions, as listed in error messages.
const ACTIONS: &[&str] = &["list_tools", "call_tool"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: String,
    name: Option<String>,
    arguments: Option<Value>,
}

/// Whether the answer is plain JSON or a one-event SSE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    Sse,
}

/// Answer one action request; `parts` reach the tool handler as extensions.
pub async fn handle(
    app: &Arc<App>,
    body: &[u8],
    parts: http::request::Parts,
    framing: Framing,
) -> Response {
    let (status, value) = run(app, body, parts).await;
    match framing {
        Framing::Json => (status, Json(value)).into_response(),
        Framing::Sse => {
            let event = sse::Event::default()
                .event(if status.is_success() {
                    "result"
                } else {
                    "error"
                })
                .data(value.to_string());
            let stream = futures::stream::once(async move { Ok::<_, Infallible>(event) });
            let mut response = (status, sse::Sse::new(stream)).into_response();
            response
                .headers_mut()
                .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
            response
        }
    }
}

async fn run(app: &Arc<App>, body: &[u8], parts: http::request::Parts) -> (StatusCode, Value) {
    let request: ActionRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("{e}; expected {{\"action\": one of {ACTIONS:?}, ...}}"),
                None,
            );
        }
    };
    match request.action.as_str() {
        "list_tools" => {
            let tools: Vec<_> = app
                .offer()
                .tools()
                .map(|t| t.definition().clone())
                .collect();
            (StatusCode::OK, json!({ "tools": tools }))
        }
        "call_tool" => {
            let Some(name) = request.name else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "`name` is required with action `call_tool`: the tool to call",
                    None,
                );
            };
            let arguments = match request.arguments {
                None | Some(Value::Null) => JsonObject::new(),
                Some(Value::Object(map)) => map,
                Some(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_arguments",
                        "`arguments` must be a JSON object",
                        None,
                    );
                }
            };
            let mut extensions = Extensions::new();
            extensions.insert(parts);
            let ctx = CallContext::detached(extensions);
            let call_id = ctx.call_id().to_owned();
            match app.call_tool(&name, arguments, ctx).await {
                Ok(CallToolResponse::Complete(mut result)) => {
                    result
                        .meta
                        .get_or_insert_with(Default::default)
                        .0
                        .insert(wharf_core::CALL_ID_META.into(), call_id.into());
                    (StatusCode::OK, to_value(&result))
                }
                Ok(CallToolResponse::InputRequired(_)) => error(
                    StatusCode::CONFLICT,
                    "input_required",
                    "this tool needs input from the client (elicitation or sampling), which the action API cannot provide; call it over MCP",
                    None,
                ),
                Ok(_) => error(
                    StatusCode::CONFLICT,
                    "unsupported_result",
                    "this tool answered with a task, which the action API cannot follow; call it over MCP",
                    None,
                ),
                Err(ToolError::UnknownTool(name)) => {
                    let offer = app.offer();
                    let known: Vec<&str> = offer.tools().map(|t| t.name()).collect();
                    error(
                        StatusCode::NOT_FOUND,
                        "unknown_tool",
                        &format!("unknown tool `{name}`; known tools: {known:?}"),
                        None,
                    )
                }
                Err(ToolError::InvalidArguments(fields)) => {
                    let detail: Vec<Value> = fields
                        .iter()
                        .map(|f| json!({"field": f.field(), "message": f.message}))
                        .collect();
                    let message = fields
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    error(
                        StatusCode::BAD_REQUEST,
                        "invalid_arguments",
                        &message,
                        Some(json!(detail)),
                    )
                }
                Err(e) => match e.into_mcp(&call_id) {
                    Ok(result) => (StatusCode::OK, to_value(&result)),
                    Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request", &e.message, None),
                },
            }
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "unknown_action",
            &format!(
                "unknown action `{other}`; valid actions: {}",
                ACTIONS.join(", ")
            ),
            None,
        ),
    }
}

fn to_value(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    fields: Option<Value>,
) -> (StatusCode, Value) {
    let mut body = json!({ "error": { "code": code, "message": message } });
    if let Some(fields) = fields {
        body["error"]["fields"] = fields;
    }
    (status, body)
}
