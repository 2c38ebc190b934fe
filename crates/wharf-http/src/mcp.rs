//! `/mcp`: Streamable HTTP for both protocol eras, and the action API beside it.
//!
//! rmcp's `StreamableHttpService` does the protocol work: the stateless
//! 2026-07-28 requests (per-request `_meta`, header validation, `server/discover`)
//! and the legacy 2025-x sessions on the same endpoint. This handler reads the
//! body first, under the size cap, to (1) send bodies without `"jsonrpc"` to the
//! action API, (2) refuse a new session with 503 when the session cap is reached,
//! and (3) record the method and tool for the access log; (4) an ordinary
//! stateless tool call is answered by the fast path (`fast`) instead of rmcp.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use serde_json::json;
use tower::Service;
use wharf_core::{App, WharfServer};

use crate::{
    action::{self, Framing},
    rpc_info::{Peek, RpcInfo},
    sessions::CappedSessionManager,
};

/// How long a client refused for the session cap should wait, in seconds.
const SESSION_FULL_RETRY_AFTER_SECS: &str = "5";

pub(crate) type RmcpService = StreamableHttpService<WharfServer, CappedSessionManager>;

/// What the `/mcp` handlers share.
#[derive(Clone)]
pub(crate) struct McpState {
    pub app: Arc<App>,
    pub rmcp: RmcpService,
    pub sessions: Arc<CappedSessionManager>,
    pub stateless: bool,
    /// Answer ordinary stateless tool calls without rmcp's service (`fast`).
    pub fast_path: bool,
    pub max_body_bytes: usize,
    pub limiter: Arc<crate::rate_limit::Limiter>,
    pub metrics: crate::metrics::Metrics,
}

/// A tool with a limit of its own draws one call from the caller's bucket for
/// that tool; `Some` is the 429 when it is empty.
async fn tool_limit(
    state: &McpState,
    parts: &http::request::Parts,
    tool: Option<&str>,
) -> Option<Response> {
    let tool = tool.filter(|t| state.limiter.limits_tool(t))?;
    let key = parts.extensions.get::<crate::auth::ClientKey>()?;
    match state.limiter.check(key.class, &key.key, Some(tool)).await {
        crate::rate_limit::Decision::Deny { retry_after } => {
            state
                .metrics
                .rate_limited
                .with_label_values(&["tool"])
                .inc();
            Some(crate::auth::too_many(
                retry_after,
                &format!("`{tool}` tool"),
            ))
        }
        _ => None,
    }
}

/// `POST /mcp`.
pub(crate) async fn post(State(state): State<Arc<McpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, state.max_body_bytes).await else {
        return too_large(state.max_body_bytes);
    };
    if let Some(r) = crate::json_depth::check(&bytes) {
        return r;
    }
    let peek = Peek::parse(&bytes);
    let mut parts = parts;
    join_meta_trace(&mut parts, peek.as_ref(), &bytes);
    if let Some(peek) = &peek
        && peek.is_action()
    {
        if let Some(r) = tool_limit(&state, &parts, peek.name.as_deref()).await {
            return r;
        }
        let mut response = action::handle(&state.app, &bytes, parts, Framing::Json).await;
        response.extensions_mut().insert(RpcInfo {
            method: Some("action".into()),
            tool: None,
        });
        return response;
    }
    let info = RpcInfo {
        method: peek
            .as_ref()
            .and_then(|p| p.method.clone())
            .filter(|m| m.len() <= 64),
        tool: peek
            .as_ref()
            .and_then(Peek::tool_name)
            .filter(|t| state.app.offer().tool(t).is_some())
            .map(str::to_owned),
    };
    if info.method.as_deref() == Some("tools/call")
        && let Some(mut r) = tool_limit(&state, &parts, info.tool.as_deref()).await
    {
        r.extensions_mut().insert(info);
        return r;
    }
    let is_initialize = info.method.as_deref() == Some("initialize");
    if is_initialize && !state.stateless && !state.sessions.has_room().await {
        let mut response = session_cap_reached(state.sessions.max_sessions());
        response.extensions_mut().insert(info);
        return response;
    }
    if state.fast_path
        && info.method.as_deref() == Some("tools/call")
        && let Some(call) = crate::fast::accept(&parts.headers, &bytes, &state.app)
    {
        let mut response = crate::fast::answer(state.app.clone(), call, parts).await;
        response.extensions_mut().insert(info);
        return response;
    }
    let mut response = forward(
        state.rmcp.clone(),
        Request::from_parts(parts, Body::from(bytes)),
    )
    .await;
    response.extensions_mut().insert(info);
    response
}

/// `GET` and `DELETE /mcp`: straight to rmcp (session streams and session end;
/// 405 for 2026-07-28 clients).
pub(crate) async fn other(State(state): State<Arc<McpState>>, request: Request) -> Response {
    forward(state.rmcp.clone(), request).await
}

/// `POST /mcp/sse`: the action API answered as a server-sent event.
pub(crate) async fn action_sse(State(state): State<Arc<McpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, state.max_body_bytes).await else {
        return too_large(state.max_body_bytes);
    };
    if let Some(r) = crate::json_depth::check(&bytes) {
        return r;
    }
    action::handle(&state.app, &bytes, parts, Framing::Sse).await
}

/// When tracing is on and the body's `_meta` carries a trace context, the call's
/// spans join that trace (see `trace`).
fn join_meta_trace(parts: &mut http::request::Parts, peek: Option<&Peek>, body: &[u8]) {
    if parts.extensions.get::<wharf_core::ParentSpan>().is_none() {
        return;
    }
    let Some(meta) = crate::rpc_info::TracePeek::parse(body) else {
        return;
    };
    let method = peek
        .and_then(|p| p.method.as_deref())
        .filter(|m| m.len() <= 64)
        .unwrap_or("-");
    let span = crate::trace::mcp_span(method, &meta);
    parts.extensions.insert(wharf_core::ParentSpan(span));
}

async fn forward(mut service: RmcpService, request: Request) -> Response {
    let result: Result<_, Infallible> = service.call(request).await;
    let Ok(response) = result;
    let mut response = response.map(Body::new);
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_sse {
        // nginx and other proxies buffer responses unless told not to, which holds
        // back every event of a stream until it ends.
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}

fn too_large(limit: usize) -> Response {
    let body = json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32600, "message": format!("request body is larger than the limit of {limit} bytes (server.max_body_bytes)")}
    });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

fn session_cap_reached(max: usize) -> Response {
    let body = json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32000, "message": format!("the server holds its maximum of {max} sessions; retry later")}
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(SESSION_FULL_RETRY_AFTER_SECS),
    );
    response
}
