//! What the access log says about an MCP request: its JSON-RPC method and tool.
//!
//! The intake reads every POST body anyway, so the handlers record the method
//! and tool name here, in the response's extensions, for the access log
//! middleware to pick up. Only tools the server itself has are recorded, and
//! methods only when short and printable, so a client cannot put arbitrary
//! text into log fields or metric labels through them.

use serde::Deserialize;

/// The JSON-RPC method and tool of one request, as far as they are known.
#[derive(Debug, Clone, Default)]
pub struct RpcInfo {
    pub method: Option<String>,
    pub tool: Option<String>,
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
    pub(crate) fn parse(body: &[u8]) -> Option<crate::trace::MetaContext> {
        let peek: Self = serde_json::from_slice(body).ok()?;
        peek.params?.meta.filter(|m| m.traceparent.is_some())
    }
}
