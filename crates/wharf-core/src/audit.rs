//! The audit trail's record: one tool call through a gateway, as it is kept
//! (the gateway writes it, the database stores it, `wharf gateway audit`
//! reads it). Arguments are kept as a hash only: the trail says that two calls
//! had the same arguments without holding what may be personal data.

use serde::{Deserialize, Serialize};

/// One call, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call arrived, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The call id (the `wharf/callId` of the answer, the log lines' `call_id`).
    pub call_id: String,
    /// The caller: a token's subject or `key:NAME`; empty for an anonymous caller.
    pub subject: String,
    /// The tool's published name.
    pub tool: String,
    /// The upstream server that answered.
    pub upstream: String,
    /// `ok`, `tool_error` (the tool answered `isError`), or the failure's class
    /// (`upstream`, `timeout`, `validation`, `protocol`, ...).
    pub outcome: String,
    pub latency_ms: f64,
    /// `sha256:` of the arguments' canonical JSON (keys sorted).
    pub args_hash: String,
    /// The named endpoint (`/mcp/{name}`) the call arrived at, if any.
    pub endpoint: Option<String>,
}

/// Which records `wharf gateway audit` asks for; every field narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub subject: Option<String>,
    pub tool: Option<String>,
    pub upstream: Option<String>,
    /// `ok`, or `error` for every other outcome, or one outcome exactly.
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Newest first, at most this many.
    pub limit: usize,
}

/// Now, in milliseconds since the Unix epoch (as `at_ms` is kept).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
