//! What the access log says about an MCP request: its JSON-RPC method and tool.
//!
//! The `/mcp` handler reads the body anyway (to tell the action API from
//! JSON-RPC), so it records the method and tool name here, in the response's
//! extensions, for the access log middleware to pick up. Only names that the
//! server itself knows are recorded, so a client cannot put arbitrary text into
//! log fields or metric labels through them.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The JSON-RPC method and tool of one request, as far as they are known.
#[derive(Debug, Clone, Default)]
pub struct RpcInfo {
    pub method: Option<String>,
    pub tool: Option<String>,
}

/// The few top-level fields needed to route and log a POST body; the rest of the
/// body is skipped without being built into a value.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Peek {
    pub jsonrpc: Option<IgnoredAny>,
    pub method: Option<String>,
    pub params: Option<PeekParams>,
    /// The action API's tool name (`{"action": "call_tool", "name": ...}`).
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeekParams {
    pub name: Option<String>,
}

/// `params._meta`'s trace context: read (a second, small parse) only when
/// tracing is on, so the common request never builds its `_meta`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TracePeek {
    pub params: Option<TraceParams>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TraceParams {
    #[serde(rename = "_meta", default, deserialize_with = "lenient")]
    pub meta: Option<crate::trace::MetaContext>,
}

/// A `_meta` of the wrong shape is rmcp's to refuse, not a reason to lose the peek.
fn lenient<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::trace::MetaContext>, D::Error> {
    Ok(serde_json::from_value(serde_json::Value::deserialize(d)?).ok())
}

impl TracePeek {
    /// The trace context in `params._meta`, when there is a `traceparent`.
    pub fn parse(body: &[u8]) -> Option<crate::trace::MetaContext> {
        let peek: Self = serde_json::from_slice(body).ok()?;
        peek.params?.meta.filter(|m| m.traceparent.is_some())
    }
}

impl Peek {
    /// `Some` when the body is a JSON object; `None` for arrays and bad JSON, which
    /// go to rmcp so that it answers with the proper JSON-RPC error.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// A JSON object without `"jsonrpc"` is a call to the simple action API.
    pub fn is_action(&self) -> bool {
        self.jsonrpc.is_none()
    }

    pub fn tool_name(&self) -> Option<&str> {
        match self.method.as_deref() {
            Some("tools/call") => self.params.as_ref()?.name.as_deref(),
            _ => None,
        }
    }
}
