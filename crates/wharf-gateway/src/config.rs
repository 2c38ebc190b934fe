//! The gateway's upstreams, as users already write them, in any of the common
//! shapes, in JSON or TOML:
//!
//! - the classic `config/mcp.json`: `{"servers": [{"name": …, "url" | "command"
//!   | "script_path": …, "timeout", "max_retries", …}], "log_level": …}`, with
//!   the production client's fields (`enabled`, `health_check_interval`,
//!   `metadata`, a per-server `log_level`, and a `script_path` that is a Python
//!   module such as `mcp_sandbox.server`, run as `python3 -m`);
//! - Claude Desktop, Cursor, Windsurf and Cline: `{"mcpServers": {name:
//!   {"command", "args", "env"} | {"url" | "serverUrl", "headers"}}}`;
//! - VS Code: `{"servers": {name: {"type": "stdio" | "http" | "sse", …}}}`.
//!
//! `${VAR}` (and VS Code's `${env:VAR}`) is replaced from the environment in
//! URLs, headers, `bearer`, `args` and `env`; the values so read are kept as
//! the upstream's secrets, so no error or log line shows them. Every problem
//! in a file is reported at once, each saying where it is.
//!
//! This module parses text; the binary reads the file and hands over a lookup for
//! the `${VAR}` references (only the binary reads the environment).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;
use serde_json::Value;
use wharf_core::Problem;

use crate::{backoff::Backoff, breaker::BreakerConfig};

/// How to reach one upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// Streamable HTTP (2026-07-28 and the 2025 versions, detected).
    Http { url: String },
    /// The 2024-11-05 HTTP+SSE transport (GET the stream, POST to its endpoint).
    Sse { url: String },
    /// A server in this process, over an in-memory pipe (a program's own tools
    /// behind the gateway; tests on paused time). Not in configuration files.
    InProcess(InProcess),
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "http",
            Self::Sse { .. } => "sse",
            Self::InProcess(_) => "in-process",
        }
    }
}

/// Serves one connection on the server end of an in-memory pipe; called for
/// every connection the gateway makes (after a crash, for each lane).
#[derive(Clone)]
pub struct InProcess(std::sync::Arc<dyn Fn(tokio::io::DuplexStream) + Send + Sync>);

impl InProcess {
    /// Any rmcp server: `serve` starts one on the stream it is given.
    pub fn new(serve: impl Fn(tokio::io::DuplexStream) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(serve))
    }

    /// A Wharf app, each connection a session of its own.
    pub fn app(app: std::sync::Arc<wharf_core::App>) -> Self {
        Self::new(move |stream| {
            let server = wharf_core::WharfServer::new(app.clone());
            tokio::spawn(async move {
                if let Ok(running) = rmcp::service::serve_server(server, stream).await {
                    let _ = running.waiting().await;
                }
            });
        })
    }

    /// A new connection: the client end of a pipe whose server end is served.
    pub(crate) fn connect(&self) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        (self.0)(server);
        client
    }
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl PartialEq for InProcess {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Which protocol era to speak to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// Detect it as 2026-07-28 says: `server/discover`, then `initialize` when
    /// the server turns out to be older.
    #[default]
    Auto,
    /// 2026-07-28 only (no fallback round trip).
    Modern,
    /// `initialize` straight away (2025-11-25 and older servers).
    Legacy,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Modern => "2026-07-28",
            Self::Legacy => "legacy",
        }
    }
}

/// What to do with the tools of an upstream that is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenUnhealthy {
    /// Keep listing them; a call answers with a tool error saying why.
    #[default]
    Error,
    /// Take them out of the lists until the upstream recovers.
    Hide,
}

/// When a gateway is ready for traffic (`/ready`), by the health of its
/// enabled upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadyWhen {
    /// Every one is healthy.
    All,
    /// At least one is healthy (or none is enabled).
    #[default]
    Any,
    /// Whatever their health: the gateway serves what it can.
    Always,
}

/// One upstream server and its limits. Its `Debug` shows no header value,
/// URL query or secret.
#[derive(Clone, PartialEq)]
pub struct UpstreamConfig {
    pub name: String,
    /// Prefix of its tools' and prompts' names (`{namespace}{separator}{name}`);
    /// empty publishes them unchanged.
    pub namespace: String,
    pub transport: Transport,
    pub era: Era,
    pub headers: BTreeMap<String, String>,
    pub enabled: bool,
    /// Per attempt, for every call.
    pub timeout: Duration,
    /// Retries after the first attempt, for calls that are safe to repeat.
    pub max_retries: u32,
    pub health_check_interval: Duration,
    pub max_concurrency: usize,
    pub metadata: Value,
    /// Tags every tool of this server carries, for views (`views`, `endpoints`).
    pub tags: Vec<String>,
    /// The upstream wants OAuth tokens the gateway gets: each user's own
    /// (sign-in), or the gateway's (client credentials).
    pub oauth: Option<crate::oauth::OAuthSettings>,
    /// Values read from the environment for this upstream (`${VAR}`): never
    /// shown in an error or a log line.
    pub secrets: Vec<String>,
}

impl UpstreamConfig {
    /// An upstream with the classic defaults (`wharf client` builds one from flags).
    pub fn new(name: impl Into<String>, transport: Transport) -> Self {
        let name = name.into();
        Self {
            namespace: name.clone(),
            name,
            transport,
            era: Era::Auto,
            headers: BTreeMap::new(),
            enabled: true,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            metadata: Value::Null,
            tags: Vec::new(),
            oauth: None,
            secrets: Vec::new(),
        }
    }
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.transport {
            Transport::Http { url } | Transport::Sse { url } => crate::redact::shown_url(url),
            Transport::Stdio { command, .. } => command.clone(),
            Transport::InProcess(_) => "in-process".into(),
        };
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("transport", &transport)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Everything `wharf gateway` needs to know about its upstreams.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub upstreams: Vec<UpstreamConfig>,
    pub separator: String,
    pub when_unhealthy: WhenUnhealthy,
    pub breaker: BreakerConfig,
    pub retry_backoff: Backoff,
    /// Waits between restarts of a crashed stdio server or reconnections.
    pub reconnect_backoff: Backoff,
    /// The classic file's `log_level`, kept for the binary to apply.
    pub log_level: Option<String>,
    /// Tools pinned against a changed definition (`pinning` in the file).
    pub pinning: crate::pinning::Pinning,
    /// Who sees which tools, and the virtual servers (`views`, `endpoints`).
    pub views: crate::views::Views,
    /// Progressive discovery: `search_tools` and `call_tool` instead of every tool.
    pub tool_search: crate::tool_search::ToolSearch,
    /// The audit trail (`audit`): on, kept 30 days, unless the file says.
    pub audit: AuditSettings,
    /// Where users reach the gateway (`server.public_url`): sign-in links and
    /// the OAuth redirect URI are made from it.
    pub public_url: Option<String>,
    /// Key material the token vault's key is derived from (`server.state_key`).
    pub vault_secret: Option<Vec<u8>>,
}

/// Per-attempt timeout when a server names none (the classic default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The classic default of three retries.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub(crate) const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Calls in flight per upstream: beyond it callers queue. A stdio server handles
/// requests one by one in most SDKs; HTTP servers scale further.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// Namespace separator: `catalog_search_items`, as FastMCP and agentgateway do.
pub const DEFAULT_SEPARATOR: &str = "_";

/// The fields of one server, from every shape (unknown fields are refused,
/// with the list of known ones).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    script_path: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    /// Windsurf writes `serverUrl`.
    #[serde(default, alias = "serverUrl")]
    url: Option<String>,
    /// `streamable-http` (default) or `sse`; VS Code and Cline write `type`
    /// (`stdio`, `http`, `sse`) or `transportType`.
    #[serde(default, alias = "type", alias = "transportType")]
    transport: Option<String>,
    /// `auto` (default), `2026-07-28` or `legacy`.
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Cline's switch, the other way round.
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    timeout: Option<Value>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    health_check_interval: Option<Value>,
    #[serde(default)]
    max_concurrency: Option<usize>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    oauth: Option<RawOAuth>,
    /// The production client's per-server level, passed to a started server
    /// as `LOG_LEVEL`.
    #[serde(default)]
    log_level: Option<String>,
    /// What editors keep for themselves; read and not used.
    #[serde(default, rename = "autoApprove")]
    _auto_approve: Value,
    #[serde(default, rename = "alwaysAllow")]
    _always_allow: Value,
    #[serde(default, rename = "description")]
    _description: Value,
}

/// Top-level keys besides the server list.
const TOP_LEVEL: &[&str] = &[
    "servers",
    "mcpServers",
    "log_level",
    "separator",
    "when_unhealthy",
    "breaker",
    "inputs",
    "pinning",
    "views",
    "endpoints",
    "tool_search",
    "audit",
];

/// The audit trail's settings (`audit` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// Every tool call recorded in the gateway's database.
    pub enabled: bool,
    /// Records older than this are deleted (hourly).
    pub retention: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention: DEFAULT_AUDIT_RETENTION,
        }
    }
}

/// How long the audit trail keeps a call when the file does not say.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    retention: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    /// `authorization_code` (default: each user signs in) or `client_credentials`.
    #[serde(default)]
    grant: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolSearch {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    always: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPinning {
    /// `flag` (default) or `hide`.
    on_change: Option<String>,
    lock_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    window: Option<u32>,
    min_calls: Option<u32>,
    open_for: Option<Value>,
}

/// Seconds as a number (the classic file) or a duration string (`"1m 30s"`).
fn duration(value: &Value, at: &str) -> Result<Duration, Problem> {
    let bad = |why: String| Problem {
        at: at.to_owned(),
        message: why,
    };
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
            _ => Err(bad(format!(
                "{n} is not a positive number of seconds; write e.g. 30 or \"30s\""
            ))),
        },
        Value::String(s) => humantime::parse_duration(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                bad(format!(
                    "\"{s}\" is not a duration; write seconds (30) or \"30s\", \"2m\""
                ))
            }),
        other => Err(bad(format!(
            "expected seconds or a duration string, found {other}"
        ))),
    }
}

/// Replace `${VAR}` (or VS Code's `${env:VAR}`) in `text` with `lookup(VAR)`,
/// recording each value read in `secrets`; an unset variable is an error (a
/// header with an empty token would fail later, far from the cause).
fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &str,
    secrets: &mut Vec<String>,
) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Problem {
                at: at.to_owned(),
                message: "`${` without a closing `}`".into(),
            });
        };
        let reference = &after[..end];
        if let Some(input) = reference.strip_prefix("input:") {
            return Err(Problem {
                at: at.to_owned(),
                message: format!(
                    "${{input:{input}}} is a VS Code prompt, which a server cannot ask; put the value in an environment variable and write ${{VAR}}"
                ),
            });
        }
        let name = reference.strip_prefix("env:").unwrap_or(reference);
        let value = lookup(name).ok_or_else(|| Problem {
            at: at.to_owned(),
            message: format!("refers to ${{{name}}}, which is not set in the environment"),
        })?;
        if !value.is_empty() {
            secrets.push(value.clone());
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// How to run a `script_path`: a Python or Node script by its extension, a
/// dotted Python module (`mcp_sandbox.server`) with `python3 -m`, anything
/// else as a program.
fn script_command(path: &str) -> (String, Vec<String>) {
    let p = std::path::Path::new(path);
    match p.extension().and_then(|e| e.to_str()) {
        Some("py") => ("python3".to_owned(), vec![path.to_owned()]),
        Some("js" | "mjs" | "cjs") => ("node".to_owned(), vec![path.to_owned()]),
        _ if is_python_module(path) => {
            ("python3".to_owned(), vec!["-m".to_owned(), path.to_owned()])
        }
        _ => (path.to_owned(), Vec::new()),
    }
}

/// `package.module`: dotted identifiers, no path separator.
fn is_python_module(path: &str) -> bool {
    path.contains('.')
        && !path.contains('/')
        && path.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl GatewayConfig {
    /// Parse a gateway file. `toml` picks the syntax; `lookup` resolves `${VAR}`.
    /// Every problem found is returned, each saying where it is.
    pub fn parse(
        text: &str,
        toml: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Problem>> {
        let root: Value = if toml {
            ::toml::from_str(text).map_err(|e| {
                vec![Problem {
                    at: "the file".into(),
                    message: e.to_string(),
                }]
            })?
        } else {
            serde_json::from_str(text).map_err(|e| {
                vec![Problem {
                    at: format!("line {} column {}", e.line(), e.column()),
                    message: e.to_string(),
                }]
            })?
        };
        let Value::Object(mut root) = root else {
            return Err(vec![Problem {
                at: "the top level".into(),
                message: "expected an object with `servers` (or `mcpServers`)".into(),
            }]);
        };
        let mut problems = Vec::new();
        for key in root.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                problems.push(Problem {
                    at: key.clone(),
                    message: format!("unknown key; expected one of {}", TOP_LEVEL.join(", ")),
                });
            }
        }
        // (label, name, fields) of each server, whatever the shape.
        let mut servers: Vec<(String, Option<String>, Value)> = Vec::new();
        match (root.remove("servers"), root.remove("mcpServers")) {
            (Some(_), Some(_)) => problems.push(Problem {
                at: "the top level".into(),
                message: "has both `servers` and `mcpServers`; keep one".into(),
            }),
            (Some(Value::Array(list)), None) => {
                for (i, server) in list.into_iter().enumerate() {
                    let label = server.get("name").and_then(Value::as_str).map_or_else(
                        || format!("servers[{i}]"),
                        |n| format!("servers[{i}] ({n})"),
                    );
                    servers.push((label, None, server));
                }
            }
            (Some(Value::Object(map)), None) => {
                for (name, server) in map {
                    servers.push((format!("servers.{name}"), Some(name), server));
                }
            }
            (None, Some(Value::Object(map))) => {
                for (name, server) in map {
                    servers.push((format!("mcpServers.{name}"), Some(name), server));
                }
            }
            (None, None) => problems.push(Problem {
                at: "the top level".into(),
                message: "lists no servers: write `servers` (a list, or VS Code's object) or `mcpServers` (Claude Desktop, Cursor)".into(),
            }),
            (Some(_), None) | (None, Some(_)) => problems.push(Problem {
                at: "servers".into(),
                message: "must be a list of servers, or an object of servers by name".into(),
            }),
        }
        let mut upstreams = Vec::with_capacity(servers.len());
        for (label, name, fields) in servers {
            let mut raw: RawServer = match serde_json::from_value(fields) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Problem {
                        at: label,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            if let Some(name) = name {
                if raw.name.as_ref().is_some_and(|n| *n != name) {
                    problems.push(Problem {
                        at: format!("{label}.name"),
                        message: format!("differs from its key `{name}`; keep one"),
                    });
                    continue;
                }
                raw.name = Some(name);
            }
            if let Some(u) = upstream(raw, &label, lookup, &mut problems) {
                upstreams.push(u);
            }
        }
        if upstreams.is_empty() && problems.is_empty() {
            problems.push(Problem {
                at: "servers".into(),
                message: "no servers listed; add at least one { \"name\": ..., \"url\" | \"command\" | \"script_path\": ... }".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for u in &upstreams {
            if !u.namespace.is_empty() && !seen.insert(u.namespace.clone()) {
                problems.push(Problem {
                    at: format!("servers ({})", u.name),
                    message: format!(
                        "namespace `{}` is used twice; give one of them another `namespace`",
                        u.namespace
                    ),
                });
            }
        }
        let text = |key: &str, problems: &mut Vec<Problem>| match root.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(Problem {
                    at: key.into(),
                    message: "must be a string".into(),
                });
                None
            }
        };
        let when_unhealthy = match text("when_unhealthy", &mut problems).as_deref() {
            None | Some("error") => WhenUnhealthy::Error,
            Some("hide") => WhenUnhealthy::Hide,
            Some(other) => {
                problems.push(Problem {
                    at: "when_unhealthy".into(),
                    message: format!("`{other}` is not one of: error, hide"),
                });
                WhenUnhealthy::Error
            }
        };
        let separator =
            text("separator", &mut problems).unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        if !valid_namespace(&separator) {
            problems.push(Problem {
                at: "separator".into(),
                message: "use letters, digits, `_`, `-` or `.` (tool names allow only those)"
                    .into(),
            });
        }
        let log_level = text("log_level", &mut problems);
        let mut breaker = BreakerConfig::default();
        if let Some(b) = root.remove("breaker") {
            match serde_json::from_value::<RawBreaker>(b) {
                Err(e) => problems.push(Problem {
                    at: "breaker".into(),
                    message: e.to_string(),
                }),
                Ok(b) => {
                    if let Some(n) = b.consecutive_failures {
                        breaker.consecutive_failures = n.max(1);
                    }
                    if let Some(r) = b.failure_rate {
                        if r > 0.0 && r <= 1.0 {
                            breaker.failure_rate = r;
                        } else {
                            problems.push(Problem {
                                at: "breaker.failure_rate".into(),
                                message: format!(
                                    "{r} is not in (0, 1]; 0.5 opens at half the calls failing"
                                ),
                            });
                        }
                    }
                    if let Some(n) = b.window {
                        breaker.window = n.max(1);
                    }
                    if let Some(n) = b.min_calls {
                        breaker.min_calls = n.max(1);
                    }
                    if let Some(d) = &b.open_for {
                        match duration(d, "breaker.open_for") {
                            Ok(d) => breaker.open_for = d,
                            Err(e) => problems.push(e),
                        }
                    }
                }
            }
        }
        let mut pinning = crate::pinning::Pinning::default();
        if let Some(p) = root.remove("pinning") {
            match serde_json::from_value::<RawPinning>(p) {
                Err(e) => problems.push(Problem {
                    at: "pinning".into(),
                    message: format!("{e} (known: on_change, lock_file)"),
                }),
                Ok(p) => {
                    pinning.lock_file = p.lock_file;
                    pinning.on_change = match p.on_change.as_deref() {
                        None | Some("flag") => crate::pinning::OnChange::Flag,
                        Some("hide") => crate::pinning::OnChange::Hide,
                        Some(other) => {
                            problems.push(Problem {
                                at: "pinning.on_change".into(),
                                message: format!("`{other}` is not one of: flag, hide"),
                            });
                            crate::pinning::OnChange::Flag
                        }
                    };
                }
            }
        }
        let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        let views = crate::views::parse(
            root.remove("views"),
            root.remove("endpoints"),
            &names,
            &mut problems,
        );
        let mut tool_search = crate::tool_search::ToolSearch::default();
        match root.remove("tool_search") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => tool_search.enabled = true,
            Some(v) => match serde_json::from_value::<RawToolSearch>(v) {
                Ok(t) => {
                    tool_search.enabled = t.enabled;
                    tool_search.always =
                        crate::views::globs(t.always, "tool_search.always", &mut problems);
                }
                Err(e) => problems.push(Problem {
                    at: "tool_search".into(),
                    message: format!("{e} (write `true`, or {{\"enabled\": true, \"always\": [globs of tools listed anyway]}})"),
                }),
            },
        }
        let mut audit = AuditSettings::default();
        match root.remove("audit") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => audit.enabled = false,
            Some(v) => match serde_json::from_value::<RawAudit>(v) {
                Ok(a) => {
                    audit.enabled = a.enabled;
                    if let Some(r) = &a.retention {
                        match duration(r, "audit.retention") {
                            Ok(d) => audit.retention = d,
                            Err(e) => problems.push(e),
                        }
                    }
                }
                Err(e) => problems.push(Problem {
                    at: "audit".into(),
                    message: format!("{e} (write `false`, or {{\"retention\": \"90d\"}})"),
                }),
            },
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            audit,
            separator,
            when_unhealthy,
            breaker,
            log_level,
            pinning,
            views,
            tool_search,
            ..Self::new(upstreams)
        })
    }

    /// `upstreams` with every other setting at its default (for programs that
    /// build the gateway themselves).
    pub fn new(upstreams: Vec<UpstreamConfig>) -> Self {
        Self {
            upstreams,
            separator: DEFAULT_SEPARATOR.to_owned(),
            when_unhealthy: WhenUnhealthy::Error,
            breaker: BreakerConfig::default(),
            retry_backoff: Backoff::default(),
            reconnect_backoff: Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            log_level: None,
            pinning: crate::pinning::Pinning::default(),
            views: crate::views::Views::default(),
            tool_search: crate::tool_search::ToolSearch::default(),
            audit: AuditSettings::default(),
            public_url: None,
            vault_secret: None,
        }
    }
}

/// One server's settings, its problems added to `problems` (`None` when it
/// has any).
fn upstream(
    s: RawServer,
    label: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamConfig> {
    let before = problems.len();
    let at = |field: &str| format!("{label}.{field}");
    let mut report = |at: String, message: String| problems.push(Problem { at, message });
    let Some(name) = s.name.clone().filter(|n| !n.is_empty()) else {
        report(label.to_owned(), "has no `name`".into());
        return None;
    };
    let mut secrets = Vec::new();
    let mut expanded = |text: &str, field: &str, report: &mut dyn FnMut(String, String)| {
        expand(text, lookup, &at(field), &mut secrets)
            .map_err(|e| report(e.at, e.message))
            .ok()
    };
    let kind = s.transport.as_deref().map(str::to_ascii_lowercase);
    let stdio_kind = matches!(kind.as_deref(), Some("stdio"));
    let mut args = Vec::new();
    for (i, a) in s.args.iter().enumerate() {
        args.push(expanded(a, &format!("args[{i}]"), &mut report).unwrap_or_default());
    }
    let mut env = BTreeMap::new();
    for (k, v) in &s.env {
        env.insert(
            k.clone(),
            expanded(v, &format!("env.{k}"), &mut report).unwrap_or_default(),
        );
    }
    if let Some(level) = &s.log_level {
        env.entry("LOG_LEVEL".to_owned())
            .or_insert_with(|| level.clone());
    }
    let transport = match (&s.script_path, &s.command, &s.url) {
        (Some(path), None, None) => {
            let (command, mut script_args) = script_command(path);
            script_args.extend(args.iter().cloned());
            Some(Transport::Stdio {
                command,
                args: script_args,
                env: env.clone(),
                cwd: s.cwd.clone(),
            })
        }
        (None, Some(command), None) => Some(Transport::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env.clone(),
            cwd: s.cwd.clone(),
        }),
        (None, None, Some(_)) if stdio_kind => {
            report(
                at("type"),
                "is `stdio` but the server has a `url`; give `command` and `args`, or drop `type`"
                    .into(),
            );
            None
        }
        (None, None, Some(url)) => match expanded(url, "url", &mut report) {
            None => None,
            Some(url) => match url::Url::parse(&url) {
                Err(e) => {
                    report(
                        at("url"),
                        format!("`{}` is not a URL: {e}", crate::redact::shown_url(&url)),
                    );
                    None
                }
                Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                    report(
                        at("url"),
                        format!(
                            "`{}`: only http:// and https:// are supported",
                            crate::redact::shown_url(&url)
                        ),
                    );
                    None
                }
                Ok(parsed) => match kind.as_deref() {
                    None if parsed.path().ends_with("/sse") => Some(Transport::Sse { url }),
                    None | Some("streamable-http" | "streamablehttp" | "http") => {
                        Some(Transport::Http { url })
                    }
                    Some("sse") => Some(Transport::Sse { url }),
                    Some(other) => {
                        report(
                            at("transport"),
                            format!("`{other}` is not one of: streamable-http (http), sse, stdio"),
                        );
                        None
                    }
                },
            },
        },
        (None, None, None) => {
            report(label.to_owned(), "says neither how to start nor where to reach the server: set `url`, `command` (with `args`) or `script_path`".into());
            None
        }
        _ => {
            report(
                label.to_owned(),
                "set only one of `url`, `command` and `script_path`".into(),
            );
            None
        }
    };
    let started = matches!(transport, Some(Transport::Stdio { .. }));
    if transport.is_some()
        && !started
        && (!s.env.is_empty() || !s.args.is_empty() || s.cwd.is_some())
    {
        report(label.to_owned(), "`env`, `args` and `cwd` apply to a started server (`command` or `script_path`), not to a `url`".into());
    }
    let mut headers = BTreeMap::new();
    // Header values and the bearer token are secrets too, kept apart while
    // `expanded` holds the list of the ones read from the environment.
    let mut credentials = Vec::new();
    for (k, v) in &s.headers {
        let Some(value) = expanded(v, &format!("headers.{k}"), &mut report) else {
            continue;
        };
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(&value).is_err()
        {
            report(
                at(&format!("headers.{k}")),
                "is not a valid HTTP header name and value".into(),
            );
            continue;
        }
        // A header is a credential more often than not: never shown.
        credentials.push(value.clone());
        headers.insert(k.to_ascii_lowercase(), value);
    }
    if let Some(b) = &s.bearer
        && let Some(token) = expanded(b, "bearer", &mut report)
    {
        credentials.push(token.clone());
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    if !headers.is_empty() && started {
        report(
            at("headers"),
            "headers and bearer apply to a `url` server only".into(),
        );
    }
    let oauth = match &s.oauth {
        None => None,
        Some(_) if started => {
            report(
                at("oauth"),
                "OAuth applies to a `url` server; a started server takes its credentials in `env`"
                    .into(),
            );
            None
        }
        Some(_) if s.bearer.is_some() || headers.contains_key("authorization") => {
            report(
                at("oauth"),
                "the gateway gets this server's tokens itself; remove `bearer` (or the Authorization header)".into(),
            );
            None
        }
        Some(o) => {
            let grant = match o.grant.as_deref() {
                None | Some("authorization_code") => Some(crate::oauth::Grant::AuthorizationCode),
                Some("client_credentials") => Some(crate::oauth::Grant::ClientCredentials),
                Some("token_exchange") => Some(crate::oauth::Grant::TokenExchange),
                Some(other) => {
                    report(
                        at("oauth.grant"),
                        format!(
                            "`{other}` is not one of: authorization_code (each user signs in), client_credentials (the gateway's own token), token_exchange (the caller's token exchanged)"
                        ),
                    );
                    None
                }
            };
            let secret = o
                .client_secret
                .as_ref()
                .and_then(|v| expanded(v, "oauth.client_secret", &mut report));
            if let Some(v) = &secret {
                credentials.push(v.clone());
            }
            if matches!(
                grant,
                Some(crate::oauth::Grant::ClientCredentials | crate::oauth::Grant::TokenExchange)
            ) && o.client_id.is_none()
            {
                report(
                    at("oauth.client_id"),
                    "client credentials and token exchange need the gateway's registered `client_id` (and `client_secret`)".into(),
                );
            }
            grant.map(|grant| crate::oauth::OAuthSettings {
                grant,
                scopes: o.scopes.clone(),
                client_id: o.client_id.clone(),
                client_secret: secret,
                issuer: o.issuer.clone(),
            })
        }
    };
    // An empty namespace publishes names unchanged (one upstream, or a gateway
    // that must look exactly like its server).
    let namespace = s.namespace.clone().unwrap_or_else(|| name.clone());
    if !namespace.is_empty() && !valid_namespace(&namespace) {
        report(
            at(if s.namespace.is_some() {
                "namespace"
            } else {
                "name"
            }),
            format!(
                "`{namespace}` cannot prefix tool names: use letters, digits, `_`, `-` or `.` (or set `namespace`)"
            ),
        );
    }
    let mut timed = |v: &Option<Value>, field: &str, default: Duration| match v {
        Some(v) => duration(v, &at(field)).unwrap_or_else(|e| {
            report(e.at, e.message);
            default
        }),
        None => default,
    };
    let timeout = timed(&s.timeout, "timeout", DEFAULT_TIMEOUT);
    let health_check_interval = timed(
        &s.health_check_interval,
        "health_check_interval",
        DEFAULT_HEALTH_CHECK_INTERVAL,
    );
    let max_concurrency = s.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        report(at("max_concurrency"), "must be at least 1".into());
    }
    let era = match s.protocol.as_deref() {
        None | Some("auto") => Era::Auto,
        Some("2026-07-28" | "modern") => Era::Modern,
        Some("legacy" | "2025-11-25" | "2025-06-18" | "2025-03-26" | "2024-11-05") => Era::Legacy,
        Some(other) => {
            report(
                at("protocol"),
                format!("`{other}` is not one of: auto, 2026-07-28, legacy"),
            );
            Era::Auto
        }
    };
    let enabled = match (s.enabled, s.disabled) {
        (Some(e), Some(d)) if e == d => {
            report(
                label.to_owned(),
                "says both `enabled` and `disabled`; keep one".into(),
            );
            true
        }
        (Some(e), _) => e,
        (None, Some(d)) => !d,
        (None, None) => true,
    };
    if problems.len() > before {
        return None;
    }
    secrets.extend(credentials);
    Some(UpstreamConfig {
        name,
        namespace,
        era,
        transport: transport?,
        headers,
        enabled,
        timeout,
        max_retries: s.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        health_check_interval,
        max_concurrency,
        metadata: s.metadata,
        tags: s.tags,
        oauth,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Result<GatewayConfig, Vec<Problem>> {
        GatewayConfig::parse(text, false, &|name| {
            (name == "TOKEN").then(|| "s3cret".to_owned())
        })
    }

    /// The first problem, for the cases that have one.
    fn parse(text: &str) -> Result<GatewayConfig, Problem> {
        parse_all(text).map_err(|mut all| all.remove(0))
    }

    #[test]
    fn reads_the_classic_file() {
        let c = parse(
            r#"{"servers": [
                {"name": "weather", "script_path": "servers/weather.py", "enabled": true,
                 "timeout": 12, "max_retries": 2, "health_check_interval": 60,
                 "metadata": {"owner": "ops"}},
                {"name": "notes", "command": "npx", "args": ["-y", "notes"], "env": {"A": "1"}},
                {"name": "catalog", "url": "http://127.0.0.1:8000/mcp", "bearer": "${TOKEN}"},
                {"name": "old", "url": "http://127.0.0.1:9000/sse", "enabled": false}
              ], "log_level": "INFO"}"#,
        )
        .unwrap();
        let [weather, notes, catalog, old] = &c.upstreams[..] else {
            panic!("{c:?}")
        };
        assert_eq!(
            weather.transport,
            Transport::Stdio {
                command: "python3".into(),
                args: vec!["servers/weather.py".into()],
                env: BTreeMap::new(),
                cwd: None
            }
        );
        assert_eq!(weather.timeout, Duration::from_secs(12));
        assert_eq!(weather.max_retries, 2);
        assert_eq!(weather.health_check_interval, Duration::from_secs(60));
        assert_eq!(weather.metadata["owner"], "ops");
        assert!(matches!(&notes.transport, Transport::Stdio { command, .. } if command == "npx"));
        assert_eq!(notes.timeout, DEFAULT_TIMEOUT);
        assert_eq!(catalog.headers["authorization"], "Bearer s3cret");
        assert!(catalog.secrets.contains(&"s3cret".to_owned()));
        assert!(!format!("{catalog:?}").contains("s3cret"));
        assert!(matches!(old.transport, Transport::Sse { .. }));
        assert!(!old.enabled);
        assert_eq!(c.log_level.as_deref(), Some("INFO"));
        assert_eq!(c.separator, "_");
    }

    #[test]
    fn reads_the_same_fields_in_toml() {
        let c = GatewayConfig::parse(
            "separator = \".\"\nwhen_unhealthy = \"hide\"\n[breaker]\nopen_for = \"5s\"\n\n[[servers]]\nname = \"a\"\nurl = \"http://h/mcp\"\ntimeout = \"1500ms\"\n",
            true,
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.upstreams[0].timeout, Duration::from_millis(1500));
        assert_eq!(c.when_unhealthy, WhenUnhealthy::Hide);
        assert_eq!(c.breaker.open_for, Duration::from_secs(5));
        assert_eq!(c.separator, ".");
    }

    #[test]
    fn mistakes_say_where_and_how_to_fix_them() {
        let cases = [
            (
                r#"{"servers": [{"name": "a"}]}"#,
                "servers[0] (a)",
                "set `url`, `command`",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "command": "y"}]}"#,
                "servers[0] (a)",
                "only one of",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "timout": 3}]}"#,
                "servers[0] (a)",
                "unknown field `timout`",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "timeout": -1}]}"#,
                "servers[0] (a).timeout",
                "not a positive number",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "ftp://x"}]}"#,
                "servers[0] (a).url",
                "only http://",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "bearer": "${NOPE}"}]}"#,
                "servers[0] (a).bearer",
                "${NOPE}, which is not set",
            ),
            (
                r#"{"servers": [{"name": "a b", "url": "http://x"}]}"#,
                "servers[0] (a b).name",
                "cannot prefix tool names",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}, {"name": "a", "command": "y"}]}"#,
                "servers (a)",
                "used twice",
            ),
            (r#"{"servers": []}"#, "servers", "no servers listed"),
            (r#"{"tools": []}"#, "tools", "unknown key"),
            (
                r#"{"servers": {"x": {"type": "stdio", "url": "http://h"}}}"#,
                "servers.x.type",
                "is `stdio`",
            ),
            (
                r#"{"mcpServers": {"x": {"command": "y", "args": ["${input:key}"]}}}"#,
                "mcpServers.x.args[0]",
                "VS Code prompt",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "when_unhealthy": "panic"}"#,
                "when_unhealthy",
                "not one of",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "pinning": {"on_change": "ask"}}"#,
                "pinning.on_change",
                "flag, hide",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "pinning": {"lock": "x"}}"#,
                "pinning",
                "known: on_change, lock_file",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "tool_search": {"alwys": []}}"#,
                "tool_search",
                "unknown field `alwys`",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "tool_search": {"always": ["a{"]}}"#,
                "tool_search.always",
                "is not a glob",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "views": {"callers": ["*"]}}"#,
                "views",
                "must be a list of views",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "audit": {"retention": "forever"}}"#,
                "audit.retention",
                "is not a duration",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "audit": {"keep": "1d"}}"#,
                "audit",
                "unknown field `keep`",
            ),
            (
                r#"{"servers": [{"name": "a", "command": "x", "oauth": {}}]}"#,
                "servers[0] (a).oauth",
                "applies to a `url` server",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "bearer": "t", "oauth": {}}]}"#,
                "servers[0] (a).oauth",
                "remove `bearer`",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "oauth": {"grant": "password"}}]}"#,
                "servers[0] (a).oauth.grant",
                "authorization_code",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "oauth": {"grant": "client_credentials"}}]}"#,
                "servers[0] (a).oauth.client_id",
                "client credentials and token exchange need",
            ),
            (
                r#"{"servers": [{"name": "a", "url": "http://x", "oauth": {"scope": "x"}}]}"#,
                "servers[0] (a)",
                "unknown field `scope`",
            ),
            (r#"{"servers": [}"#, "line 1 column 14", "expected"),
        ];
        for (text, at, message) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.at, at, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn every_problem_in_a_file_is_reported_at_once() {
        let problems = parse_all(
            r#"{"servers": [
                {"name": "a", "url": "ftp://x"},
                {"name": "b", "command": "y", "timeout": -1},
                {"name": "c", "url": "http://x", "timout": 3}
              ], "when_unhealthy": "panic"}"#,
        )
        .unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "servers[0] (a).url",
                "servers[1] (b).timeout",
                "servers[2] (c)",
                "when_unhealthy"
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn reads_claude_desktop_cursor_and_windsurf_files() {
        let c = parse(
            r#"{"mcpServers": {
                "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"K": "${TOKEN}"}},
                "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                "surf": {"serverUrl": "https://surf.example.com/sse"},
                "off": {"command": "x", "disabled": true, "autoApprove": ["t"]}
            }}"#,
        )
        .unwrap();
        let by = |n: &str| c.upstreams.iter().find(|u| u.name == n).unwrap();
        assert!(
            matches!(&by("files").transport, Transport::Stdio { command, env, .. }
            if command == "npx" && env["K"] == "s3cret")
        );
        assert!(
            matches!(&by("remote").transport, Transport::Http { url } if url == "https://mcp.example.com/mcp")
        );
        assert_eq!(by("remote").headers["authorization"], "Bearer s3cret");
        assert!(matches!(&by("surf").transport, Transport::Sse { .. }));
        assert!(!by("off").enabled);
        assert_eq!(by("files").namespace, "files");
    }

    #[test]
    fn reads_vs_code_files() {
        let c = parse(
            r#"{"servers": {
                "github": {"type": "http", "url": "https://api.example.com/mcp/", "headers": {"X-Key": "${env:TOKEN}"}},
                "local": {"type": "stdio", "command": "python3", "args": ["server.py"]}
            }, "inputs": []}"#,
        )
        .unwrap();
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.upstreams[0].headers["x-key"], "s3cret");
        assert!(matches!(&c.upstreams[1].transport, Transport::Stdio { .. }));
    }

    #[test]
    fn a_module_script_path_runs_with_python_m() {
        let c = parse(
            r#"{"servers": [{"name": "sandbox", "script_path": "mcp_sandbox.server", "log_level": "DEBUG",
                "enabled": true, "timeout": 30, "max_retries": 3, "health_check_interval": 60, "metadata": {"team": "x"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.upstreams[0].transport,
            Transport::Stdio {
                command: "python3".into(),
                args: vec!["-m".into(), "mcp_sandbox.server".into()],
                env: BTreeMap::from([("LOG_LEVEL".to_owned(), "DEBUG".to_owned())]),
                cwd: None
            }
        );
        assert!(is_python_module("a.b_c.d"));
        assert!(!is_python_module("servers/weather.py"));
        assert!(!is_python_module("server"));
    }
}
