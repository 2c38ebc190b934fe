//! The intake: every POST body (`/mcp`, `/mcp/sse`, `/messages`) is read,
//! checked, parsed and resolved here, once, by the same rules.
//!
//! - **read** under the size cap (413) and the body deadline (`server.body_timeout`
//!   plus one second per `server.body_min_rate` bytes; 408), so a body sent a
//!   byte at a time cannot hold a request place;
//! - **checked** by the rules every transport follows (`wharf_core::jsonrpc`:
//!   nesting depth before any parse, JSON syntax `-32700`, the JSON-RPC shape
//!   `-32600`), a refusal answered 400 as JSON in every protocol era;
//! - **parsed once** into an envelope whose `params` stay raw: the handler that
//!   needs them (the fast path, the legacy transport) parses only those;
//! - **resolved once**: a `tools/call`'s tool is looked up in the app's offer
//!   (the log line, the metric, the per-tool rate limit and the call itself use
//!   that one lookup), and the per-tool rate limit is drawn here for every
//!   route, so no transport can skip it.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use rmcp::model::RequestId;
use serde_json::{Value, json};
use tokio::time::Instant;
use wharf_core::{
    App, ResolvedTool,
    jsonrpc::{Message, Shape},
};

use crate::{
    auth::ClientKey,
    metrics::Metrics,
    rate_limit::{Decision, Limiter},
    rpc_info::RpcInfo,
};

/// The longest JSON-RPC method name recorded for the access log; longer ones
/// are no MCP method.
const MAX_LOGGED_METHOD: usize = 64;

/// How a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    /// Time allowed before the minimum rate applies.
    pub timeout: Duration,
    /// Bytes per second after that.
    pub min_rate: usize,
}

/// What every POST route shares.
pub(crate) struct Intake {
    pub app: Arc<App>,
    pub limiter: Arc<Limiter>,
    pub metrics: Metrics,
    pub body: BodyLimits,
}

/// A request refused before any handler saw it: its status and JSON-RPC error.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
    id: Option<RequestId>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            id: None,
            headers: Vec::new(),
        }
    }

    /// JSON that is not a JSON-RPC message this server can take.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, -32600, message)
    }

    pub(crate) fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let id = self.id.map_or(Value::Null, RequestId::into_json_value);
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.code, "message": self.message},
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl Intake {
    /// Read a body, refusing it when it is larger than the cap or arrives
    /// slower than the deadline allows.
    pub(crate) async fn read(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
        let limits = self.body;
        let too_large = || {
            Refusal::invalid(format!(
                "request body is larger than the limit of {} bytes (server.max_body_bytes)",
                limits.max_bytes
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_bytes as u64) {
            return Err(too_large());
        }
        let started = Instant::now();
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        let mut received = 0usize;
        loop {
            // The deadline moves with what has arrived: the grace, plus one
            // second per `min_rate` bytes.
            let allowed = limits.timeout
                + Duration::from_secs_f64(received as f64 / limits.min_rate.max(1) as f64);
            let frame = match tokio::time::timeout_at(started + allowed, body.frame()).await {
                Err(_) => {
                    self.metrics.timeouts.with_label_values(&["body"]).inc();
                    return Err(Refusal::invalid(format!(
                        "the request body arrived too slowly: {received} bytes in {} s (server.body_timeout, then server.body_min_rate of {} bytes/s)",
                        started.elapsed().as_secs(),
                        limits.min_rate
                    ))
                    .with_status(StatusCode::REQUEST_TIMEOUT)
                    .with_header(header::CONNECTION, "close"));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Refusal::invalid(format!(
                        "the request body could not be read: {e}"
                    )));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received += data.len();
            if received > limits.max_bytes {
                return Err(too_large());
            }
            // One chunk (the common case) is kept as it came, without a copy.
            match (&mut first, &mut more) {
                (None, _) => first = Some(data),
                (Some(f), None) => {
                    let mut buf = BytesMut::with_capacity(f.len() + data.len());
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(&data);
                    more = Some(buf);
                }
                (Some(_), Some(buf)) => buf.extend_from_slice(&data),
            }
        }
        Ok(match (first, more) {
            (_, Some(buf)) => buf.freeze(),
            (Some(f), None) => f,
            (None, None) => Bytes::new(),
        })
    }

    /// The tool a `tools/call` names, looked up once (`None`: the app has none
    /// by that name).
    pub(crate) fn resolve(&self, message: &Message<'_>) -> Option<ResolvedTool> {
        self.app.resolve(&message.tool_name()?)
    }

    /// A tool with a rate limit of its own draws one call from the caller's
    /// bucket for it; `Err` is the 429 when the bucket is empty.
    pub(crate) async fn admit_tool(&self, parts: &Parts, tool: &str) -> Result<(), Response> {
        if !self.limiter.limits_tool(tool) {
            return Ok(());
        }
        let Some(key) = parts.extensions.get::<ClientKey>() else {
            return Ok(());
        };
        match self.limiter.check(key.class, &key.key, Some(tool)).await {
            Decision::Deny { retry_after } => {
                self.metrics.rate_limited.with_label_values(&["tool"]).inc();
                Err(crate::auth::too_many(
                    retry_after,
                    &format!("`{tool}` tool"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What a POST body is.
pub(crate) enum Posted<'a> {
    /// A JSON object without `"jsonrpc"`: the JSON action API. `Err` says why
    /// it is not a valid action request.
    Action(Result<crate::action::ActionRequest, serde_json::Error>),
    /// One JSON-RPC message.
    Message(Message<'a>),
    /// A JSON-RPC batch: its messages, each checked.
    Batch(Vec<Message<'a>>),
}

/// Parse and check a POST body by the rules every transport follows
/// (`wharf_core::jsonrpc`); a refusal is a 400 with its JSON-RPC error.
pub(crate) fn parse(bytes: &[u8]) -> Result<Posted<'_>, Refusal> {
    match wharf_core::jsonrpc::read(bytes) {
        Ok(Shape::Message(m)) => Ok(Posted::Message(m)),
        Ok(Shape::Batch(b)) => Ok(Posted::Batch(b)),
        Ok(Shape::NotJsonRpc(raw)) => Ok(Posted::Action(serde_json::from_str(raw.get()))),
        Err(m) => Err(Refusal::new(StatusCode::BAD_REQUEST, m.code, m.message).with_id(m.id)),
    }
}

/// What the access log and metrics say about a message: its method (as sent,
/// when it is short and printable) and its tool (only when the app has it, so
/// no client text reaches a label).
pub(crate) fn info(message: &Message<'_>, tool: Option<&ResolvedTool>) -> RpcInfo {
    RpcInfo {
        method: message
            .method()
            .filter(|m| m.len() <= MAX_LOGGED_METHOD && !m.contains(|c: char| c.is_control()))
            .map(str::to_owned),
        tool: tool.map(|t| t.name().to_owned()),
    }
}
