//! What a JSON-RPC message must be before Wharf hands it to rmcp, whatever the
//! transport (HTTP's intake, stdio): the one home of these rules.
//!
//! A body (or a stdio line) is checked for nesting depth before any parse
//! (serde_json stops at 128 levels to protect its stack; no MCP message needs
//! more than a handful, so [`MAX_JSON_DEPTH`] refuses pathological ones with a
//! clear message), then for JSON syntax (`-32700`), then for the JSON-RPC
//! shape (`-32600`: `jsonrpc` is `"2.0"`, an `id` is a string or a 64-bit
//! integer and never `null`, a request has a `method`). The envelope is parsed
//! once and its `params` left raw, so a handler that needs them parses only
//! those. A JSON object without `"jsonrpc"` is not JSON-RPC at all: the HTTP
//! side takes it as the action API.

use std::borrow::Cow;

use rmcp::model::RequestId;
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

/// The deepest nesting of objects and arrays a message may have.
pub const MAX_JSON_DEPTH: usize = 64;

/// A message refused before any handler saw it: the JSON-RPC error to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    /// `-32700` (not JSON), `-32600` (not a valid request), `-32602` (bad params).
    pub code: i64,
    pub message: String,
    /// The request's id, when it could be read.
    pub id: Option<RequestId>,
}

impl Malformed {
    fn parse_error(message: impl Into<String>) -> Self {
        Self {
            code: -32700,
            message: message.into(),
            id: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: -32600,
            message: message.into(),
            id: None,
        }
    }

    /// The JSON-RPC error response for it.
    pub fn to_response(&self) -> Value {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id.clone().map_or(Value::Null, RequestId::into_json_value),
            "error": {"code": self.code, "message": self.message},
        })
    }
}

/// What a body (or line) is.
#[derive(Debug)]
pub enum Shape<'a> {
    /// One JSON-RPC message.
    Message(Message<'a>),
    /// A JSON array of messages, each checked.
    Batch(Vec<Message<'a>>),
    /// A JSON object without `"jsonrpc"`.
    NotJsonRpc(&'a RawValue),
}

/// One JSON-RPC message, checked, its `params` left unparsed.
#[derive(Debug)]
pub struct Message<'a> {
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

/// Read and check a body or line (see the module's notes).
pub fn read(bytes: &[u8]) -> Result<Shape<'_>, Malformed> {
    if depth(bytes, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(Malformed::parse_error(format!(
            "the request's JSON nests deeper than {MAX_JSON_DEPTH} levels; flatten the arguments"
        )));
    }
    let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| {
        Malformed::parse_error(format!("the body is not JSON: {}", describe(&e, bytes)))
    })?;
    match raw.get().as_bytes().first() {
        Some(b'[') => {
            let elements: Vec<&RawValue> = serde_json::from_str(raw.get())
                .map_err(|e| Malformed::parse_error(format!("the body is not JSON: {e}")))?;
            if elements.is_empty() {
                return Err(Malformed::invalid(
                    "an empty batch: send one JSON-RPC message, or an array of them",
                ));
            }
            elements
                .into_iter()
                .map(message)
                .collect::<Result<_, _>>()
                .map(Shape::Batch)
        }
        Some(b'{') => {
            let has_jsonrpc = serde_json::from_str::<Envelope<'_>>(raw.get())
                .map(|e| e.jsonrpc.is_some())
                .unwrap_or(true);
            if has_jsonrpc {
                message(raw).map(Shape::Message)
            } else {
                Ok(Shape::NotJsonRpc(raw))
            }
        }
        _ => Err(Malformed::invalid(
            "the body must be a JSON-RPC message (a JSON object) or a batch of them (an array)",
        )),
    }
}

/// Check one JSON-RPC message.
fn message(raw: &RawValue) -> Result<Message<'_>, Malformed> {
    let envelope: Envelope<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        Malformed::invalid(format!(
            "not a JSON-RPC message: {e} (`method` must be a string)"
        ))
    })?;
    if envelope.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return Err(Malformed::invalid("`jsonrpc` must be \"2.0\""));
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
            return Err(Malformed::invalid(
                "a response must carry the `id` of its request",
            ));
        }
        _ => {
            return Err(Malformed {
                id,
                ..Malformed::invalid(
                    "a JSON-RPC request needs a `method` (a response, a `result` or an `error`)",
                )
            });
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
        return Err(Malformed {
            code: -32602,
            message: "invalid params: tools/call needs `params.name`, the tool's name (a string)"
                .into(),
            id: message.id,
        });
    }
    Ok(message)
}

/// A JSON-RPC id: a string, or an integer within 64 bits (what the server can
/// echo exactly). `null` is not an id: a request without one is a notification.
fn request_id(raw: &RawValue) -> Result<RequestId, Malformed> {
    let text = raw.get();
    if text == "null" {
        return Err(Malformed::invalid(
            "`id` must be a string or an integer, not null (leave it out for a notification)",
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => Ok(RequestId::String(s.into())),
        Ok(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(RequestId::Number(i)),
            None => Err(Malformed::invalid(
                "`id` must be a string or an integer between -2^63 and 2^63-1",
            )),
        },
        _ => Err(Malformed::invalid("`id` must be a string or an integer")),
    }
}

/// A parse error as a person reads it: where, and (briefly) what.
fn describe(e: &serde_json::Error, bytes: &[u8]) -> String {
    if std::str::from_utf8(bytes).is_err() {
        return "it is not valid UTF-8".to_owned();
    }
    format!("{e}")
}

/// The deepest nesting in `bytes`, counting `{` and `[` outside strings. It
/// stops counting once past `limit`, so a hostile body costs one linear scan.
pub fn depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    return max;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &[u8]) -> Malformed {
        match read(body) {
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
        let Ok(Shape::Message(m)) = read(call) else {
            panic!()
        };
        assert!(m.is_request());
        assert_eq!(m.tool_name().as_deref(), Some("echo"));
        assert_eq!(m.id, Some(RequestId::String("a".into())));
        let Ok(Shape::Batch(b)) = read(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        ) else {
            panic!()
        };
        assert_eq!(b.len(), 2);
        assert!(!b[1].is_request());
        assert!(matches!(
            read(br#"{"action":"list_tools"}"#),
            Ok(Shape::NotJsonRpc(_))
        ));
        let response = br#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
        assert!(matches!(read(response), Ok(Shape::Message(m)) if m.method.is_none()));
    }

    #[test]
    fn depth_counts_containers_outside_strings() {
        assert_eq!(depth(br#"{"a":[1,{"b":2}]}"#, 64), 3);
        assert_eq!(depth(br#"{"a":"[[[[{{{\"]]"}"#, 64), 1);
        assert_eq!(depth(b"[]", 64), 1);
        assert_eq!(depth(b"5", 64), 0);
        let deep = "[".repeat(10_000);
        assert_eq!(
            depth(deep.as_bytes(), 64),
            65,
            "stops counting past the limit"
        );
    }
}
