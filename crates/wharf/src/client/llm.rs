//! Language-model providers for `wharf chat` and `wharf eval`: the Anthropic
//! Messages API and OpenAI-compatible chat completions (OpenAI, and local
//! servers such as Ollama or vLLM through `OPENAI_BASE_URL`), behind one small
//! conversation model. Requests are plain JSON over reqwest (no streaming);
//! 429 and 5xx answers are retried with jittered backoff, honouring `Retry-After`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Retries of a provider request refused with 429 or 5xx.
const MAX_RETRIES: u32 = 4;
/// Longest a provider request may take (models can be slow; a hung one is not waited for).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Tokens a reply may use.
const MAX_TOKENS: u32 = 1024;

pub(crate) const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
pub(crate) const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// A tool as the model sees it.
#[derive(Debug, Clone)]
pub(crate) struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// The model asked for a tool.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// One step of the conversation, in the provider-neutral form.
#[derive(Debug, Clone)]
pub(crate) enum Turn {
    User(String),
    Assistant {
        text: String,
        calls: Vec<ToolCall>,
    },
    /// (call id, result text, is_error)
    ToolResults(Vec<(String, String, bool)>),
}

/// What the model answered: text, tool calls, or both.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    pub text: String,
    pub calls: Vec<ToolCall>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Anthropic,
    OpenAi,
}

/// A configured provider.
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub kind: Kind,
    pub model: String,
    key: String,
    base: String,
    http: reqwest::Client,
}

/// Which provider the environment allows, or the sentence saying how to get one.
pub(crate) fn from_env(choice: Option<&str>, model: Option<&str>) -> Result<Provider, String> {
    let anthropic = std::env::var("ANTHROPIC_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let openai = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let kind = match choice {
        Some("anthropic") => Kind::Anthropic,
        Some("openai") => Kind::OpenAi,
        Some(other) => return Err(format!("--provider {other}: use anthropic or openai")),
        None if anthropic.is_some() => Kind::Anthropic,
        None if openai.is_some() => Kind::OpenAi,
        None => {
            return Err("no model provider: set ANTHROPIC_API_KEY (Anthropic), or OPENAI_API_KEY (OpenAI; with OPENAI_BASE_URL for Ollama, vLLM or another compatible server)".into());
        }
    };
    let (key, base, default_model) = match kind {
        Kind::Anthropic => (
            anthropic.ok_or("--provider anthropic needs ANTHROPIC_API_KEY")?,
            std::env::var("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|_| "https://api.anthropic.com".into()),
            DEFAULT_ANTHROPIC_MODEL,
        ),
        Kind::OpenAi => (
            openai
                .ok_or("--provider openai needs OPENAI_API_KEY (any value for a local server)")?,
            std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into()),
            DEFAULT_OPENAI_MODEL,
        ),
    };
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Provider {
        kind,
        model: model.unwrap_or(default_model).to_owned(),
        key,
        base: base.trim_end_matches('/').to_owned(),
        http,
    })
}

impl Provider {
    /// One model turn over the conversation so far.
    pub(crate) async fn complete(
        &self,
        system: &str,
        turns: &[Turn],
        tools: &[ToolDef],
    ) -> anyhow::Result<Reply> {
        let (url, body) = match self.kind {
            Kind::Anthropic => (
                format!("{}/v1/messages", self.base),
                anthropic_body(&self.model, system, turns, tools),
            ),
            Kind::OpenAi => (
                format!("{}/chat/completions", self.base),
                openai_body(&self.model, system, turns, tools),
            ),
        };
        let answer = self.post(&url, &body).await?;
        match self.kind {
            Kind::Anthropic => anthropic_reply(&answer),
            Kind::OpenAi => openai_reply(&answer),
        }
    }

    async fn post(&self, url: &str, body: &Value) -> anyhow::Result<Value> {
        let backoff = wharf_gateway::Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
        };
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(url).json(body);
            request = match self.kind {
                Kind::Anthropic => request
                    .header("x-api-key", &self.key)
                    .header("anthropic-version", "2023-06-01"),
                Kind::OpenAi => request.bearer_auth(&self.key),
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text)
                    .with_context(|| format!("{url} answered with something that is not JSON"));
            }
            let retryable = status.as_u16() == 429 || status.is_server_error();
            if retryable && attempt < MAX_RETRIES {
                let wait = retry_after.unwrap_or_else(|| backoff.delay(attempt));
                tracing::warn!(
                    status = status.as_u16(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "provider busy; retrying"
                );
                attempt += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{url} answered {status}: {message}");
        }
    }
}

fn anthropic_body(model: &str, system: &str, turns: &[Turn], tools: &[ToolDef]) -> Value {
    let messages: Vec<Value> = turns
        .iter()
        .map(|t| match t {
            Turn::User(text) => json!({"role": "user", "content": [{"type": "text", "text": text}]}),
            Turn::Assistant { text, calls } => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
                for c in calls {
                    content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                }
                json!({"role": "assistant", "content": content})
            }
            Turn::ToolResults(results) => json!({
                "role": "user",
                "content": results.iter().map(|(id, text, is_error)| json!({
                    "type": "tool_result", "tool_use_id": id, "content": text, "is_error": is_error
                })).collect::<Vec<_>>()
            }),
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": system,
        "messages": messages,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
    }
    body
}

fn anthropic_reply(answer: &Value) -> anyhow::Result<Reply> {
    let Some(content) = answer["content"].as_array() else {
        bail!("the Anthropic answer has no `content`: {answer}");
    };
    let mut reply = Reply::default();
    for block in content {
        match block["type"].as_str() {
            Some("text") => reply.text.push_str(block["text"].as_str().unwrap_or("")),
            Some("tool_use") => reply.calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].clone(),
            }),
            _ => {}
        }
    }
    Ok(reply)
}

fn openai_body(model: &str, system: &str, turns: &[Turn], tools: &[ToolDef]) -> Value {
    let mut messages = vec![json!({"role": "system", "content": system})];
    for t in turns {
        match t {
            Turn::User(text) => messages.push(json!({"role": "user", "content": text})),
            Turn::Assistant { text, calls } => {
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = calls
                        .iter()
                        .map(|c| {
                            json!({
                                "id": c.id, "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments.to_string()}
                            })
                        })
                        .collect();
                }
                messages.push(m);
            }
            Turn::ToolResults(results) => {
                for (id, text, _) in results {
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                }
            }
        }
    }
    let mut body = json!({"model": model, "max_tokens": MAX_TOKENS, "messages": messages});
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema
                }})
            })
            .collect();
    }
    body
}

fn openai_reply(answer: &Value) -> anyhow::Result<Reply> {
    let message = &answer["choices"][0]["message"];
    if message.is_null() {
        bail!("the answer has no `choices[0].message`: {answer}");
    }
    let mut reply = Reply {
        text: message["content"].as_str().unwrap_or("").to_owned(),
        calls: Vec::new(),
    };
    for c in message["tool_calls"].as_array().into_iter().flatten() {
        let raw = c["function"]["arguments"].as_str().unwrap_or("{}");
        reply.calls.push(ToolCall {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            // A model can send arguments that are not JSON; the tool's validation says so.
            arguments: serde_json::from_str(raw).unwrap_or(Value::String(raw.to_owned())),
        });
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns() -> Vec<Turn> {
        vec![
            Turn::User("add 2 and 3".into()),
            Turn::Assistant {
                text: String::new(),
                calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "add".into(),
                    arguments: json!({"a": 2, "b": 3}),
                }],
            },
            Turn::ToolResults(vec![("c1".into(), "5".into(), false)]),
        ]
    }

    #[test]
    fn the_anthropic_wire_format() {
        let body = anthropic_body("m", "sys", &turns(), &[]);
        assert_eq!(body["system"], "sys");
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(body["messages"][1]["content"][0]["input"]["a"], 2);
        assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "c1");
        let reply = anthropic_reply(&json!({"content": [
            {"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "t", "name": "add", "input": {"a": 1}}
        ], "stop_reason": "tool_use"}))
        .unwrap();
        assert_eq!(reply.text, "Let me add.");
        assert_eq!(reply.calls[0].arguments["a"], 1);
    }

    #[test]
    fn the_openai_wire_format() {
        let body = openai_body("m", "sys", &turns(), &[]);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":2,\"b\":3}"
        );
        assert_eq!(body["messages"][3]["role"], "tool");
        let reply = openai_reply(&json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}
        ]}}]}))
        .unwrap();
        assert_eq!(reply.calls[0].arguments["a"], 1);
    }
}
