//! The intake: every POST body (`/mcp`, `/mcp/sse`, `/messages`) is read,
//! checked, parsed and resolved here, once, by the same rules.
//!
//! - **read** under the size cap (413) and the body deadline (`server.body_timeout`
//!   plus one second per `server.body_min_rate` bytes; 408), so a body sent a
//!   byte at a time cannot hold a request place;
//! - **checked**: nesting depth (before any parse), then JSON syntax (`-32700`),
//!   then the JSON-RPC shape (`-32600`: `jsonrpc` is `"2.0"`, an `id` is a
//!   string or a 64-bit integer, never `null`), answered 400 as JSON in every
//!   protocol era;
//! - **parsed once** into an envelope whose `params` stay raw: the handler that
//!   needs them (the fast path, the legacy transport) parses only those;
//! - **resolved once**: a `tools/call`'s tool is looked up in the app's offer
//!   (the log line, the metric, the per-tool rate limit and the call itself use
//!   that one lookup), and the per-tool rate limit is drawn here for every
//!   route, so no transport can skip it.

use std::{borrow::Cow, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use rmcp::model::RequestId;
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use tokio::time::Instant;
use wharf_core::{App, ResolvedTool};

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
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            id: None,
            headers: Vec::new(),
        }
    }

    /// A body that is not JSON at all.
    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, -32700, message)
    }

    /// JSON that is not a JSON-RPC message this server can take.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, -32600, message)
    }

    pub fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
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
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
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
    pub fn resolve(&self, message: &Message<'_>) -> Option<ResolvedTool> {
        self.app.resolve(&message.tool_name()?)
    }

    /// A tool with a rate limit of its own draws one call from the caller's
    /// bucket for it; `Err` is the 429 when the bucket is empty.
    pub async fn admit_tool(&self, parts: &Parts, tool: &str) -> Result<(), Response> {
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
    Action(Result<crate::action::ActionRequest, String>),
    /// One JSON-RPC message.
    Message(Message<'a>),
    /// A JSON-RPC batch: its messages, each checked.
    Batch(Vec<Message<'a>>),
}

/// One JSON-RPC message, checked, its `params` left unparsed.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    /// The message as it came (for a handler that needs it whole).
    pub raw: &'a RawValue,
    pub id: Option<RequestId>,
    /// `None` for a response (the client answering the server).
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
}

impl Message<'_> {
    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The tool a `tools/call` names.
    pub fn tool_name(&self) -> Option<Cow<'_, str>> {
        if self.method() != Some("tools/call") {
            return None;
        }
        #[derive(Deserialize)]
        struct Named<'b> {
            #[serde(borrow)]
            name: Option<Cow<'b, str>>,
        }
        let named: Named<'_> = serde_json::from_str(self.params?.get()).ok()?;
        named.name
    }

    /// What the access log and metrics say about this message: its method (as
    /// sent, when it is short and printable) and its tool (only when the app
    /// has it, so no client text reaches a label).
    pub fn info(&self, tool: Option<&ResolvedTool>) -> RpcInfo {
        RpcInfo {
            method: self
                .method()
                .filter(|m| m.len() <= MAX_LOGGED_METHOD && !m.contains(|c: char| c.is_control()))
                .map(str::to_owned),
            tool: tool.map(|t| t.name().to_owned()),
        }
    }
}

/// The fields of a JSON-RPC message the intake checks. A field written as
/// `null` is kept (`Some("null")`): `"id": null` is not a missing id.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// A field that is there, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parse and check a POST body (see the module's notes).
pub(crate) fn parse(bytes: &[u8]) -> Result<Posted<'_>, Refusal> {
    if crate::json_depth::depth(bytes, crate::json_depth::MAX_JSON_DEPTH)
        > crate::json_depth::MAX_JSON_DEPTH
    {
        return Err(Refusal::parse_error(format!(
            "the request's JSON nests deeper than {} levels; flatten the arguments",
            crate::json_depth::MAX_JSON_DEPTH
        )));
    }
    let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::parse_error(format!("the body is not JSON: {}", describe(&e, bytes)))
    })?;
    match raw.get().as_bytes().first() {
        Some(b'[') => {
            let elements: Vec<&RawValue> = serde_json::from_str(raw.get())
                .map_err(|e| Refusal::parse_error(format!("the body is not JSON: {e}")))?;
            if elements.is_empty() {
                return Err(Refusal::invalid(
                    "an empty batch: send one JSON-RPC message, or an array of them",
                ));
            }
            elements
                .into_iter()
                .map(message)
                .collect::<Result<_, _>>()
                .map(Posted::Batch)
        }
        Some(b'{') => {
            let has_jsonrpc = serde_json::from_str::<Envelope<'_>>(raw.get())
                .map(|e| e.jsonrpc.is_some())
                .unwrap_or(true);
            if has_jsonrpc {
                message(raw).map(Posted::Message)
            } else {
                Ok(Posted::Action(
                    serde_json::from_str(raw.get()).map_err(|e| e.to_string()),
                ))
            }
        }
        _ => Err(Refusal::invalid(
            "the body must be a JSON-RPC message (a JSON object) or a batch of them (an array)",
        )),
    }
}

/// Check one JSON-RPC message.
fn message(raw: &RawValue) -> Result<Message<'_>, Refusal> {
    let envelope: Envelope<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        Refusal::invalid(format!(
            "not a JSON-RPC message: {e} (`method` must be a string)"
        ))
    })?;
    if envelope.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return Err(Refusal::invalid("`jsonrpc` must be \"2.0\""));
    }
    let id = match envelope.id {
        None => None,
        Some(raw_id) => Some(request_id(raw_id)?),
    };
    let is_response = envelope.result.is_some() || envelope.error.is_some();
    match (&envelope.method, &id, is_response) {
        (Some(_), _, false) => {}
        (None, Some(_), true) => {}
        (None, None, true) => {
            return Err(Refusal::invalid(
                "a response must carry the `id` of its request",
            ));
        }
        _ => {
            return Err(Refusal::invalid(
                "a JSON-RPC request needs a `method` (a response, a `result` or an `error`)",
            )
            .with_id(id));
        }
    }
    let message = Message {
        raw,
        id,
        method: envelope.method,
        params: envelope.params,
    };
    if message.is_request()
        && message.method() == Some("tools/call")
        && message.tool_name().is_none()
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            -32602,
            "invalid params: tools/call needs `params.name`, the tool's name (a string)",
        )
        .with_id(message.id));
    }
    Ok(message)
}

/// A JSON-RPC id: a string, or an integer within 64 bits (what the server can
/// echo exactly). `null` is not an id: a request without one is a notification.
fn request_id(raw: &RawValue) -> Result<RequestId, Refusal> {
    let text = raw.get();
    if text == "null" {
        return Err(Refusal::invalid(
            "`id` must be a string or an integer, not null (leave it out for a notification)",
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => Ok(RequestId::String(s.into())),
        Ok(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(RequestId::Number(i)),
            None => Err(Refusal::invalid(
                "`id` must be a string or an integer between -2^63 and 2^63-1",
            )),
        },
        _ => Err(Refusal::invalid("`id` must be a string or an integer")),
    }
}

/// A parse error as a person reads it: where, and (briefly) what.
fn describe(e: &serde_json::Error, bytes: &[u8]) -> String {
    if std::str::from_utf8(bytes).is_err() {
        return "it is not valid UTF-8".to_owned();
    }
    format!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &[u8]) -> Refusal {
        match parse(body) {
            Err(r) => r,
            Ok(_) => panic!("accepted {}", String::from_utf8_lossy(body)),
        }
    }

    #[test]
    fn malformed_bodies_get_the_json_rpc_error_they_deserve() {
        assert_eq!(refused(b"{").code, -32700);
        assert_eq!(refused(b"\xff\xfe{}").code, -32700);
        assert_eq!(refused(b"5").code, -32600);
        assert_eq!(refused(b"[]").code, -32600);
        let null_id = refused(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
        assert_eq!(null_id.code, -32600);
        assert!(null_id.message.contains("not null"), "{}", null_id.message);
        let big = refused(br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#);
        assert!(big.message.contains("2^63"), "{}", big.message);
        assert_eq!(
            refused(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#).code,
            -32600
        );
        assert_eq!(
            refused(br#"{"jsonrpc":"2.0","id":1,"method":7}"#).code,
            -32600
        );
        assert_eq!(refused(br#"{"jsonrpc":"2.0","id":1}"#).code, -32600);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(refused(deep.as_bytes()).code, -32700);
    }

    #[test]
    fn messages_batches_and_actions_are_told_apart() {
        let call = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#;
        let Ok(Posted::Message(m)) = parse(call) else {
            panic!()
        };
        assert!(m.is_request());
        assert_eq!(m.tool_name().as_deref(), Some("echo"));
        assert_eq!(m.id, Some(RequestId::String("a".into())));
        let Ok(Posted::Batch(b)) = parse(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        ) else {
            panic!()
        };
        assert_eq!(b.len(), 2);
        assert!(!b[1].is_request());
        assert!(matches!(
            parse(br#"{"action":"list_tools"}"#),
            Ok(Posted::Action(Ok(_)))
        ));
        assert!(matches!(
            parse(br#"{"action":"list_tools","bogus":1}"#),
            Ok(Posted::Action(Err(_)))
        ));
        let response = br#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
        assert!(matches!(parse(response), Ok(Posted::Message(m)) if m.method.is_none()));
    }
}
