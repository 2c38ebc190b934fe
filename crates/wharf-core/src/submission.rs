//! `wharf check --submission`: the app-submission rules a ChatGPT app reviewer
//! applies, checked against an [`App`] before anyone submits it.
//!
//! Each [`Finding`] names what it is about and says what to change. The rules
//! read only what the app publishes (tool definitions, widget resources) and the
//! public URL it will be reached at; the size of structured content is bounded
//! statically through the output schema (every list must declare `maxItems`)
//! and, at run time, by `App::call_tool`'s warning past
//! [`STRUCTURED_CONTENT_BUDGET`].

use std::fmt;

use rmcp::model::Tool;
use serde_json::Value;

use crate::{App, widget::MAX_INVOCATION_CHARS};

/// Above this many bytes of `structuredContent`, a result is too big for the
/// model's context and the widget's first paint; put bulk data in `_meta`.
pub const STRUCTURED_CONTENT_BUDGET: usize = 64 * 1024;

/// One rule an app breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What the finding is about: "tool `x`", "widget `ui://...`", "server.public_url".
    pub subject: String,
    /// What is wrong and what to change.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// Every submission rule `app` breaks when served at `public_url`.
pub fn lint(app: &App, public_url: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    lint_public_url(public_url, &mut out);
    let offer = app.offer();
    for t in offer.tools() {
        lint_tool(t.definition(), &mut out);
    }
    for r in offer.resources() {
        let def = r.definition();
        let is_widget = def.uri.starts_with("ui://")
            || def
                .mime_type
                .as_deref()
                .is_some_and(|m| m.starts_with("text/html"));
        if is_widget {
            let meta = def.meta.as_ref().map(|m| &m.0);
            lint_widget(&def.uri, meta, &mut out);
        }
    }
    out
}

fn finding(out: &mut Vec<Finding>, subject: impl Into<String>, message: impl Into<String>) {
    out.push(Finding {
        subject: subject.into(),
        message: message.into(),
    });
}

fn lint_public_url(url: Option<&str>, out: &mut Vec<Finding>) {
    const SUBJECT: &str = "server.public_url";
    let Some(url) = url else {
        finding(
            out,
            SUBJECT,
            "is not set: set it (or WHARF_PUBLIC_URL) to the HTTPS URL ChatGPT will reach, such as https://mcp.example.com/mcp",
        );
        return;
    };
    let Some(rest) = url.strip_prefix("https://") else {
        finding(
            out,
            SUBJECT,
            format!(
                "`{url}` is not HTTPS: ChatGPT connects only over HTTPS; put TLS in front (docs/deploy.md) and use the https:// URL"
            ),
        );
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    }
    .to_ascii_lowercase();
    let local = host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host.starts_with("127.")
        || host == "0.0.0.0"
        || host.starts_with("10.")
        || host.starts_with("192.168.")
        || host.is_empty();
    if local {
        finding(
            out,
            SUBJECT,
            format!(
                "`{url}` is not reachable from ChatGPT: use the public hostname, not localhost or a private address"
            ),
        );
    }
}

fn lint_tool(tool: &Tool, out: &mut Vec<Finding>) {
    let subject = format!("tool `{}`", tool.name);
    if tool
        .description
        .as_deref()
        .is_none_or(|d| d.trim().is_empty())
    {
        finding(
            out,
            &subject,
            "has no description: say what it does and when to use it (\"Use this when…\"); models choose tools by it",
        );
    }
    match &tool.annotations {
        None => finding(
            out,
            &subject,
            "has no annotations: set readOnlyHint, destructiveHint and openWorldHint so the host knows whether to ask the user first",
        ),
        Some(a) => {
            for (name, value) in [
                ("readOnlyHint", a.read_only_hint),
                ("destructiveHint", a.destructive_hint),
                ("openWorldHint", a.open_world_hint),
            ] {
                if value.is_none() {
                    finding(
                        out,
                        &subject,
                        format!(
                            "does not set the {name} annotation: set it explicitly, true or false"
                        ),
                    );
                }
            }
            if a.read_only_hint == Some(true) && a.destructive_hint == Some(true) {
                finding(
                    out,
                    &subject,
                    "claims readOnlyHint and destructiveHint at once: a tool that can delete or overwrite is not read-only; set readOnlyHint false",
                );
            }
        }
    }
    let meta = tool.meta.as_ref().map(|m| &m.0);
    for key in [
        "openai/toolInvocation/invoking",
        "openai/toolInvocation/invoked",
    ] {
        if let Some(text) = meta.and_then(|m| m.get(key)).and_then(Value::as_str) {
            let n = text.chars().count();
            if n > MAX_INVOCATION_CHARS {
                finding(
                    out,
                    &subject,
                    format!(
                        "`{key}` is {n} characters; ChatGPT shows at most {MAX_INVOCATION_CHARS}: shorten it"
                    ),
                );
            }
        }
    }
    let renders = meta
        .and_then(|m| m.get("ui"))
        .and_then(|ui| ui.get("resourceUri"))
        .is_some();
    if renders {
        match &tool.output_schema {
            None => finding(
                out,
                &subject,
                "renders a widget but declares no outputSchema: declare the shape of structuredContent so its size is bounded and the widget can rely on it",
            ),
            Some(schema) => {
                let mut unbounded = Vec::new();
                unbounded_lists(&Value::Object((**schema).clone()), "", &mut unbounded);
                for path in unbounded {
                    finding(
                        out,
                        &subject,
                        format!(
                            "structuredContent list `{path}` has no maxItems: bound it (and page the rest with a cursor) so results stay under {} KiB",
                            STRUCTURED_CONTENT_BUDGET / 1024
                        ),
                    );
                }
            }
        }
    }
}

/// The paths of arrays in `schema` that declare no `maxItems`. `$ref`s into
/// `$defs` are followed once (schemars puts nested types there).
fn unbounded_lists(schema: &Value, path: &str, out: &mut Vec<String>) {
    fn walk(node: &Value, root: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
        if depth > 8 {
            return;
        }
        let Some(obj) = node.as_object() else { return };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if let Some(name) = r.strip_prefix("#/$defs/")
                && let Some(target) = root.get("$defs").and_then(|d| d.get(name))
            {
                walk(target, root, path, depth + 1, out);
            }
            return;
        }
        let is_array = match obj.get("type") {
            Some(Value::String(t)) => t == "array",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
            _ => false,
        };
        if is_array {
            if !obj.contains_key("maxItems") {
                out.push(if path.is_empty() {
                    "(root)".into()
                } else {
                    path.to_owned()
                });
            }
            if let Some(items) = obj.get("items") {
                walk(items, root, &format!("{path}[]"), depth + 1, out);
            }
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, root, &p, depth + 1, out);
            }
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(alts)) = obj.get(key) {
                for alt in alts {
                    walk(alt, root, path, depth + 1, out);
                }
            }
        }
    }
    walk(schema, schema, path, 0, out);
}

fn lint_widget(uri: &str, meta: Option<&serde_json::Map<String, Value>>, out: &mut Vec<Finding>) {
    let subject = format!("widget `{uri}`");
    let Some(csp) = meta
        .and_then(|m| m.get("openai/widgetCSP"))
        .and_then(Value::as_object)
    else {
        finding(
            out,
            &subject,
            "declares no CSP (openai/widgetCSP): declare one, with empty lists if the widget reaches nothing; publish widgets with wharf_core::Widget",
        );
        return;
    };
    for (field, list) in csp {
        for d in list.as_array().into_iter().flatten() {
            let d = d.as_str().unwrap_or_default();
            if d.contains('*') {
                finding(
                    out,
                    &subject,
                    format!(
                        "CSP {field} has the wildcard `{d}`: list each exact origin the widget reaches"
                    ),
                );
            } else if !(d.starts_with("https://") || d.starts_with("wss://")) {
                finding(
                    out,
                    &subject,
                    format!(
                        "CSP {field} has `{d}`, which is not an https:// or wss:// origin: use the exact secure origin"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ToolAnnotations;
    use serde_json::json;

    use super::*;
    use crate::{ToolSpec, Widget, WidgetCsp};

    fn good_tool(name: &str) -> ToolSpec {
        ToolSpec::new(name)
            .description("Use this when testing.")
            .read_only()
    }

    fn lint_of(builder: crate::AppBuilder, url: Option<&str>) -> Vec<String> {
        lint(&builder.build().unwrap(), url)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const URL: Option<&str> = Some("https://mcp.example.com/mcp");

    #[test]
    fn a_clean_app_has_no_findings() {
        let w = Widget::new("ui://t/w.html", "w", "<p>").csp(WidgetCsp {
            resource_domains: vec!["https://cdn.example.com".into()],
            ..Default::default()
        });
        let tool = good_tool("show")
            .widget(&w)
            .invocation("Showing…", "Shown")
            .output_schema(
                json!({"type": "object", "properties": {"rows": {"type": "array", "maxItems": 10}}})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
        assert_eq!(
            lint_of(App::builder("t", "1").widget(&w).tool(tool), URL),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_public_url_must_be_https_and_public() {
        let b = || App::builder("t", "1");
        assert!(lint_of(b(), None)[0].starts_with("server.public_url: is not set"));
        assert!(lint_of(b(), Some("http://mcp.example.com/mcp"))[0].contains("is not HTTPS"));
        for local in [
            "https://localhost:8000/mcp",
            "https://127.0.0.1/mcp",
            "https://[::1]:8443/mcp",
            "https://app.localhost/mcp",
            "https://192.168.1.4/mcp",
        ] {
            let f = lint_of(b(), Some(local));
            assert_eq!(f.len(), 1, "{local}: {f:?}");
            assert!(
                f[0].contains("not reachable from ChatGPT"),
                "{local}: {f:?}"
            );
        }
        assert!(lint_of(b(), Some("https://mcp.example.com:8443/mcp")).is_empty());
    }

    #[test]
    fn tools_need_a_description_and_every_annotation() {
        let bare = ToolSpec::new("bare");
        let mut partial = ToolAnnotations::default();
        partial.read_only_hint = Some(true);
        let half = ToolSpec::new("half")
            .description("Use this.")
            .annotations(partial);
        let f = lint_of(App::builder("t", "1").tool(bare).tool(half), URL);
        assert_eq!(
            f,
            [
                "tool `bare`: has no description: say what it does and when to use it (\"Use this when…\"); models choose tools by it",
                "tool `bare`: has no annotations: set readOnlyHint, destructiveHint and openWorldHint so the host knows whether to ask the user first",
                "tool `half`: does not set the destructiveHint annotation: set it explicitly, true or false",
                "tool `half`: does not set the openWorldHint annotation: set it explicitly, true or false",
            ]
        );
    }

    #[test]
    fn read_only_and_destructive_contradict() {
        let mut a = ToolAnnotations::default();
        a.read_only_hint = Some(true);
        a.destructive_hint = Some(true);
        a.open_world_hint = Some(false);
        let t = ToolSpec::new("wipe")
            .description("Use this.")
            .annotations(a);
        let f = lint_of(App::builder("t", "1").tool(t), URL);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains("claims readOnlyHint and destructiveHint at once"),
            "{f:?}"
        );
    }

    #[test]
    fn invocation_strings_longer_than_64_characters_are_found() {
        let long = "é".repeat(65);
        let t = good_tool("slow").invocation(long, "x".repeat(64));
        let f = lint_of(App::builder("t", "1").tool(t), URL);
        assert_eq!(
            f,
            [
                "tool `slow`: `openai/toolInvocation/invoking` is 65 characters; ChatGPT shows at most 64: shorten it"
            ]
        );
    }

    #[test]
    fn widget_csp_needs_exact_secure_origins() {
        let w = Widget::new("ui://t/w.html", "w", "<p>").csp(WidgetCsp {
            connect_domains: vec!["https://*.example.com".into()],
            resource_domains: vec!["http://cdn.example.com".into()],
            ..Default::default()
        });
        let f = lint_of(App::builder("t", "1").widget(&w), URL);
        // Both resources (MCP Apps and skybridge) carry the CSP; each is reported.
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(
            f[0].contains("CSP connect_domains has the wildcard `https://*.example.com`"),
            "{f:?}"
        );
        assert!(
            f[1].contains("`http://cdn.example.com`, which is not an https://"),
            "{f:?}"
        );
    }

    #[test]
    fn a_widget_resource_without_csp_is_found() {
        let raw = crate::ResourceSpec::text("ui://t/raw.html", "raw", crate::MCP_APP_MIME, "<p>");
        let f = lint_of(App::builder("t", "1").resource(raw), URL);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].starts_with("widget `ui://t/raw.html`: declares no CSP"),
            "{f:?}"
        );
    }

    #[test]
    fn widget_tools_need_bounded_output() {
        let w = Widget::new("ui://t/w.html", "w", "<p>");
        let no_schema = good_tool("a").widget(&w);
        let unbounded = good_tool("b").widget(&w).output_schema(
            json!({
                "type": "object",
                "properties": {"hits": {"type": "array", "items": {"$ref": "#/$defs/Hit"}}},
                "$defs": {"Hit": {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 5}}}}
            })
            .as_object()
            .unwrap()
            .clone(),
        );
        let f = lint_of(
            App::builder("t", "1")
                .widget(&w)
                .tool(no_schema)
                .tool(unbounded),
            URL,
        );
        assert_eq!(
            f,
            [
                "tool `a`: renders a widget but declares no outputSchema: declare the shape of structuredContent so its size is bounded and the widget can rely on it",
                "tool `b`: structuredContent list `hits` has no maxItems: bound it (and page the rest with a cursor) so results stay under 64 KiB",
            ]
        );
    }
}
