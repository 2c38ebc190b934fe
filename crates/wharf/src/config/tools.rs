//! `[[tools]]` in wharf.toml: tools defined by configuration, as MCP Toolbox does.
//! Each has a name, a description, a JSON Schema for its parameters (with
//! bounds), one SQL statement whose placeholders are bound, in order, to the
//! parameters named in `params` (never interpolated), and honest annotations.
//!
//! ```toml
//! [[tools]]
//! name = "items_by_category"
//! description = "Use this when the user asks how many items a category has."
//! sql = "SELECT count(*) AS n FROM items WHERE json_extract(attributes, '$.category') = ?1"
//! params = ["category"]
//! [tools.parameters]
//! type = "object"
//! required = ["category"]
//! properties.category = { type = "string", enum = ["api", "css", "html"] }
//! ```
//!
//! A tool may render its result with its own widget, an HTML file (path relative
//! to the config file) served with the same metadata as the catalog's widget:
//!
//! ```toml
//! invoking = "Counting…"          # status lines ChatGPT shows, <= 64 characters
//! invoked = "Counted"
//! visibility = "both"             # "model", "app" (only the widget may call it) or "both"
//! [tools.widget]
//! template = "widgets/count.html"
//! description = "A bar chart of the counts."
//! resource_domains = ["https://cdn.example.com"]   # also connect_, frame_, redirect_, base_uri_domains
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;
use wharf_core::{Visibility, WidgetCsp};

use super::layers::Problem;

/// A tool defined in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub sql: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Map<String, Value>,
    /// Argument names bound to the statement's placeholders, in order.
    pub params: Vec<String>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub invoking: Option<String>,
    pub invoked: Option<String>,
    pub visibility: Visibility,
    pub widget: Option<WidgetDef>,
    /// Placeholders filled from the caller's token instead of the arguments:
    /// (name in `params`, claim). The caller cannot supply them.
    pub bind_claims: Vec<(String, String)>,
    /// Who may call it (published as `_meta.securitySchemes`); empty: whoever
    /// the transport admits.
    pub security: Vec<wharf_core::SecurityScheme>,
}

/// `[tools.widget]`: the HTML a tool's result renders with.
#[derive(Debug, Clone, PartialEq)]
pub struct WidgetDef {
    /// Resolved against the config file's directory; read when the app is built.
    pub template: PathBuf,
    pub description: Option<String>,
    pub csp: WidgetCsp,
    pub domain: Option<String>,
    pub prefers_border: bool,
}

const WIDGET_FIELDS: &[&str] = &[
    "template",
    "description",
    "connect_domains",
    "resource_domains",
    "frame_domains",
    "redirect_domains",
    "base_uri_domains",
    "domain",
    "prefers_border",
];

/// A CSP entry must be an origin: a scheme and a host, nothing after.
fn origin_problem(d: &str) -> Option<&'static str> {
    let rest = ["https://", "http://", "wss://", "ws://"]
        .iter()
        .find_map(|s| d.strip_prefix(s));
    match rest {
        None => Some("must start with https://, http://, wss:// or ws://"),
        Some("") => Some("has no host"),
        Some(r) if r.contains('/') => Some("must be an origin, without a path"),
        Some(_) => None,
    }
}

fn widget_from(
    value: &toml::Value,
    base: &Path,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<WidgetDef> {
    let toml::Value::Table(w) = value else {
        problems.push(Problem {
            at: at("widget"),
            message: "must be a table: [tools.widget] with template = \"file.html\"".into(),
        });
        return None;
    };
    let before = problems.len();
    for key in w.keys().filter(|k| !WIDGET_FIELDS.contains(&k.as_str())) {
        let hint = super::keys::suggest(key, WIDGET_FIELDS.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        problems.push(Problem {
            at: at(&format!("widget.{key}")),
            message: format!(
                "unknown field{hint}; a widget has {}",
                WIDGET_FIELDS.join(", ")
            ),
        });
    }
    let string = |field: &str, problems: &mut Vec<Problem>| match w.get(field) {
        None => None,
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => {
            problems.push(Problem {
                at: at(&format!("widget.{field}")),
                message: "must be a non-empty string".into(),
            });
            None
        }
    };
    let domains = |field: &str, problems: &mut Vec<Problem>| -> Vec<String> {
        let Some(v) = w.get(field) else {
            return Vec::new();
        };
        let Some(list) = v.as_array() else {
            problems.push(Problem {
                at: at(&format!("widget.{field}")),
                message: "must be a list of origins, such as [\"https://cdn.example.com\"]".into(),
            });
            return Vec::new();
        };
        let mut out = Vec::new();
        for d in list {
            match d.as_str() {
                Some(d) => match origin_problem(d) {
                    Some(why) => problems.push(Problem {
                        at: at(&format!("widget.{field}")),
                        message: format!("`{d}` {why}"),
                    }),
                    None => out.push(d.to_owned()),
                },
                None => problems.push(Problem {
                    at: at(&format!("widget.{field}")),
                    message: "every entry must be a string".into(),
                }),
            }
        }
        out
    };
    let template = string("template", problems);
    if template.is_none() && w.get("template").is_none() {
        problems.push(Problem {
            at: at("widget.template"),
            message: "is required: the HTML file the widget renders".into(),
        });
    }
    let csp = WidgetCsp {
        connect_domains: domains("connect_domains", problems),
        resource_domains: domains("resource_domains", problems),
        frame_domains: domains("frame_domains", problems),
        redirect_domains: domains("redirect_domains", problems),
        base_uri_domains: domains("base_uri_domains", problems),
    };
    let description = string("description", problems);
    let domain = string("domain", problems);
    if let Some(d) = &domain
        && let Some(why) = origin_problem(d)
    {
        problems.push(Problem {
            at: at("widget.domain"),
            message: format!("`{d}` {why}"),
        });
    }
    let prefers_border = match w.get("prefers_border") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            problems.push(Problem {
                at: at("widget.prefers_border"),
                message: "must be true or false".into(),
            });
            false
        }
    };
    (problems.len() == before).then(|| WidgetDef {
        template: base.join(template.unwrap_or_default()),
        description,
        csp,
        domain,
        prefers_border,
    })
}

const FIELDS: &[&str] = &[
    "name",
    "title",
    "description",
    "sql",
    "parameters",
    "params",
    "read_only",
    "destructive",
    "idempotent",
    "invoking",
    "invoked",
    "visibility",
    "widget",
    "bind_claims",
    "security",
];

/// One security scheme as written in config: `noauth`, `oauth2`, or
/// `oauth2:scope scope` (the Apps SDK's `securitySchemes`, compactly).
pub fn parse_scheme(text: &str) -> Result<wharf_core::SecurityScheme, String> {
    let text = text.trim();
    match text.split_once(':') {
        None if text == "noauth" => Ok(wharf_core::SecurityScheme::NoAuth),
        None if text == "oauth2" => Ok(wharf_core::SecurityScheme::OAuth2 { scopes: Vec::new() }),
        Some(("oauth2", scopes)) => Ok(wharf_core::SecurityScheme::OAuth2 {
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        }),
        _ => Err(format!(
            "`{text}` is not a security scheme: write \"noauth\" (anyone), \"oauth2\" (any signed-in user) or \"oauth2:scope scope\" (signed in with those scopes)"
        )),
    }
}

/// Read the `[[tools]]` array of the file, reporting every problem. Widget
/// templates are resolved against the file's directory.
pub fn from_table(file: &str, value: &toml::Value, problems: &mut Vec<Problem>) -> Vec<ToolDef> {
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let toml::Value::Array(entries) = value else {
        problems.push(Problem {
            at: format!("{file} [[tools]]"),
            message: "`tools` must be an array of tables: write [[tools]] for each tool".into(),
        });
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("{file} [[tools]] #{} (`{field}`)", i + 1);
        let toml::Value::Table(t) = entry else {
            problems.push(Problem {
                at: at("tools"),
                message: "each tool must be a table".into(),
            });
            continue;
        };
        let before = problems.len();
        for key in t.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            let hint = super::keys::suggest(key, FIELDS.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            problems.push(Problem {
                at: at(key),
                message: format!("unknown field{hint}; a tool has {}", FIELDS.join(", ")),
            });
        }
        let text = |field: &str, problems: &mut Vec<Problem>| -> Option<String> {
            match t.get(field) {
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                Some(_) => {
                    problems.push(Problem {
                        at: at(field),
                        message: "must be a non-empty string".into(),
                    });
                    None
                }
                None => None,
            }
        };
        let flag = |field: &str, problems: &mut Vec<Problem>| -> Option<bool> {
            match t.get(field) {
                Some(toml::Value::Boolean(b)) => Some(*b),
                Some(_) => {
                    problems.push(Problem {
                        at: at(field),
                        message: "must be true or false".into(),
                    });
                    None
                }
                None => None,
            }
        };
        let name = text("name", problems);
        let description = text("description", problems);
        let sql = text("sql", problems);
        let title = text("title", problems);
        for (field, v) in [
            ("name", &name),
            ("description", &description),
            ("sql", &sql),
        ] {
            if v.is_none() && t.get(field).is_none() {
                problems.push(Problem {
                    at: at(field),
                    message: "is required".into(),
                });
            }
        }
        if let Some(n) = &name {
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                || n.len() > 128
            {
                problems.push(Problem {
                    at: at("name"),
                    message: format!("`{n}` is not a tool name: use 1 to 128 of A-Z a-z 0-9 _ - ."),
                });
            } else if !names.insert(n.clone()) {
                problems.push(Problem {
                    at: at("name"),
                    message: format!("a tool named `{n}` is defined twice"),
                });
            }
        }
        let parameters = match t.get("parameters") {
            None => {
                serde_json::Map::from_iter([("type".to_owned(), Value::String("object".into()))])
            }
            Some(v) => match serde_json::to_value(v) {
                Ok(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("object") => {
                    o
                }
                _ => {
                    problems.push(Problem {
                        at: at("parameters"),
                        message: "must be a JSON Schema table with type = \"object\"".into(),
                    });
                    serde_json::Map::new()
                }
            },
        };
        if let Err(e) = wharf_core::ArgumentValidator::new(&parameters) {
            problems.push(Problem {
                at: at("parameters"),
                message: format!("not a valid JSON Schema: {e}"),
            });
        }
        let params: Vec<String> = match t.get("params") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                problems.push(Problem {
                    at: at("params"),
                    message: "must be a list of parameter names".into(),
                });
                Vec::new()
            }
        };
        let mut bind_claims = Vec::new();
        match t.get("bind_claims") {
            None => {}
            Some(toml::Value::Table(b)) => {
                for (param, claim) in b {
                    match claim.as_str() {
                        Some(c) if params.contains(param) => bind_claims.push((param.clone(), c.to_owned())),
                        Some(_) => problems.push(Problem {
                            at: at("bind_claims"),
                            message: format!("`{param}` is not in `params`: list it there, at the place of its placeholder"),
                        }),
                        None => problems.push(Problem {
                            at: at("bind_claims"),
                            message: format!("`{param}` must name a claim as a string, such as \"sub\""),
                        }),
                    }
                }
            }
            Some(_) => problems.push(Problem {
                at: at("bind_claims"),
                message: "must be a table of parameter = \"claim\", such as { owner = \"sub\" }"
                    .into(),
            }),
        }
        let properties = parameters.get("properties").and_then(Value::as_object);
        for p in &params {
            let bound = bind_claims.iter().any(|(b, _)| b == p);
            if bound && properties.is_some_and(|props| props.contains_key(p)) {
                problems.push(Problem {
                    at: at("bind_claims"),
                    message: format!("`{p}` comes from the token, so it must not be a property of `parameters` (the caller could not be allowed to set it)"),
                });
            }
            if !bound && !properties.is_some_and(|props| props.contains_key(p)) {
                problems.push(Problem {
                    at: at("params"),
                    message: format!("`{p}` is not a property of `parameters`"),
                });
            }
        }
        let read_only = flag("read_only", problems).unwrap_or(true);
        let destructive = flag("destructive", problems);
        if !read_only && destructive.is_none() {
            problems.push(Problem {
                at: at("destructive"),
                message: "a tool that writes (read_only = false) must say whether it is destructive: destructive = true or false".into(),
            });
        }
        if read_only && destructive == Some(true) {
            problems.push(Problem {
                at: at("destructive"),
                message: "a read-only tool cannot be destructive; set read_only = false".into(),
            });
        }
        let idempotent = flag("idempotent", problems).unwrap_or(read_only);
        let invoking = text("invoking", problems);
        let invoked = text("invoked", problems);
        let visibility = match text("visibility", problems).as_deref() {
            None | Some("both") => Visibility::ModelAndApp,
            Some("model") => Visibility::Model,
            Some("app") => Visibility::App,
            Some(other) => {
                problems.push(Problem {
                    at: at("visibility"),
                    message: format!(
                        "`{other}` is not a visibility: use \"model\", \"app\" or \"both\""
                    ),
                });
                Visibility::ModelAndApp
            }
        };
        let widget = t
            .get("widget")
            .and_then(|w| widget_from(w, base, &at, problems));
        let mut security = Vec::new();
        match t.get("security") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for item in items {
                    match item.as_str().map(parse_scheme) {
                        Some(Ok(scheme)) => security.push(scheme),
                        Some(Err(message)) => problems.push(Problem {
                            at: at("security"),
                            message,
                        }),
                        None => problems.push(Problem {
                            at: at("security"),
                            message: format!(
                                "`{item}` is not a string such as \"noauth\" or \"oauth2:sql\""
                            ),
                        }),
                    }
                }
            }
            Some(_) => problems.push(Problem {
                at: at("security"),
                message: "must be a list, such as [\"noauth\"] or [\"oauth2:sql\"]".into(),
            }),
        }
        if problems.len() == before {
            out.push(ToolDef {
                name: name.unwrap_or_default(),
                title,
                description: description.unwrap_or_default(),
                sql: sql.unwrap_or_default(),
                parameters,
                params,
                read_only,
                destructive: destructive.unwrap_or(false),
                idempotent,
                invoking,
                invoked,
                visibility,
                widget,
                bind_claims,
                security,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<ToolDef>, Vec<String>) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let tools = from_table("wharf.toml", &table["tools"], &mut problems);
        (tools, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_a_read_only_tool() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"by_cat\"\ndescription = \"Use this\"\nsql = \"SELECT 1 WHERE ?1\"\nparams = [\"c\"]\n[tools.parameters]\ntype = \"object\"\nproperties.c = { type = \"string\", maxLength = 10 }\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(tools[0].read_only && !tools[0].destructive && tools[0].idempotent);
        assert_eq!(tools[0].params, ["c"]);
    }

    #[test]
    fn every_mistake_is_reported() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"has space\"\nsql = \"DELETE FROM items\"\nread_only = false\nparams = [\"x\"]\nsecret = 1\n",
        );
        assert!(tools.is_empty());
        let all = problems.join("\n");
        for expected in [
            "#1 (`secret`): unknown field",
            "#1 (`name`): `has space` is not a tool name",
            "#1 (`description`): is required",
            "#1 (`params`): `x` is not a property",
            "#1 (`destructive`): a tool that writes",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }

    #[test]
    fn reads_a_widget_relative_to_the_config_file() {
        let table: toml::Table = toml::from_str(
            "[[tools]]\nname = \"t\"\ndescription = \"d\"\nsql = \"SELECT 1\"\ninvoking = \"Counting…\"\nvisibility = \"app\"\n[tools.widget]\ntemplate = \"w/t.html\"\nresource_domains = [\"https://cdn.example.com\"]\nprefers_border = true\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let tools = from_table("conf/wharf.toml", &table["tools"], &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let w = tools[0].widget.as_ref().unwrap();
        assert_eq!(w.template, Path::new("conf/w/t.html"));
        assert_eq!(w.csp.resource_domains, ["https://cdn.example.com"]);
        assert!(w.prefers_border);
        assert_eq!(tools[0].invoking.as_deref(), Some("Counting…"));
        assert_eq!(tools[0].visibility, Visibility::App);
    }

    #[test]
    fn widget_mistakes_are_reported_with_their_field() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"t\"\ndescription = \"d\"\nsql = \"SELECT 1\"\nvisibility = \"everyone\"\n[tools.widget]\ntemplat = \"x.html\"\nconnect_domains = [\"api.example.com\", \"https://x.com/path\"]\n",
        );
        assert!(tools.is_empty());
        let all = problems.join("\n");
        for expected in [
            "#1 (`visibility`): `everyone` is not a visibility",
            "#1 (`widget.templat`): unknown field; did you mean `template`?",
            "#1 (`widget.template`): is required",
            "#1 (`widget.connect_domains`): `api.example.com` must start with https://",
            "#1 (`widget.connect_domains`): `https://x.com/path` must be an origin, without a path",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }

    #[test]
    fn claim_bound_parameters_must_be_placeholders_the_caller_cannot_set() {
        let (tools, problems) = read(
            "[[tools]]\nname = \"t\"\ndescription = \"d\"\nsql = \"SELECT ?1, ?2\"\nparams = [\"owner\", \"x\"]\nbind_claims = { owner = \"sub\", team = \"org\" }\n[tools.parameters]\ntype = \"object\"\nproperties.owner = { type = \"string\" }\nproperties.x = { type = \"string\" }\n",
        );
        assert!(tools.is_empty());
        let all = problems.join("\n");
        assert!(all.contains("`team` is not in `params`"), "{all}");
        assert!(
            all.contains("`owner` comes from the token, so it must not be a property"),
            "{all}"
        );
    }
}
