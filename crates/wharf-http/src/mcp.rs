//! `/mcp`: Streamable HTTP for both protocol eras, and the action API beside it.
//!
//! rmcp's `StreamableHttpService` does the protocol work: the stateless
//! 2026-07-28 requests (per-request `_meta`, header validation, `server/discover`)
//! and the legacy 2025-x sessions on the same endpoint. The intake reads and
//! resolves each POST first; this file then sends it where it belongs (the
//! action API, a batch, the fast path, rmcp) and makes rmcp's answers what a
//! client can read:
//!
//! - a client that does not name `text/event-stream` in `Accept` (only
//!   `application/json`, or `*/*`) gets JSON: the event stream rmcp answers a
//!   session request with is read into its one response; 406 only where an
//!   event stream is the only possible answer (`subscriptions/listen`, the GET
//!   stream);
//! - rmcp's plain-text refusals (unknown session, bad params) become JSON-RPC
//!   errors as `application/json`, with the status unchanged, except a body
//!   rmcp could not deserialize, which is the caller's 400 (`-32602`), not 415;
//! - `DELETE` answers 204, which SDKs expect of a session end (rmcp says 202).

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use rmcp::{model::RequestId, transport::streamable_http_server::StreamableHttpService};
use serde_json::Value;
use tower::Service;
use wharf_core::{ResolvedTool, WharfServer};

use wharf_core::jsonrpc::Message;

use crate::{
    action::{self, Framing},
    intake::{Intake, Posted, Refusal},
    rpc_info::RpcInfo,
    sessions::CappedSessionManager,
};

/// How long a client refused for the session cap should wait, in seconds.
const SESSION_FULL_RETRY_AFTER_SECS: &str = "5";

/// The most of rmcp's event stream read to find one request's answer for a
/// client that takes JSON only: a result is capped (`server.max_result_bytes`),
/// and progress and log messages before it are small.
const MAX_COLLECTED_STREAM: usize = 16 * 1024 * 1024;

/// The most of a plain-text refusal read to word it as JSON.
const MAX_REFUSAL_TEXT: usize = 4096;

pub(crate) type RmcpService = StreamableHttpService<WharfServer, CappedSessionManager>;

/// What the `/mcp` handlers share.
pub(crate) struct McpState {
    pub intake: Arc<Intake>,
    pub rmcp: RmcpService,
    pub sessions: Arc<CappedSessionManager>,
    pub stateless: bool,
    /// Answer ordinary stateless tool calls without rmcp's service (`fast`).
    pub fast_path: bool,
}

/// `POST /mcp`.
pub(crate) async fn post(State(state): State<Arc<McpState>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes = match state.intake.read(&parts.headers, body).await {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    let posted = match crate::intake::parse(&bytes) {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    match posted {
        Posted::Action(request) => answer_action(&state, request, parts, Framing::Json).await,
        Posted::Batch(messages) => crate::batch::answer(&state, parts, &bytes, messages).await,
        Posted::Message(message) => {
            join_meta_trace(&mut parts, &message);
            let tool = state.intake.resolve(&message);
            let info = crate::intake::info(&message, tool.as_ref());
            let body = bytes.slice_ref(message.raw.get().as_bytes());
            let response = rpc(&state, parts, body, &message, tool).await;
            with_info(response, info)
        }
    }
}

fn with_info(mut response: Response, info: RpcInfo) -> Response {
    response.extensions_mut().insert(info);
    response
}

/// One JSON-RPC message on `/mcp` (also each message of a batch).
pub(crate) async fn rpc(
    state: &McpState,
    parts: Parts,
    body: Bytes,
    message: &Message<'_>,
    tool: Option<ResolvedTool>,
) -> Response {
    if let Some(t) = &tool
        && let Err(r) = state.intake.admit_tool(&parts, t.name()).await
    {
        return r;
    }
    let subject = subject_of(&parts);
    if let Some(refused) = session_owner(state, &parts.headers, &subject, message.id.clone()).await
    {
        return refused;
    }
    if let Some(refused) = session_cap(state, &parts.headers, message).await {
        return refused;
    }
    let accepts = Accepts::of(&parts.headers);
    if !accepts.json && !accepts.sse {
        return Refusal::invalid(
            "the client accepts neither application/json nor text/event-stream; send `Accept: application/json, text/event-stream`",
        )
        .with_id(message.id.clone())
        .with_status(StatusCode::NOT_ACCEPTABLE)
        .into_response();
    }
    if !accepts.sse && message.method() == Some("subscriptions/listen") {
        return Refusal::invalid(
            "subscriptions/listen answers with an event stream: accept text/event-stream",
        )
        .with_id(message.id.clone())
        .with_status(StatusCode::NOT_ACCEPTABLE)
        .into_response();
    }
    if state.fast_path
        && let Some(tool) = &tool
        && let Some(call) = crate::fast::accept(&parts.headers, message, tool)
    {
        return crate::fast::answer(state.intake.app.clone(), call, parts).await;
    }
    // rmcp wants both named; the answer is made to fit what the client takes below.
    let mut parts = parts;
    parts.headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    let request_is_json = is_json_content(&parts.headers);
    let response = forward(
        state.rmcp.clone(),
        Request::from_parts(parts, Body::from(body)),
    )
    .await;
    if message.method() == Some("initialize")
        && let Some(id) = session_header(response.headers())
    {
        state.sessions.set_owner(id, &subject).await;
    }
    let response = json_refusal(response, message, request_is_json).await;
    if !accepts.sse_named && message.is_request() && is_event_stream(response.headers()) {
        return collect(response, message.id.clone()).await;
    }
    if !accepts.json && is_json_content(response.headers()) {
        return as_event(response).await;
    }
    response
}

/// The subject of the caller's credentials; empty for an anonymous caller.
fn subject_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<wharf_core::Principal>()
        .map(|p| p.subject.clone())
        .unwrap_or_default()
}

fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
}

/// 404 when the request names a session its caller did not create: to them
/// it does not exist (whether it exists for someone else is not said).
async fn session_owner(
    state: &McpState,
    headers: &HeaderMap,
    subject: &str,
    id: Option<RequestId>,
) -> Option<Response> {
    let session = session_header(headers).filter(|_| !state.stateless)?;
    if state.sessions.may_use(session, subject).await {
        return None;
    }
    Some(
        Refusal::new(
            StatusCode::NOT_FOUND,
            -32001,
            "Session not found: initialize a new session",
        )
        .with_id(id)
        .into_response(),
    )
}

/// 503 when this message would make a session past `sessions.max`: a new
/// session (`initialize`), or a stored one brought into this process.
async fn session_cap(
    state: &McpState,
    headers: &HeaderMap,
    message: &Message<'_>,
) -> Option<Response> {
    if state.stateless {
        return None;
    }
    let new = message.method() == Some("initialize");
    let restored = match headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        Some(id) if !new => !state.sessions.holds(id).await,
        _ => false,
    };
    if (new || restored) && !state.sessions.has_room().await {
        return Some(session_cap_reached(state.sessions.max_sessions()));
    }
    None
}

/// `GET` and `DELETE /mcp`: straight to rmcp (session streams and session end;
/// 405 for 2026-07-28 clients), refusals worded as JSON.
pub(crate) async fn other(State(state): State<Arc<McpState>>, request: Request) -> Response {
    let is_delete = request.method() == Method::DELETE;
    let (parts, body) = request.into_parts();
    if let Some(refused) = session_owner(&state, &parts.headers, &subject_of(&parts), None).await {
        return refused;
    }
    let request = Request::from_parts(parts, body);
    let response = forward(state.rmcp.clone(), request).await;
    if is_delete && response.status() == StatusCode::ACCEPTED {
        let mut ended = StatusCode::NO_CONTENT.into_response();
        *ended.headers_mut() = response.headers().clone();
        return ended;
    }
    plain_to_json(response, None, false).await
}

/// `POST /mcp/sse`: the action API answered as a server-sent event.
pub(crate) async fn action_sse(State(state): State<Arc<McpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match state.intake.read(&parts.headers, body).await {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    let request = match crate::intake::parse(&bytes) {
        Ok(Posted::Action(request)) => request,
        Ok(_) => {
            return Refusal::invalid(
                "POST /mcp/sse takes the action API ({\"action\": ...}); send JSON-RPC to /mcp",
            )
            .into_response();
        }
        Err(refusal) => return refusal.into_response(),
    };
    answer_action(&state, request, parts, Framing::Sse).await
}

/// An action request, from either route: its tool resolved once, the per-tool
/// limit drawn, the answer framed as the route says.
async fn answer_action(
    state: &McpState,
    request: Result<action::ActionRequest, serde_json::Error>,
    parts: Parts,
    framing: Framing,
) -> Response {
    let tool = request
        .as_ref()
        .ok()
        .and_then(|r| r.tool_name())
        .and_then(|name| state.intake.app.resolve(name));
    let info = RpcInfo {
        method: Some("action".into()),
        tool: tool.as_ref().map(|t| t.name().to_owned()),
    };
    if let Some(t) = &tool
        && let Err(r) = state.intake.admit_tool(&parts, t.name()).await
    {
        return with_info(r, info);
    }
    let response = action::handle(&state.intake.app, request, tool, parts, framing).await;
    with_info(response, info)
}

/// When tracing is on and the message's `_meta` carries a trace context, the
/// call's spans join that trace (see `trace`).
fn join_meta_trace(parts: &mut Parts, message: &Message<'_>) {
    if parts.extensions.get::<wharf_core::ParentSpan>().is_none() {
        return;
    }
    let Some(meta) = crate::rpc_info::TracePeek::parse(message.raw.get().as_bytes()) else {
        return;
    };
    let method = message
        .method()
        .filter(|m| m.len() <= 64 && !m.contains(|c: char| c.is_control()))
        .unwrap_or("-");
    let span = crate::trace::mcp_span(method, &meta);
    parts.extensions.insert(wharf_core::ParentSpan(span));
}

pub(crate) async fn forward(mut service: RmcpService, request: Request) -> Response {
    let result: Result<_, Infallible> = service.call(request).await;
    let Ok(response) = result;
    let mut response = response.map(Body::new);
    if is_event_stream(response.headers()) {
        // nginx and other proxies buffer responses unless told not to, which holds
        // back every event of a stream until it ends.
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}

/// What media types a client takes, from its `Accept` header(s): none at all
/// means anything; `*/*`, `application/*` and `text/*` count; `q=0` refuses.
/// An event stream goes only to a client that names it (`text/event-stream`
/// or `text/*`): one that takes "anything" is more likely a plain HTTP client
/// than an SSE reader, and gets the answer as JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepts {
    pub json: bool,
    pub sse: bool,
    pub sse_named: bool,
}

impl Accepts {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::ACCEPT).iter().peekable();
        if values.peek().is_none() {
            return Self {
                json: true,
                sse: true,
                sse_named: false,
            };
        }
        let mut accepts = Self {
            json: false,
            sse: false,
            sse_named: false,
        };
        for range in values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let mut pieces = range.split(';');
            let essence = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            match essence.as_str() {
                "*/*" => {
                    accepts.json = true;
                    accepts.sse = true;
                }
                "application/*" | "application/json" => accepts.json = true,
                "text/*" | "text/event-stream" => {
                    accepts.sse = true;
                    accepts.sse_named = true;
                }
                _ => {}
            }
        }
        accepts
    }
}

fn content_type_starts(headers: &HeaderMap, prefix: &[u8]) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(prefix))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    content_type_starts(headers, b"text/event-stream")
}

fn is_json_content(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        })
    })
}

/// rmcp's refusal of a message the intake let through, worded as JSON.
async fn json_refusal(
    response: Response,
    message: &Message<'_>,
    request_is_json: bool,
) -> Response {
    plain_to_json(response, message.id.clone(), request_is_json).await
}

/// A refusal rmcp wrote as plain text, as a JSON-RPC error with the same
/// status (415 for a JSON body that did not deserialize becomes 400 `-32602`:
/// the params are wrong, not the media type).
pub(crate) async fn plain_to_json(
    response: Response,
    id: Option<RequestId>,
    request_is_json: bool,
) -> Response {
    let status = response.status();
    if status.as_u16() < 400 || is_json_content(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_REFUSAL_TEXT)
        .collect()
        .await
    {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let text = text.trim();
    let (status, code) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE if request_is_json => (StatusCode::BAD_REQUEST, -32602),
        StatusCode::NOT_FOUND => (status, -32001),
        s if s.is_server_error() => (s, -32603),
        s => (s, -32600),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        wharf_core::untrusted::abridged(text).into_owned()
    };
    let mut refused = Refusal::new(status, code, message)
        .with_id(id)
        .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            refused.headers_mut().insert(name.clone(), value.clone());
        }
    }
    refused
}

/// A response from rmcp's event stream, for a client that takes JSON only:
/// the stream is read up to the answer to request `id`, which is sent alone.
async fn collect(response: Response, id: Option<RequestId>) -> Response {
    let (mut parts, body) = response.into_parts();
    let wanted = id.clone().map(RequestId::into_json_value);
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let answer = 'found: loop {
        use futures::StreamExt;
        let Some(Ok(chunk)) = stream.next().await else {
            break 'found None;
        };
        read += chunk.len();
        if read > MAX_COLLECTED_STREAM {
            break 'found None;
        }
        buffer.extend_from_slice(&chunk);
        while let Some(end) = find_event_end(&buffer) {
            let event: Vec<u8> = buffer.drain(..end).collect();
            if let Some(message) = event_data(&event)
                && let Ok(value) = serde_json::from_str::<Value>(&message)
                && value.get("method").is_none()
                && (wanted.is_none() || value.get("id") == wanted.as_ref())
            {
                break 'found Some(value);
            }
        }
    };
    let Some(answer) = answer else {
        return Refusal::new(
            StatusCode::BAD_GATEWAY,
            -32603,
            "the answer to this request did not arrive on its stream",
        )
        .with_id(id)
        .into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove("x-accel-buffering");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(answer.to_string()))
}

/// Where the first complete event in `buffer` ends (after its blank line).
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `data:` lines of one event, joined.
fn event_data(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    (!data.is_empty()).then(|| data.join("\n"))
}

/// A JSON answer as one event, for a client that takes event streams only.
async fn as_event(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let data = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    Response::from_parts(
        parts,
        Body::from(format!("event: message\ndata: {data}\n\n")),
    )
}

fn session_cap_reached(max: usize) -> Response {
    let mut response = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        -32000,
        format!("the server holds its maximum of {max} sessions; retry later"),
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(SESSION_FULL_RETRY_AFTER_SECS),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> (bool, bool) {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, value.parse().unwrap());
        let a = Accepts::of(&h);
        (a.json, a.sse_named)
    }

    #[test]
    fn accept_headers_are_read_as_http_says() {
        assert_eq!(accepts("application/json"), (true, false));
        assert_eq!(accepts("*/*"), (true, false));
        assert_eq!(accepts("application/json, text/event-stream"), (true, true));
        assert_eq!(
            accepts("text/event-stream;q=0.9, application/*"),
            (true, true)
        );
        assert_eq!(
            accepts("application/json, text/event-stream;q=0"),
            (true, false)
        );
        assert_eq!(accepts("text/html"), (false, false));
        let a = Accepts::of(&HeaderMap::new());
        assert!(a.json && a.sse && !a.sse_named);
    }

    #[test]
    fn events_are_split_and_their_data_joined() {
        let buf = b"id: 1\ndata: {\"a\":1}\n\nretry: 5\n\n";
        let end = find_event_end(buf).unwrap();
        assert_eq!(event_data(&buf[..end]).as_deref(), Some("{\"a\":1}"));
        assert_eq!(event_data(b"retry: 5\n\n"), None);
    }
}
