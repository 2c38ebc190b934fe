//! Trace context in: W3C `traceparent` / `tracestate` from the HTTP headers, or
//! from the MCP request's `params._meta` (where MCP SDKs put them, and the only
//! carrier over stdio or through a proxy that drops headers).
//!
//! Spans are only created when tracing is on (`HttpConfig::tracing`, set when an
//! OTLP endpoint is configured): a request then costs nothing extra when it is off.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The two trace-context fields of a request's `_meta`.
/// The two trace-context fields of a request's `_meta`; a value that is not a
/// string is ignored (the request is still served, without joining a trace).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct MetaContext {
    #[serde(default, deserialize_with = "string_or_nothing")]
    pub traceparent: Option<String>,
    #[serde(default, deserialize_with = "string_or_nothing")]
    pub tracestate: Option<String>,
}

fn string_or_nothing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::Deserialize;
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

impl Extractor for MetaContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The server span for one HTTP request, a child of the caller's trace when the
/// headers carry one.
pub(crate) fn request_span(method: &http::Method, path: &str, headers: &http::HeaderMap) -> Span {
    let span = tracing::info_span!(
        "http request",
        otel.name = format!("{method} {path}"),
        otel.kind = "server",
        http.request.method = method.as_str(),
        url.path = path,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if headers.contains_key("traceparent") {
        let _ = span.set_parent(TraceContextPropagator::new().extract(&Headers(headers)));
    }
    span
}

/// The span for one MCP request whose `_meta` carries a trace context: it joins
/// that trace (the MCP client's), which wins over the HTTP headers' one.
pub(crate) fn mcp_span(method: &str, meta: &MetaContext) -> Span {
    let span = tracing::info_span!(
        "mcp request",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "jsonrpc",
        rpc.method = method,
    );
    let _ = span.set_parent(TraceContextPropagator::new().extract(meta));
    span
}
