//! The client side: commands that talk to MCP servers from a terminal and
//! never serve (`wharf client`, here; `wharf chat`, `wharf eval`, `wharf
//! gateway status`). They never read the configuration or build an app: what
//! they need comes as arguments.
//!
//! `wharf client`: talk to any MCP server from a terminal, over stdio, Streamable
//! HTTP or HTTP+SSE, through the same upstream stack the gateway uses (timeout,
//! retries of safe calls, reconnection).
//!
//! The protocol era is detected once per origin (2026-07-28's `server/discover`,
//! then `initialize`) and remembered in `~/.cache/wharf/protocols.json`, so the
//! next run skips the probe; a remembered era that no longer works is detected
//! again.

use crate::output::say;
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, JsonObject,
    ReadResourceRequestParams, ReadResourceResponse, ResourceContents,
};
use serde_json::Value;
use wharf_gateway::{Era, Transport, Upstream, UpstreamConfig, UpstreamError};

pub(crate) mod chat;
pub(crate) mod eval;
pub(crate) mod llm;
pub(crate) mod status;

use crate::cli::{ClientAction, ClientArgs, ServerFlags};

/// Exit code of a call that reached the server and failed (a tool error).
const EXIT_TOOL_ERROR: u8 = 1;
/// Exit code when the server could not be reached or refused the request.
const EXIT_UNREACHABLE: u8 = 3;

/// Exit code of a command line that cannot be used.
const EXIT_USAGE: u8 = 2;

/// A command line that cannot be used with this server (exit [`EXIT_USAGE`]):
/// a tool it does not have, arguments that are not an object.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

macro_rules! usage {
    ($($t:tt)*) => { return Err(Usage(format!($($t)*)).into()) };
}

pub(crate) async fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let (upstream, info) = match connect(&args.server, wharf_gateway::UpstreamMetrics::new()).await
    {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let outcome = act(&upstream, &args, info.as_deref()).await;
    upstream.shutdown().await;
    match outcome {
        Ok(code) => Ok(code),
        // `| head` took what it wanted: not a failure to report.
        Err(e) if crate::output::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.downcast_ref::<Usage>().is_some();
            Ok(ExitCode::from(if usage {
                EXIT_USAGE
            } else {
                EXIT_UNREACHABLE
            }))
        }
    }
}

/// Connect to the server the flags name (remembering its era), or say why not
/// and return the exit code.
pub(crate) async fn connect(
    flags: &ServerFlags,
    metrics: wharf_gateway::UpstreamMetrics,
) -> Result<(Arc<Upstream>, Option<Arc<rmcp::model::ServerPeerInfo>>), ExitCode> {
    let (config, origin, remembered) = prepare(flags).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(EXIT_USAGE)
    })?;
    connect_prepared(flags, config, origin, remembered, metrics).await
}

/// The upstream the flags describe, the origin its era is remembered under, and that era.
fn prepare(args: &ServerFlags) -> anyhow::Result<(UpstreamConfig, Option<String>, Option<Era>)> {
    let (transport, origin) = transport(args)?;
    let remembered = origin.as_deref().and_then(remembered_era);
    let era = match args.protocol.as_deref() {
        None => remembered.unwrap_or(Era::Auto),
        Some("auto") => Era::Auto,
        Some("2026-07-28" | "modern") => Era::Modern,
        Some("legacy") => Era::Legacy,
        Some(other) => bail!("--protocol {other}: use auto, 2026-07-28 or legacy"),
    };
    let mut config = UpstreamConfig::new("server", transport);
    config.era = era;
    config.timeout = args.timeout.map_or(Duration::from_secs(30), Into::into);
    config.max_retries = args.retries;
    for h in &args.header {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h}: write it as Name: value");
        };
        config
            .headers
            .insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if let Some(token) = &args.bearer {
        config
            .headers
            .insert("authorization".into(), format!("Bearer {token}"));
    }
    if !config.headers.is_empty() && matches!(config.transport, Transport::Stdio { .. }) {
        bail!("--header and --bearer apply to --url and --sse servers, not --stdio");
    }
    Ok((config, origin, remembered))
}

async fn connect_prepared(
    args: &ServerFlags,
    mut config: UpstreamConfig,
    origin: Option<String>,
    remembered: Option<Era>,
    metrics: wharf_gateway::UpstreamMetrics,
) -> Result<(Arc<Upstream>, Option<Arc<rmcp::model::ServerPeerInfo>>), ExitCode> {
    let mut upstream = client(config.clone(), metrics.clone());
    let mut info = upstream.server_info().await;
    // A remembered era that no longer works: detect it again.
    if matches!(info, Err(UpstreamError::Connect { .. }))
        && args.protocol.is_none()
        && remembered.is_some()
    {
        config.era = Era::Auto;
        upstream = client(config, metrics);
        info = upstream.server_info().await;
    }
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_UNREACHABLE));
        }
    };
    if let (Some(origin), Some(info)) = (&origin, &info) {
        remember_era(origin, &info.protocol_version);
    }
    Ok((upstream, info))
}

fn client(config: UpstreamConfig, metrics: wharf_gateway::UpstreamMetrics) -> Arc<Upstream> {
    Arc::new(Upstream::new(
        config,
        wharf_gateway::BreakerConfig::default(),
        wharf_gateway::Backoff::default(),
        wharf_gateway::Backoff::default(),
        metrics,
    ))
}

fn transport(args: &ServerFlags) -> anyhow::Result<(Transport, Option<String>)> {
    match (&args.url, &args.stdio, &args.sse) {
        (Some(url), None, None) => {
            Ok((Transport::Http { url: url.clone() }, Some(origin_of(url)?)))
        }
        (None, None, Some(url)) => Ok((Transport::Sse { url: url.clone() }, None)),
        (None, Some(line), None) => {
            let mut words = shlex::split(line)
                .filter(|w| !w.is_empty())
                .with_context(|| format!("--stdio {line:?}: unbalanced quotes"))?;
            if words.is_empty() {
                bail!("--stdio needs a command, e.g. --stdio \"python3 server.py\"");
            }
            let command = words.remove(0);
            Ok((
                Transport::Stdio {
                    command,
                    args: words,
                    env: BTreeMap::new(),
                    cwd: None,
                },
                None,
            ))
        }
        (None, None, None) => {
            bail!(
                "say which server: --url http://host/mcp, --sse http://host/sse or --stdio \"command args\" (`wharf chat` with none uses the gateway file: config/mcp.json, or MCP_CONFIG_PATH)"
            )
        }
        _ => bail!("give only one of --url, --sse and --stdio"),
    }
}

fn origin_of(url: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("--url {url} is not a URL"))?;
    Ok(u.origin().ascii_serialization())
}

fn era_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wharf").join("protocols.json"))
}

fn eras() -> BTreeMap<String, String> {
    era_file()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn remembered_era(origin: &str) -> Option<Era> {
    match eras().get(origin).map(String::as_str) {
        Some("2026-07-28") => Some(Era::Modern),
        Some("legacy") => Some(Era::Legacy),
        _ => None,
    }
}

/// Best effort: a read-only home only means the next run probes again.
fn remember_era(origin: &str, version: &rmcp::model::ProtocolVersion) {
    let Some(path) = era_file() else { return };
    let era = if *version >= rmcp::model::ProtocolVersion::V_2026_07_28 {
        "2026-07-28"
    } else {
        "legacy"
    };
    let mut all = eras();
    if all.get(origin).map(String::as_str) == Some(era) {
        return;
    }
    all.insert(origin.to_owned(), era.to_owned());
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string_pretty(&all) {
        let _ = std::fs::write(path, text);
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// `--arg k=v` values: typed by the tool's schema when it says (a string stays
/// a string), else read as JSON when they parse (42, true, [1]) and as text when not.
fn arguments(
    pairs: &[String],
    json: Option<&str>,
    schema: Option<&JsonObject>,
) -> anyhow::Result<JsonObject> {
    let mut args = match json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => usage!("--json must be an object, e.g. '{{\"query\": \"tea\"}}'"),
            Err(e) => usage!("--json {text}: not JSON ({e})"),
        },
        None => JsonObject::new(),
    };
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            usage!("--arg {pair}: write it as name=value");
        };
        let declared = schema
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(k))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        let value = match declared {
            Some("string") => Value::String(v.to_owned()),
            _ => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned())),
        };
        args.insert(k.to_owned(), value);
    }
    Ok(args)
}

async fn act(
    up: &Upstream,
    args: &ClientArgs,
    info: Option<&rmcp::model::ServerPeerInfo>,
) -> anyhow::Result<ExitCode> {
    let json = args.json_output;
    match &args.action {
        ClientAction::Discover => {
            let Some(info) = info else {
                bail!("the server said nothing about itself")
            };
            if json {
                print_json(info)?;
            } else {
                let name = info
                    .server_info
                    .as_ref()
                    .map_or("?".into(), |s| format!("{} {}", s.name, s.version));
                say!("server:   {name}")?;
                say!("protocol: {}", info.protocol_version)?;
                let caps = serde_json::to_value(&info.capabilities)?;
                let keys: Vec<_> = caps
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                say!("offers:   {}", keys.join(", "))?;
                if let Some(i) = &info.instructions {
                    say!("instructions:\n  {}", i.replace('\n', "\n  "))?;
                }
            }
        }
        ClientAction::Tools => {
            let tools = up.list_tools().await?;
            if json {
                print_json(&tools)?;
            } else {
                for t in &tools {
                    say!("{}", t.name)?;
                    if let Some(d) = &t.description {
                        say!("    {}", d.lines().next().unwrap_or(""))?;
                    }
                    let required: Vec<&str> = t
                        .input_schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if let Some(props) = t.input_schema.get("properties").and_then(Value::as_object)
                    {
                        for (name, p) in props {
                            let kind = p.get("type").and_then(Value::as_str).unwrap_or("any");
                            let mark = if required.contains(&name.as_str()) {
                                ""
                            } else {
                                "?"
                            };
                            say!("    --arg {name}{mark}=<{kind}>")?;
                        }
                    }
                }
                eprintln!("{} tool(s)", tools.len());
            }
        }
        ClientAction::Call { name, arg, json: j } => {
            let tools = up.list_tools().await?;
            let tool = tools.iter().find(|t| t.name == *name);
            if tool.is_none() {
                let known: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
                usage!(
                    "the server has no tool `{name}`; it has: {}",
                    known.join(", ")
                );
            }
            let arguments = arguments(arg, j.as_deref(), tool.map(|t| &*t.input_schema))?;
            let idempotent = tool.is_some_and(wharf_gateway::safe_to_repeat);
            let params = CallToolRequestParams::new(name.clone()).with_arguments(arguments);
            let response = up
                .call("tools/call", idempotent, |c| {
                    let p = params.clone();
                    async move { c.call_tool_once(p).await }
                })
                .await?;
            let CallToolResponse::Complete(result) = response else {
                bail!("the tool asked for input (input_required); `wharf client` cannot answer it");
            };
            if json {
                print_json(&result)?;
            } else {
                for c in &result.content {
                    match c.as_text() {
                        Some(t) => say!("{}", t.text)?,
                        None => say!("{}", serde_json::to_string(c)?)?,
                    }
                }
                if let Some(sc) = &result.structured_content {
                    say!("structured content:\n{}", serde_json::to_string_pretty(sc)?)?;
                }
            }
            if result.is_error == Some(true) {
                return Ok(ExitCode::from(EXIT_TOOL_ERROR));
            }
        }
        ClientAction::Resources => {
            let resources = up
                .call("resources/list", true, |c| async move {
                    c.list_all_resources().await
                })
                .await?;
            let templates = up
                .call("resources/templates/list", true, |c| async move {
                    c.list_all_resource_templates().await
                })
                .await
                .unwrap_or_default();
            if json {
                print_json(
                    &serde_json::json!({"resources": resources, "resourceTemplates": templates}),
                )?;
            } else {
                for r in &resources {
                    say!(
                        "{}  {}  {}",
                        r.uri,
                        r.mime_type.as_deref().unwrap_or("-"),
                        r.name
                    )?;
                }
                for t in &templates {
                    say!("{}  (template)  {}", t.uri_template, t.name)?;
                }
                eprintln!(
                    "{} resource(s), {} template(s)",
                    resources.len(),
                    templates.len()
                );
            }
        }
        ClientAction::Read { uri } => {
            let params = ReadResourceRequestParams::new(uri.clone());
            let response = up
                .call("resources/read", true, |c| {
                    let p = params.clone();
                    async move { c.read_resource_once(p).await }
                })
                .await?;
            let ReadResourceResponse::Complete(result) = response else {
                bail!("the server asked for input (input_required)");
            };
            if json {
                print_json(&result)?;
            } else {
                for c in &result.contents {
                    match c {
                        ResourceContents::TextResourceContents { text, .. } => say!("{text}")?,
                        ResourceContents::BlobResourceContents {
                            blob, mime_type, ..
                        } => say!(
                            "<{} bytes of base64, {}>",
                            blob.len(),
                            mime_type.as_deref().unwrap_or("binary")
                        )?,
                        other => say!("{}", serde_json::to_string(other)?)?,
                    }
                }
            }
        }
        ClientAction::Prompts => {
            let prompts = up
                .call("prompts/list", true, |c| async move {
                    c.list_all_prompts().await
                })
                .await?;
            if json {
                print_json(&prompts)?;
            } else {
                for p in &prompts {
                    let args: Vec<String> = p
                        .arguments
                        .iter()
                        .flatten()
                        .map(|a| {
                            format!(
                                "{}{}",
                                a.name,
                                if a.required == Some(true) { "" } else { "?" }
                            )
                        })
                        .collect();
                    say!("{}  ({})", p.name, args.join(", "))?;
                    if let Some(d) = &p.description {
                        say!("    {d}")?;
                    }
                }
                eprintln!("{} prompt(s)", prompts.len());
            }
        }
        ClientAction::GetPrompt { name, arg } => {
            let mut map = JsonObject::new();
            for pair in arg {
                let Some((k, v)) = pair.split_once('=') else {
                    usage!("--arg {pair}: write it as name=value");
                };
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            let params = GetPromptRequestParams::new(name.clone()).with_arguments(map);
            let response = up
                .call("prompts/get", true, |c| {
                    let p = params.clone();
                    async move { c.get_prompt_once(p).await }
                })
                .await?;
            let GetPromptResponse::Complete(result) = response else {
                bail!("the server asked for input (input_required)");
            };
            if json {
                print_json(&result)?;
            } else {
                for m in &result.messages {
                    let v = serde_json::to_value(m)?;
                    let role = v["role"].as_str().unwrap_or("?");
                    let text = v["content"]["text"]
                        .as_str()
                        .map_or_else(|| v["content"].to_string(), str::to_owned);
                    say!("[{role}] {text}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
