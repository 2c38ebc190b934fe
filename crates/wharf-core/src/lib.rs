//! Wharf's transport-free tool model.
//!
//! An [`App`] holds the tools, resources, resource templates and prompts a server
//! offers. [`WharfServer`] implements rmcp's `ServerHandler` over an `App`, so the
//! same `App` is served over stdio, Streamable HTTP, the legacy HTTP+SSE transport
//! and the JSON action API without knowing which one it is on. This crate sees
//! requests, never sockets: it does not depend on axum, a database or `tokio::net`.
//!
//! ```no_run
//! use wharf_core::{App, ToolSpec, ToolError, text_result};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Greet { name: String }
//!
//! let app = App::builder("greeter", "1.0.0")
//!     .tool(ToolSpec::typed("greet", |_ctx, args: Greet| async move {
//!         Ok::<_, ToolError>(text_result(format!("Hello, {}!", args.name)))
//!     }).description("Use this when someone wants to be greeted."))
//!     .build()
//!     .expect("valid app");
//! ```

mod app;
mod audit;
mod context;
mod error;
pub mod jsonrpc;
pub mod metrics;
mod offer;
mod portable_schema;
mod principal;
mod prompt;
mod request_state;
mod resource;
pub mod seal;
mod server;
pub mod submission;
pub mod sync;
mod tool;
pub mod untrusted;
mod uri_template;
mod validate;
mod widget;

pub use app::{
    App, AppBuilder, CompletionFn, DEFAULT_MAX_RESULT_BYTES, ListChange, Notifier, ResolvedTool,
    Seen, SessionRequest, SessionRequestFn, ToolViewFn,
};
pub use audit::{AuditQuery, AuditRecord, now_ms};
pub use context::{CallContext, CallId, ClientAddr, Endpoint, ParentSpan, SessionId};
pub use error::{AppError, FieldError, Problem, PromptError, ResourceError, ToolError};
pub use offer::{Changed, Offer, Offering};
pub use principal::{AuthChallenge, AuthMethod, CallerToken, Principal, SecurityScheme};
pub use prompt::PromptSpec;
pub use request_state::{MIN_STATE_KEY_LEN, StateKeyError, StateSeal};
pub use resource::{ResourceSpec, TemplateSpec};
pub use server::{CALL_ID_META, WharfServer, answer_call, answer_tool_call};
pub use tool::{ToolSpec, schema_of, structured_result, text_result};
pub use uri_template::UriTemplate;
pub use validate::ArgumentValidator;
pub use widget::{
    MAX_INVOCATION_CHARS, MCP_APP_MIME, SKYBRIDGE_MIME, Visibility, Widget, WidgetCsp,
};

/// rmcp, re-exported so that programs built on Wharf name the same model types.
pub use rmcp;
