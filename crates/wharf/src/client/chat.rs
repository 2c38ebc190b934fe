//! `wharf chat`: a terminal chat whose model can call the tools of one MCP
//! server (or of a gateway). The tool-use loop: the model asks for tools, Wharf
//! calls them through the upstream stack, the results go back, until the model
//! answers in text. Slash commands work without a model: `/tools`, `/call`,
//! `/metrics`, `/quit`.

use crate::output::say;
use std::{collections::HashMap, process::ExitCode, sync::Arc};

use rmcp::model::{CallToolRequestParams, CallToolResponse, JsonObject, Tool};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use wharf_gateway::{Upstream, UpstreamMetrics};

use crate::cli::ChatArgs;

use super::llm::{Provider, Reply, ToolCall, ToolDef, Turn};

/// Tool rounds per user message before the loop stops and says so.
const MAX_TOOL_ROUNDS: usize = 8;
/// Characters of a tool result shown on the terminal (the model gets all of it).
const SHOWN_RESULT_CHARS: usize = 400;

pub(crate) const SYSTEM: &str = "You are a helpful assistant. Use the tools when they help answer the user; \
answer in plain text when they do not.";

/// The server's tools, named for the model. Provider tool names allow
/// `[A-Za-z0-9_-]`; MCP names may also have dots, so those are mapped.
pub(crate) struct Toolbox {
    pub defs: Vec<ToolDef>,
    to_mcp: HashMap<String, String>,
    tools: Vec<Tool>,
}

impl Toolbox {
    pub(crate) fn new(tools: Vec<Tool>) -> Self {
        let mut to_mcp = HashMap::new();
        let defs = tools
            .iter()
            .map(|t| {
                let name: String = t
                    .name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                to_mcp.insert(name.clone(), t.name.to_string());
                ToolDef {
                    name,
                    description: t.description.as_deref().unwrap_or("").to_owned(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                }
            })
            .collect();
        Self {
            defs,
            to_mcp,
            tools,
        }
    }

    /// The MCP name of a tool the model named.
    pub(crate) fn mcp_name<'a>(&'a self, model_name: &'a str) -> &'a str {
        self.to_mcp
            .get(model_name)
            .map_or(model_name, String::as_str)
    }

    fn idempotent(&self, mcp_name: &str) -> bool {
        self.tools
            .iter()
            .find(|t| t.name == mcp_name)
            .is_some_and(wharf_gateway::safe_to_repeat)
    }
}

/// Call one tool through the upstream stack: (text for the model, is_error).
pub(crate) async fn call_tool(
    up: &Upstream,
    tools: &Toolbox,
    name: &str,
    args: Value,
) -> (String, bool) {
    let mcp = tools.mcp_name(name).to_owned();
    let arguments = match args {
        Value::Object(o) => o,
        Value::Null => JsonObject::new(),
        other => {
            return (
                format!("the arguments must be a JSON object, not {other}"),
                true,
            );
        }
    };
    let params = CallToolRequestParams::new(mcp.clone()).with_arguments(arguments);
    let outcome = up
        .call("tools/call", tools.idempotent(&mcp), |c| {
            let p = params.clone();
            async move { c.call_tool_once(p).await }
        })
        .await;
    match outcome {
        Ok(CallToolResponse::Complete(r)) => {
            let mut text: Vec<String> = r
                .content
                .iter()
                .map(|c| match c.as_text() {
                    Some(t) => t.text.clone(),
                    None => serde_json::to_string(c).unwrap_or_default(),
                })
                .collect();
            if let Some(sc) = &r.structured_content {
                text.push(sc.to_string());
            }
            (text.join("\n"), r.is_error == Some(true))
        }
        Ok(_) => (
            "the tool asked for input, which this chat cannot give".into(),
            true,
        ),
        Err(e) => (e.to_string(), true),
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_RESULT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The tool-use loop for one user message; prints as it goes.
async fn answer(
    provider: &Provider,
    up: &Upstream,
    tools: &Toolbox,
    turns: &mut Vec<Turn>,
) -> anyhow::Result<()> {
    for _ in 0..MAX_TOOL_ROUNDS {
        let Reply { text, calls } = provider.complete(SYSTEM, turns, &tools.defs).await?;
        if !text.is_empty() {
            say!("assistant> {text}")?;
        }
        turns.push(Turn::Assistant {
            text,
            calls: calls.clone(),
        });
        if calls.is_empty() {
            return Ok(());
        }
        let mut results = Vec::new();
        for ToolCall {
            id,
            name,
            arguments,
        } in calls
        {
            say!("  [tool] {} {}", tools.mcp_name(&name), arguments)?;
            let (text, is_error) = call_tool(up, tools, &name, arguments).await;
            say!(
                "  [{}] {}",
                if is_error { "error" } else { "result" },
                shorten(&text)
            )?;
            results.push((id, text, is_error));
        }
        turns.push(Turn::ToolResults(results));
    }
    say!("(stopped after {MAX_TOOL_ROUNDS} tool rounds)")?;
    Ok(())
}

fn metrics_table(registry: &prometheus::Registry, model_turns: u64) -> std::io::Result<()> {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default();
    for r in super::status::rows(&text) {
        say!(
            "calls {}  failed {}  retries {}  reconnects {}  mean {} ms  breaker {}  model turns {model_turns}",
            r.calls,
            r.failed,
            r.retries,
            r.reconnects,
            r.mean_ms.map_or("-".into(), |m| format!("{m:.1}")),
            r.breaker
        )?;
    }
    Ok(())
}

pub(crate) async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let metrics = UpstreamMetrics::new();
    let registry = prometheus::Registry::new_custom(Some("wharf".into()), None)?;
    for c in metrics.collectors() {
        registry.register(c)?;
    }
    let (up, info) = match super::connect(&args.server, metrics).await {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let listed = up.list_tools().await?;
    let tools = Arc::new(Toolbox::new(listed));
    let provider =
        super::llm::from_env(args.model.provider.as_deref(), args.model.model.as_deref());
    let server = info
        .as_ref()
        .and_then(|i| i.server_info.as_ref())
        .map_or("the server".to_owned(), |s| s.name.clone());
    say!("Connected to {server}: {} tool(s).", tools.defs.len())?;
    match &provider {
        Ok(p) => say!(
            "Model: {} ({:?}). /tools, /call NAME {{json}}, /metrics, /quit.",
            p.model,
            p.kind
        )?,
        Err(why) => say!(
            "{why}.\nWithout a model, /tools, /call NAME {{json}}, /metrics and /quit still work."
        )?,
    }
    let mut turns = Vec::new();
    let mut model_turns = 0u64;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    loop {
        out.write_all(b"you> ").await?;
        out.flush().await?;
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
            match name {
                "quit" | "exit" => break,
                "tools" => {
                    for d in &tools.defs {
                        say!(
                            "  {}  {}",
                            tools.mcp_name(&d.name),
                            d.description.lines().next().unwrap_or("")
                        )?;
                    }
                }
                "call" => {
                    let (tool, json) = rest.trim().split_once(' ').unwrap_or((rest.trim(), "{}"));
                    if tool.is_empty() {
                        say!("usage: /call NAME {{\"arg\": \"value\"}}")?;
                        continue;
                    }
                    match serde_json::from_str::<Value>(json) {
                        Ok(args) => {
                            let (text, is_error) = call_tool(&up, &tools, tool, args).await;
                            say!("[{}] {text}", if is_error { "error" } else { "result" })?;
                        }
                        Err(e) => say!("the arguments are not JSON: {e}")?,
                    }
                }
                "metrics" => metrics_table(&registry, model_turns)?,
                other => say!("unknown command /{other}: /tools, /call, /metrics, /quit")?,
            }
            continue;
        }
        let Ok(provider) = &provider else {
            say!(
                "No model is configured: set ANTHROPIC_API_KEY or OPENAI_API_KEY. /call still works."
            )?;
            continue;
        };
        turns.push(Turn::User(line.to_owned()));
        let before = turns.len();
        if let Err(e) = answer(provider, &up, &tools, &mut turns).await {
            say!("error: {e:#}")?;
            // Keep the conversation consistent: drop the unanswered message.
            turns.truncate(before - 1);
        }
        model_turns += turns
            .iter()
            .skip(before.saturating_sub(1))
            .filter(|t| matches!(t, Turn::Assistant { .. }))
            .count() as u64;
    }
    up.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
