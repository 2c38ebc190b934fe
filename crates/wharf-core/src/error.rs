//! Errors of the tool model, and their one mapping onto MCP results and errors.
//!
//! The rule (MCP 2025-11-25, "Error Handling"): a request that cannot be routed
//! (unknown tool, malformed params) is a JSON-RPC error; anything that happened
//! while running a tool, argument validation included, is a tool result with
//! `isError: true`, so the model can read the message and correct itself.

use std::time::Duration;

use rmcp::{
    ErrorData,
    model::{CallToolResult, ContentBlock},
};

/// Something a person wrote that cannot be used, and where: a configuration
/// key (`server.allowed_hosts[1]`), a place in a file (`wharf.toml:3:1`,
/// `servers[2] (weather).timeout`), a line of an import (`items.csv line 4`).
/// Every parser in Wharf reports with it, so every message reads the same:
/// where, then what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl Problem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }

    /// The same problem, located inside the configuration table `outer`
    /// (`server` + `allowed_hosts[1]` = `server.allowed_hosts[1]`).
    pub fn within(mut self, outer: &str) -> Self {
        self.at = if self.at.is_empty() {
            outer.to_owned()
        } else if self.at.starts_with('[') {
            format!("{outer}{}", self.at)
        } else {
            format!("{outer}.{}", self.at)
        };
        self
    }
}

/// One argument that does not satisfy the tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer into the arguments (`/limit`, `/tags/0`); empty for the whole object.
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    /// The argument name as a person would say it: `limit`, `tags[0]`, or `arguments`.
    pub fn field(&self) -> String {
        if self.pointer.is_empty() {
            return "arguments".to_owned();
        }
        let mut out = String::new();
        for part in self.pointer.trim_start_matches('/').split('/') {
            let part = part.replace("~1", "/").replace("~0", "~");
            if part.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
                out.push_str(&format!("[{part}]"));
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&part);
            }
        }
        out
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field(), self.message)
    }
}

/// Why a tool call did not produce a normal result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("invalid arguments: {}", join(.0))]
    InvalidArguments(Vec<FieldError>),
    /// The thing the call asked about does not exist (an unknown id, say).
    #[error("{0}")]
    NotFound(String),
    /// The tool ran and failed in a way the caller should read.
    #[error("{0}")]
    Failed(String),
    #[error("the tool did not finish within {}", humanize(.0))]
    Timeout(Duration),
    /// A service the tool depends on (an upstream MCP server, an API) failed or
    /// is unavailable; the message says which and whether to retry.
    #[error("{0}")]
    Upstream(String),
    /// The request cannot be served at the protocol level (a client capability the
    /// tool needs was not declared, say); answered as a JSON-RPC error.
    #[error("{}", .0.message)]
    Protocol(ErrorData),
    /// The tool needs credentials (or scopes) this caller does not have. Answered
    /// as a tool error carrying `_meta["mcp/www_authenticate"]`, so a host such as
    /// ChatGPT can offer to link an account for this one tool.
    #[error("{message}")]
    AuthRequired {
        message: String,
        www_authenticate: String,
    },
    /// A fault the caller cannot fix; its detail goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn humanize(d: &Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl ToolError {
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let pointer = if field.is_empty() {
            String::new()
        } else {
            format!("/{field}")
        };
        Self::InvalidArguments(vec![FieldError {
            pointer,
            message: message.into(),
        }])
    }

    /// A stable, bounded name for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Self::UnknownTool(_) => "unknown_tool",
            Self::InvalidArguments(_) => "validation",
            Self::NotFound(_) => "not_found",
            Self::Failed(_) => "handler",
            Self::Timeout(_) => "timeout",
            Self::Upstream(_) => "upstream",
            Self::Protocol(_) => "protocol",
            Self::AuthRequired { .. } => "auth",
            Self::Internal(_) => "internal",
        }
    }

    /// The MCP answer for this error: a JSON-RPC error when the call could not be
    /// routed, otherwise a tool result with `isError: true`. `call_id` lets a user
    /// quote an internal failure without the server revealing what went wrong.
    pub fn into_mcp(self, call_id: &str) -> Result<CallToolResult, ErrorData> {
        let message = match self {
            Self::UnknownTool(name) => {
                return Err(ErrorData::invalid_params(
                    format!("Unknown tool: {name}"),
                    None,
                ));
            }
            Self::Protocol(error) => return Err(error),
            Self::AuthRequired {
                message,
                www_authenticate,
            } => {
                let mut r = CallToolResult::error(vec![ContentBlock::text(message)]);
                let mut meta = rmcp::model::MetaObject::new();
                meta.0.insert(
                    "mcp/www_authenticate".into(),
                    serde_json::json!([www_authenticate]),
                );
                r.meta = Some(meta);
                return Ok(r);
            }
            Self::Internal(_) => format!("internal error (call id {call_id})"),
            other => other.to_string(),
        };
        Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
    }
}

/// Why a resource read failed.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("resource not found: {0}")]
    NotFound(String),
    /// An MCP error passed through as is (a gateway relaying its upstream's).
    #[error("{}", .0.message)]
    Protocol(ErrorData),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ResourceError {
    pub fn into_mcp(self, uri: &str) -> ErrorData {
        match self {
            Self::NotFound(_) => {
                let uri = crate::untrusted::shown(uri);
                ErrorData::resource_not_found(
                    format!("Resource not found: {uri}"),
                    Some(serde_json::json!({ "uri": uri })),
                )
            }
            Self::Protocol(error) => error,
            Self::Internal(_) => ErrorData::internal_error("internal error", None),
        }
    }
}

/// Why a prompt could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("unknown prompt `{0}`")]
    UnknownPrompt(String),
    #[error("missing required argument `{0}`")]
    MissingArgument(String),
    /// An MCP error passed through as is (a gateway relaying its upstream's).
    #[error("{}", .0.message)]
    Protocol(ErrorData),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PromptError {
    pub fn into_mcp(self) -> ErrorData {
        match self {
            Self::Internal(_) => ErrorData::internal_error("internal error", None),
            Self::Protocol(error) => error,
            other => ErrorData::invalid_params(other.to_string(), None),
        }
    }
}

/// A mistake in how an [`App`](crate::App) was put together, found by `build()`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("tool `{0}` is registered twice")]
    DuplicateTool(String),
    #[error("tool name `{0}` is not valid: use 1 to 128 characters of A-Z a-z 0-9 _ - .")]
    BadToolName(String),
    #[error("tool `{tool}` has an input schema that is not valid JSON Schema: {problem}")]
    BadSchema { tool: String, problem: Problem },
    #[error("resource `{0}` is registered twice")]
    DuplicateResource(String),
    #[error("resource template `{template}` is not valid: {problem}")]
    BadTemplate { template: String, problem: Problem },
    #[error("prompt `{0}` is registered twice")]
    DuplicatePrompt(String),
    #[error("widget URI `{0}` must start with ui://")]
    BadWidgetUri(String),
    #[error(
        "tool `{tool}` renders with widget `{uri}`, which is not registered: add it with AppBuilder::widget"
    )]
    UnknownWidget { tool: String, uri: String },
    #[error(
        "metric collector cannot be registered: {0} (two collectors with the same metric name?)"
    )]
    Metrics(#[from] prometheus::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_read_like_paths() {
        let e = FieldError {
            pointer: "/tags/0".into(),
            message: "x".into(),
        };
        assert_eq!(e.field(), "tags[0]");
        let e = FieldError {
            pointer: String::new(),
            message: "x".into(),
        };
        assert_eq!(e.field(), "arguments");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ToolError::internal("password=hunter2 at db.internal:5432");
        let result = err.into_mcp("c-1").unwrap();
        let text = serde_json::to_string(&result).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("c-1"));
        assert_eq!(result.is_error, Some(true));
    }

    #[test]
    fn unknown_tool_is_a_protocol_error() {
        let err = ToolError::UnknownTool("nope".into())
            .into_mcp("c")
            .unwrap_err();
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    }
}
