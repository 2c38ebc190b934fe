//! The gateway's upstreams, as written in `config/mcp.json` (the classic shape,
//! accepted as is) or the same fields in TOML (`[[servers]]`).
//!
//! ```json
//! { "servers": [
//!     { "name": "catalog", "url": "http://127.0.0.1:8000/mcp", "timeout": 30 },
//!     { "name": "notes", "command": "python3", "args": ["notes.py"], "max_retries": 2 },
//!     { "name": "weather", "script_path": "servers/weather.py", "health_check_interval": 60 } ],
//!   "log_level": "INFO" }
//! ```
//!
//! This module parses text; the binary reads the file and hands over a lookup for
//! the `${VAR}` references (only the binary reads the environment).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;
use serde_json::Value;

use crate::{backoff::Backoff, breaker::BreakerConfig, error::ConfigError};

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

/// One upstream server and its limits.
#[derive(Debug, Clone, PartialEq)]
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
        }
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
}

/// Per-attempt timeout when a server names none (the classic default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The classic default of three retries.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Calls in flight per upstream: beyond it callers queue. A stdio server handles
/// requests one by one in most SDKs; HTTP servers scale further.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// Namespace separator: `catalog_search_items`, as FastMCP and agentgateway do.
pub const DEFAULT_SEPARATOR: &str = "_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    servers: Vec<Value>,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    when_unhealthy: Option<String>,
    #[serde(default)]
    breaker: Option<RawBreaker>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
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
    #[serde(default)]
    url: Option<String>,
    /// `streamable-http` (default) or `sse`.
    #[serde(default)]
    transport: Option<String>,
    /// `auto` (default), `2026-07-28` or `legacy`.
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
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
}

fn yes() -> bool {
    true
}

/// Seconds as a number (the classic file) or a duration string (`"1m 30s"`).
fn duration(value: &Value, at: &str) -> Result<Duration, ConfigError> {
    let bad = |why: String| ConfigError {
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

/// Replace `${VAR}` in `text` with `lookup(VAR)`; an unset variable is an error
/// (a header with an empty token would fail later, far from the cause).
fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &str,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError {
                at: at.to_owned(),
                message: "`${` without a closing `}`".into(),
            });
        };
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| ConfigError {
            at: at.to_owned(),
            message: format!("refers to ${{{name}}}, which is not set in the environment"),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The interpreter for a `script_path`, from its extension, as the classic
/// client does: Python and Node scripts; anything else is run directly.
fn script_command(path: &str) -> (String, Vec<String>) {
    let interpreter = match std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
    {
        Some("py") => Some("python3"),
        Some("js" | "mjs" | "cjs") => Some("node"),
        _ => None,
    };
    match interpreter {
        Some(i) => (i.to_owned(), vec![path.to_owned()]),
        None => (path.to_owned(), Vec::new()),
    }
}

fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl GatewayConfig {
    /// Parse a gateway file. `toml` picks the syntax; `lookup` resolves `${VAR}`.
    pub fn parse(
        text: &str,
        toml: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let root: Value = if toml {
            ::toml::from_str(text).map_err(|e| ConfigError {
                at: "the file".into(),
                message: e.to_string(),
            })?
        } else {
            serde_json::from_str(text).map_err(|e| ConfigError {
                at: format!("line {} column {}", e.line(), e.column()),
                message: e.to_string(),
            })?
        };
        let raw: RawFile = serde_json::from_value(root).map_err(|e| ConfigError {
            at: "the top level".into(),
            message: format!("{e} (expected `servers`, and optionally `log_level`, `separator`, `when_unhealthy`, `breaker`)"),
        })?;
        let mut upstreams = Vec::with_capacity(raw.servers.len());
        for (i, server) in raw.servers.into_iter().enumerate() {
            let label = server.get("name").and_then(Value::as_str).map_or_else(
                || format!("servers[{i}]"),
                |n| format!("servers[{i}] ({n})"),
            );
            let s: RawServer = serde_json::from_value(server).map_err(|e| ConfigError {
                at: label.clone(),
                message: e.to_string(),
            })?;
            upstreams.push(upstream(s, &label, lookup)?);
        }
        if upstreams.is_empty() {
            return Err(ConfigError {
                at: "servers".into(),
                message: "no servers listed; add at least one { \"name\": ..., \"url\" | \"command\" | \"script_path\": ... }".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for u in &upstreams {
            if !u.namespace.is_empty() && !seen.insert(u.namespace.clone()) {
                return Err(ConfigError {
                    at: format!("servers ({})", u.name),
                    message: format!(
                        "namespace `{}` is used twice; give one of them another `namespace`",
                        u.namespace
                    ),
                });
            }
        }
        let when_unhealthy = match raw.when_unhealthy.as_deref() {
            None | Some("error") => WhenUnhealthy::Error,
            Some("hide") => WhenUnhealthy::Hide,
            Some(other) => {
                return Err(ConfigError {
                    at: "when_unhealthy".into(),
                    message: format!("`{other}` is not one of: error, hide"),
                });
            }
        };
        let separator = raw.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        if !valid_namespace(&separator) {
            return Err(ConfigError {
                at: "separator".into(),
                message: "use letters, digits, `_`, `-` or `.` (tool names allow only those)"
                    .into(),
            });
        }
        let mut breaker = BreakerConfig::default();
        if let Some(b) = raw.breaker {
            if let Some(n) = b.consecutive_failures {
                breaker.consecutive_failures = n.max(1);
            }
            if let Some(r) = b.failure_rate {
                if !(r > 0.0 && r <= 1.0) {
                    return Err(ConfigError {
                        at: "breaker.failure_rate".into(),
                        message: format!(
                            "{r} is not in (0, 1]; 0.5 opens at half the calls failing"
                        ),
                    });
                }
                breaker.failure_rate = r;
            }
            if let Some(n) = b.window {
                breaker.window = n.max(1);
            }
            if let Some(n) = b.min_calls {
                breaker.min_calls = n.max(1);
            }
            if let Some(d) = &b.open_for {
                breaker.open_for = duration(d, "breaker.open_for")?;
            }
        }
        Ok(Self {
            separator,
            when_unhealthy,
            breaker,
            log_level: raw.log_level,
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
        }
    }
}

fn upstream(
    s: RawServer,
    label: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<UpstreamConfig, ConfigError> {
    let at = |field: &str| format!("{label}.{field}");
    let transport = match (&s.script_path, &s.command, &s.url) {
        (Some(path), None, None) => {
            let (command, mut args) = script_command(path);
            args.extend(s.args.iter().cloned());
            Transport::Stdio {
                command,
                args,
                env: s.env.clone(),
                cwd: s.cwd.clone(),
            }
        }
        (None, Some(command), None) => Transport::Stdio {
            command: command.clone(),
            args: s.args.clone(),
            env: s.env.clone(),
            cwd: s.cwd.clone(),
        },
        (None, None, Some(url)) => {
            let url = expand(url, lookup, &at("url"))?;
            let parsed = url::Url::parse(&url).map_err(|e| ConfigError {
                at: at("url"),
                message: format!("`{url}` is not a URL: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError {
                    at: at("url"),
                    message: format!("`{url}`: only http:// and https:// are supported"),
                });
            }
            match s.transport.as_deref() {
                None if parsed.path().ends_with("/sse") => Transport::Sse { url },
                None | Some("streamable-http" | "http") => Transport::Http { url },
                Some("sse") => Transport::Sse { url },
                Some(other) => {
                    return Err(ConfigError {
                        at: at("transport"),
                        message: format!("`{other}` is not one of: streamable-http, sse"),
                    });
                }
            }
        }
        (None, None, None) => {
            return Err(ConfigError {
                at: label.to_owned(),
                message: "says neither how to start nor where to reach the server: set `url`, `command` (with `args`) or `script_path`".into(),
            });
        }
        _ => {
            return Err(ConfigError {
                at: label.to_owned(),
                message: "set only one of `url`, `command` and `script_path`".into(),
            });
        }
    };
    if !matches!(transport, Transport::Stdio { .. })
        && (!s.env.is_empty() || !s.args.is_empty() || s.cwd.is_some())
    {
        return Err(ConfigError {
            at: label.to_owned(),
            message: "`env`, `args` and `cwd` apply to a started server (`command` or `script_path`), not to a `url`".into(),
        });
    }
    let mut headers = BTreeMap::new();
    for (k, v) in &s.headers {
        let value = expand(v, lookup, &at(&format!("headers.{k}")))?;
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(&value).is_err()
        {
            return Err(ConfigError {
                at: at(&format!("headers.{k}")),
                message: "is not a valid HTTP header name and value".into(),
            });
        }
        headers.insert(k.clone(), value);
    }
    if let Some(b) = &s.bearer {
        let token = expand(b, lookup, &at("bearer"))?;
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    if !headers.is_empty() && matches!(transport, Transport::Stdio { .. }) {
        return Err(ConfigError {
            at: at("headers"),
            message: "headers and bearer apply to a `url` server only".into(),
        });
    }
    // An empty namespace publishes names unchanged (one upstream, or a gateway
    // that must look exactly like its server).
    let namespace = s.namespace.clone().unwrap_or_else(|| s.name.clone());
    if !namespace.is_empty() && !valid_namespace(&namespace) {
        return Err(ConfigError {
            at: at(if s.namespace.is_some() {
                "namespace"
            } else {
                "name"
            }),
            message: format!(
                "`{namespace}` cannot prefix tool names: use letters, digits, `_`, `-` or `.` (or set `namespace`)"
            ),
        });
    }
    let timeout = match &s.timeout {
        Some(v) => duration(v, &at("timeout"))?,
        None => DEFAULT_TIMEOUT,
    };
    let health_check_interval = match &s.health_check_interval {
        Some(v) => duration(v, &at("health_check_interval"))?,
        None => DEFAULT_HEALTH_CHECK_INTERVAL,
    };
    let max_concurrency = s.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        return Err(ConfigError {
            at: at("max_concurrency"),
            message: "must be at least 1".into(),
        });
    }
    let era = match s.protocol.as_deref() {
        None | Some("auto") => Era::Auto,
        Some("2026-07-28" | "modern") => Era::Modern,
        Some("legacy" | "2025-11-25" | "2025-06-18" | "2025-03-26" | "2024-11-05") => Era::Legacy,
        Some(other) => {
            return Err(ConfigError {
                at: at("protocol"),
                message: format!("`{other}` is not one of: auto, 2026-07-28, legacy"),
            });
        }
    };
    Ok(UpstreamConfig {
        name: s.name,
        namespace,
        era,
        transport,
        headers,
        enabled: s.enabled,
        timeout,
        max_retries: s.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        health_check_interval,
        max_concurrency,
        metadata: s.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(text, false, &|name| {
            (name == "TOKEN").then(|| "s3cret".to_owned())
        })
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
        .unwrap();
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
            (
                r#"{"servers": [{"name": "a", "url": "http://x"}], "when_unhealthy": "panic"}"#,
                "when_unhealthy",
                "not one of",
            ),
            (r#"{"servers": [}"#, "line 1 column 14", "expected"),
        ];
        for (text, at, message) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.at, at, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }
}
