//! The simple JSON action API, for curl users and the classic deployment guides.
//!
//! `POST /mcp` with `{"action":"list_tools"}` or
//! `{"action":"call_tool","name":"...","arguments":{...}}` answers plain JSON;
//! `POST /mcp/sse` answers the same as one `text/event-stream` event. It is told
//! from JSON-RPC by the absence of `"jsonrpc"` (in `intake`). No MCP library
//! offers this shape, so it is written here, on the same `App::call` path as
//! MCP calls, with the tool the intake resolved.
//!
//! Statuses follow the common remote-server guide: 400 for a request the
//! caller must fix, 404 for an unknown tool, 500 for an internal failure, 502
//! for a failed upstream, 504 for a timeout; every answer to `call_tool` (a
//! result or an error) names its call id in `_meta["wharf/callId"]`.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response, sse},
};
use rmcp::model::{CallToolResponse, Extensions, JsonObject};
use serde::Deserialize;
use serde_json::{Value, json};
use wharf_core::{App, CALL_ID_META, CallContext, ResolvedTool, ToolError, untrusted::shown};

/// The actions, as listed in error messages.
const ACTIONS: &[&str] = &["list_tools", "call_tool"];

/// An action request, as the intake parsed it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionRequest {
    action: String,
    name: Option<String>,
    arguments: Option<Value>,
}

impl ActionRequest {
    /// The tool a `call_tool` names.
    pub(crate) fn tool_name(&self) -> Option<&str> {
        (self.action == "call_tool")
            .then_some(self.name.as_deref())
            .flatten()
    }
}

/// Whether the answer is plain JSON or a one-event SSE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Json,
    Sse,
}

/// Answer one action request (`Err`: it did not parse, and why); `tool` is the
/// tool the intake resolved; `parts` reach the tool handler as extensions.
pub(crate) async fn handle(
    app: &Arc<App>,
    request: Result<ActionRequest, serde_json::Error>,
    tool: Option<ResolvedTool>,
    parts: http::request::Parts,
    framing: Framing,
) -> Response {
    let (status, value) = match request {
        Ok(request) => run(app, request, tool, parts).await,
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "{}; expected {{\"action\": one of {ACTIONS:?}, ...}}",
                shown(&e.to_string())
            ),
            None,
        ),
    };
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

async fn run(
    app: &Arc<App>,
    request: ActionRequest,
    tool: Option<ResolvedTool>,
    parts: http::request::Parts,
) -> (StatusCode, Value) {
    match request.action.as_str() {
        "list_tools" => {
            let mut extensions = Extensions::new();
            extensions.insert(parts);
            let tools = app.listed_tools(&CallContext::detached(extensions));
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
            let ctx = CallContext::detached(extensions.clone());
            let call_id = ctx.call_id().to_owned();
            let outcome = match tool {
                Some(tool) => app.call(tool, arguments, ctx).await,
                None => app.call_tool(&name, arguments, ctx).await,
            };
            // An unknown tool's answer names the tools this caller may call.
            let caller = CallContext::detached(extensions);
            let (status, mut value) = answer(app, outcome, &call_id, &caller);
            if let Some(object) = value.as_object_mut() {
                let meta = object
                    .entry("_meta")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert(CALL_ID_META.into(), call_id.into());
                }
            }
            (status, value)
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "unknown_action",
            &format!(
                "unknown action `{}`; valid actions: {}",
                shown(other),
                ACTIONS.join(", ")
            ),
            None,
        ),
    }
}

/// The status and body of a `call_tool` outcome.
fn answer(
    app: &App,
    outcome: Result<CallToolResponse, ToolError>,
    call_id: &str,
    caller: &CallContext,
) -> (StatusCode, Value) {
    match outcome {
        Ok(CallToolResponse::Complete(result)) => (StatusCode::OK, to_value(&result)),
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
            let known: Vec<String> = app
                .listed_tools(caller)
                .into_iter()
                .map(|t| t.name.into_owned())
                .collect();
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
        Err(e) => {
            // What the caller cannot fix gets a status that says so; the body
            // is the MCP tool error (`isError`) either way.
            let status = match &e {
                ToolError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ToolError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                ToolError::Upstream(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::OK,
            };
            match e.into_mcp(call_id) {
                Ok(result) => (status, to_value(&result)),
                Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request", &e.message, None),
            }
        }
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
