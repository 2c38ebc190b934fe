//! The stateless fast path: a 2026-07-28 `tools/call` answered straight from
//! the request body, without rmcp's per-request service.
//!
//! rmcp serves a stateless request by parsing it into its `ClientRequest` enum,
//! turning it back into a JSON value to check the routing headers, building a
//! one-message transport, a peer and a service loop on a task of its own, and
//! taking the answer out of a channel. A tool call that asks for no progress and
//! no log messages needs none of that: it is parsed once into rmcp's
//! `CallToolRequestParams` (the intake checked the envelope and resolved the
//! tool), its headers are compared with it, and the tool runs through the same
//! `answer_call` that `WharfServer` uses.
//!
//! This path never refuses a request; it only declines one. Anything it is not
//! sure is well formed and ordinary (a header missing, repeated or encoded, an
//! `Mcp-Param-*` header, a tool that mirrors arguments in headers, a progress
//! token, a log level, a legacy session, an unknown tool) goes to rmcp, which
//! stays the one source of protocol errors. `server.fast_path = false` turns it
//! off; `tests/fast_path.rs` checks that both paths give the same answers.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::Response,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ErrorCode, Extensions,
    ProtocolVersion, RequestId, RequestMetaObject, ServerJsonRpcMessage, ServerResult,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use wharf_core::{App, CallContext, ResolvedTool};

use wharf_core::jsonrpc::Message;

/// A request this path will answer.
pub(crate) struct DirectCall {
    id: RequestId,
    meta: RequestMetaObject,
    params: CallToolRequestParams,
    tool: ResolvedTool,
    /// The client declared the tasks extension (may receive a task handle).
    tasks: bool,
}

/// `Some` when `message` is a stateless 2026-07-28 `tools/call` of `tool` (the
/// tool the intake resolved), its headers agree with it exactly, and it asks
/// for nothing that needs a peer (progress, log messages).
pub(crate) fn accept(
    headers: &HeaderMap,
    message: &Message<'_>,
    tool: &ResolvedTool,
) -> Option<DirectCall> {
    if headers.contains_key("mcp-session-id")
        || sole(headers, "mcp-protocol-version")? != ProtocolVersion::V_2026_07_28.as_str()
        || sole(headers, "mcp-method")? != "tools/call"
        || !is_json(headers)
        || !accepts_json_and_sse(headers)
        || headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
        || tool.mirrors_arguments_in_headers()
        || message.method() != Some("tools/call")
    {
        return None;
    }
    let id = message.id.clone()?;
    let mut params: CallToolRequestParams = serde_json::from_str(message.params?.get()).ok()?;
    let name = sole(headers, "mcp-name")?;
    // A name in the header's Base64 form (`=?base64?...?=`) is rmcp's to decode.
    if name != params.name || name.starts_with("=?") || params.name != tool.name() {
        return None;
    }
    let meta = params.meta.take()?;
    let caps = meta.client_capabilities()?;
    if meta.protocol_version() != Some(ProtocolVersion::V_2026_07_28)
        || meta.get_progress_token().is_some()
        || meta.log_level().is_some()
    {
        return None;
    }
    Some(DirectCall {
        id,
        meta,
        params,
        tool: tool.clone(),
        tasks: caps.supports_tasks(),
    })
}

/// Run the call and answer it as rmcp would: one JSON-RPC message, as JSON.
pub(crate) async fn answer(app: Arc<App>, call: DirectCall, parts: Parts) -> Response {
    let DirectCall {
        id,
        meta,
        params,
        tool,
        tasks,
    } = call;
    // As in rmcp, the tool runs on a task of its own: a client that hangs up
    // cancels the call's token but does not drop the tool half-way.
    let cancel = CancellationToken::new();
    let hang_up = cancel.clone().drop_guard();
    let mut extensions = Extensions::new();
    extensions.insert(parts);
    let ctx = CallContext::direct(id.clone(), meta, extensions, cancel);
    let task = tokio::spawn(
        async move { wharf_core::answer_call(&app, Some(tool), params, ctx).await }
            .instrument(tracing::Span::current()),
    );
    let outcome = task.await;
    hang_up.disarm();
    let message = match outcome {
        // A task handle only for a client that declared tasks, as rmcp's handler
        // checks: others could not read it.
        Ok(Ok(CallToolResponse::Task(_))) if !tasks => ServerJsonRpcMessage::error(
            rmcp::ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            ),
            Some(id),
        ),
        Ok(Ok(response)) => ServerJsonRpcMessage::response(ServerResult::from(response), id),
        Ok(Err(error)) => ServerJsonRpcMessage::error(error, Some(id)),
        Err(join) => {
            tracing::error!(error = %join, "tool call task failed");
            ServerJsonRpcMessage::error(
                rmcp::ErrorData::internal_error("internal error", None),
                Some(id),
            )
        }
    };
    let status = match &message {
        ServerJsonRpcMessage::Error(e) => status_of(e.error.code),
        _ => StatusCode::OK,
    };
    let Ok(body) = serde_json::to_vec(&message) else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::empty())
            .expect("a valid response");
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

/// The HTTP status rmcp gives a 2026-07-28 request's JSON-RPC error (its
/// `_meta` is well formed here, or this path would have declined it).
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The value of a header sent exactly once.
fn sole<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    sole(headers, header::CONTENT_TYPE.as_str()).is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(e, _)| e);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// One plain `Accept` header naming both types (no parameters or quality
/// weights, which are rmcp's to read).
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let Some(accept) = sole(headers, header::ACCEPT.as_str()) else {
        return false;
    };
    if accept.contains([';', '"']) {
        return false;
    }
    let mut json = false;
    let mut sse = false;
    for essence in accept.split(',').map(str::trim) {
        json |= essence.eq_ignore_ascii_case("application/json");
        sse |= essence.eq_ignore_ascii_case("text/event-stream");
    }
    json && sse
}
