//! Tool views: which of the gateway's tools each caller may see and call, and
//! the virtual servers (named endpoints at `/mcp/{name}`), each publishing its
//! own selection of them.
//!
//! A selection admits a tool by its upstream, its published name (globs) and
//! its tags, minus what `deny` names. With `views` in the file, a caller sees
//! the tools of every view naming them, and a caller no view names sees none;
//! at a named endpoint a tool must also be in the endpoint's selection. A tool
//! outside what a caller sees is not listed and a call to it is refused as an
//! unknown tool (`App`'s view hook), whatever the transport.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;
use wharf_core::{AuthMethod, Principal, Problem};

/// What a selection knows about one published tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolFacts {
    pub upstream: String,
    pub tags: Vec<String>,
    /// The gateway's own tool (tool search's): every caller may use it; it
    /// answers within the caller's view.
    pub own: bool,
}

impl ToolFacts {
    /// The upstream's configured tags, and the tool's own: `_meta.tags` or
    /// FastMCP's `_meta._fastmcp.tags`.
    pub(crate) fn of(upstream: &crate::UpstreamConfig, tool: &rmcp::model::Tool) -> Self {
        let mut tags = upstream.tags.clone();
        if let Some(meta) = &tool.meta {
            for list in [
                meta.0.get("tags"),
                meta.0.get("_fastmcp").and_then(|f| f.get("tags")),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(items) = list.as_array() {
                    tags.extend(items.iter().filter_map(Value::as_str).map(String::from));
                }
            }
        }
        Self {
            upstream: upstream.name.clone(),
            tags,
            own: false,
        }
    }

    pub(crate) fn own() -> Self {
        Self {
            upstream: String::new(),
            tags: Vec::new(),
            own: true,
        }
    }
}

/// Name patterns (`github_*`, `*_delete_*`), compiled once.
#[derive(Debug, Clone, Default)]
pub struct Globs {
    patterns: Vec<String>,
    set: globset::GlobSet,
}

impl PartialEq for Globs {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for Globs {}

impl Globs {
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn is_match(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
}

/// Which tools: by upstream, name glob and tag (each empty = any), minus `deny`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub upstreams: Vec<String>,
    pub tools: Globs,
    pub tags: Vec<String>,
    pub deny: Globs,
}

impl Selection {
    fn admits(&self, name: &str, facts: &ToolFacts) -> bool {
        (self.upstreams.is_empty() || self.upstreams.contains(&facts.upstream))
            && (self.tools.is_empty() || self.tools.is_match(name))
            && (self.tags.is_empty() || facts.tags.iter().any(|t| self.tags.contains(t)))
            && !self.deny.is_match(name)
    }
}

/// Who a view is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `*`: everyone, signed in or not.
    Anyone,
    /// `anonymous`: a caller with no credentials (a gateway without auth).
    Anonymous,
    /// `key:NAME`: the API key of that name.
    Key(String),
    /// `sub:SUBJECT`: an OAuth token's subject.
    Subject(String),
    /// `scope:S`: a token granting that scope.
    Scope(String),
    /// `group:G`: a token whose `groups` or `roles` claim holds G.
    Group(String),
}

impl Caller {
    fn parse(text: &str) -> Result<Self, String> {
        let (kind, value) = text.split_once(':').unwrap_or((text, ""));
        let value = value.to_owned();
        match (kind, value.is_empty()) {
            ("*", true) => Ok(Self::Anyone),
            ("anonymous", true) => Ok(Self::Anonymous),
            ("key", false) => Ok(Self::Key(value)),
            ("sub", false) => Ok(Self::Subject(value)),
            ("scope", false) => Ok(Self::Scope(value)),
            ("group", false) => Ok(Self::Group(value)),
            _ => Err(format!(
                "`{text}` names no caller; write `*`, `anonymous`, `key:NAME`, `sub:SUBJECT`, `scope:SCOPE` or `group:GROUP`"
            )),
        }
    }

    fn matches(&self, who: Option<&Principal>) -> bool {
        match (self, who) {
            (Self::Anyone, _) => true,
            (Self::Anonymous, who) => who.is_none(),
            (_, None) => false,
            (Self::Key(name), Some(p)) => {
                matches!(&p.method, AuthMethod::ApiKey { name: n } if n == name)
            }
            (Self::Subject(sub), Some(p)) => p.subject == *sub,
            (Self::Scope(scope), Some(p)) => p.scopes.contains(scope),
            (Self::Group(group), Some(p)) => {
                ["groups", "roles"]
                    .iter()
                    .any(|claim| match p.claim(claim) {
                        Some(Value::Array(items)) => {
                            items.iter().any(|g| g.as_str() == Some(group))
                        }
                        Some(Value::String(g)) => g == group,
                        _ => false,
                    })
            }
        }
    }
}

/// One entry of `views`: these callers see this selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub callers: Vec<Caller>,
    pub selection: Selection,
}

/// The file's `views` and `endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Views {
    /// Empty: every caller sees every tool.
    pub views: Vec<View>,
    /// Virtual servers by name, served at `/mcp/{name}`.
    pub endpoints: BTreeMap<String, Selection>,
}

impl Views {
    /// Whether the caller `who`, at `endpoint`, may see the published tool
    /// `name`. A tool with no facts (one being withdrawn) is seen by nobody.
    pub(crate) fn sees(
        &self,
        name: &str,
        facts: Option<&ToolFacts>,
        who: Option<&Principal>,
        endpoint: Option<&str>,
    ) -> bool {
        let Some(facts) = facts else {
            return false;
        };
        if facts.own {
            return endpoint.is_none_or(|e| self.endpoints.contains_key(e));
        }
        if let Some(endpoint) = endpoint {
            match self.endpoints.get(endpoint) {
                Some(selection) if selection.admits(name, facts) => {}
                _ => return false,
            }
        }
        self.views.is_empty()
            || self.views.iter().any(|v| {
                v.callers.iter().any(|c| c.matches(who)) && v.selection.admits(name, facts)
            })
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty() && self.endpoints.is_empty()
    }
}

/// The fields of a selection as written (a view adds `callers`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelection {
    #[serde(default)]
    callers: Option<Vec<String>>,
    #[serde(default)]
    upstreams: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

/// Endpoint names: a path segment; `sse` is `/mcp/sse`, the action API's stream.
fn valid_endpoint(name: &str) -> bool {
    !name.is_empty()
        && name != "sse"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// `patterns` compiled; a bad one is a problem at `at`.
pub(crate) fn globs(patterns: Vec<String>, at: &str, problems: &mut Vec<Problem>) -> Globs {
    let mut set = globset::GlobSetBuilder::new();
    for p in &patterns {
        match globset::Glob::new(p) {
            Ok(g) => {
                set.add(g);
            }
            Err(e) => problems.push(Problem {
                at: at.to_owned(),
                message: format!("`{p}` is not a glob: {}", e.kind()),
            }),
        }
    }
    Globs {
        set: set.build().unwrap_or_default(),
        patterns,
    }
}

fn selection(
    raw: RawSelection,
    at: &str,
    upstreams: &[&str],
    problems: &mut Vec<Problem>,
) -> Selection {
    let tools = globs(raw.tools, &format!("{at}.tools"), problems);
    let deny = globs(raw.deny, &format!("{at}.deny"), problems);
    for u in &raw.upstreams {
        if !upstreams.contains(&u.as_str()) {
            problems.push(Problem {
                at: format!("{at}.upstreams"),
                message: format!(
                    "no server is named `{u}`; the servers are: {}",
                    upstreams.join(", ")
                ),
            });
        }
    }
    Selection {
        upstreams: raw.upstreams,
        tools,
        tags: raw.tags,
        deny,
    }
}

/// Read `views` (a list) and `endpoints` (an object by name), every problem
/// added to `problems`.
pub(crate) fn parse(
    views: Option<Value>,
    endpoints: Option<Value>,
    upstreams: &[&str],
    problems: &mut Vec<Problem>,
) -> Views {
    let mut out = Views::default();
    const FIELDS: &str = "known: callers, upstreams, tools, tags, deny";
    match views {
        None => {}
        Some(Value::Array(list)) => {
            for (i, raw) in list.into_iter().enumerate() {
                let at = format!("views[{i}]");
                let raw: RawSelection = match serde_json::from_value(raw) {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(Problem {
                            at,
                            message: format!("{e} ({FIELDS})"),
                        });
                        continue;
                    }
                };
                let callers = match &raw.callers {
                    Some(list) if !list.is_empty() => list
                        .iter()
                        .filter_map(|c| {
                            Caller::parse(c)
                                .map_err(|message| {
                                    problems.push(Problem {
                                        at: format!("{at}.callers"),
                                        message,
                                    })
                                })
                                .ok()
                        })
                        .collect(),
                    _ => {
                        problems.push(Problem {
                            at: format!("{at}.callers"),
                            message: "say who this view is for: a list such as [\"key:ci\", \"group:admins\"] (`*` for everyone)".into(),
                        });
                        Vec::new()
                    }
                };
                let selection = selection(raw, &at, upstreams, problems);
                out.views.push(View { callers, selection });
            }
        }
        Some(_) => problems.push(Problem {
            at: "views".into(),
            message: "must be a list of views, each { \"callers\": [...], \"tools\": [...], ... }"
                .into(),
        }),
    }
    match endpoints {
        None => {}
        Some(Value::Object(map)) => {
            for (name, raw) in map {
                let at = format!("endpoints.{name}");
                if !valid_endpoint(&name) {
                    problems.push(Problem {
                        at: at.clone(),
                        message: "an endpoint's name is a path segment (`/mcp/{name}`): letters, digits, `_` or `-`, and not `sse`".into(),
                    });
                    continue;
                }
                match serde_json::from_value::<RawSelection>(raw) {
                    Ok(raw) if raw.callers.is_some() => problems.push(Problem {
                        at: format!("{at}.callers"),
                        message:
                            "an endpoint serves whoever may call; say who sees what in `views`"
                                .into(),
                    }),
                    Ok(raw) => {
                        let s = selection(raw, &at, upstreams, problems);
                        out.endpoints.insert(name, s);
                    }
                    Err(e) => problems.push(Problem {
                        at,
                        message: format!("{e} (known: upstreams, tools, tags, deny)"),
                    }),
                }
            }
        }
        Some(_) => problems.push(Problem {
            at: "endpoints".into(),
            message: "must be an object of endpoints by name, each served at /mcp/{name}".into(),
        }),
    }
    out
}

/// Published tool name → what views know of it; swapped whole on each publish.
pub(crate) type Facts = HashMap<String, ToolFacts>;

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(upstream: &str, tags: &[&str]) -> ToolFacts {
        ToolFacts {
            upstream: upstream.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            own: false,
        }
    }

    fn parsed(views: Value, endpoints: Value) -> Result<Views, Vec<Problem>> {
        let mut problems = Vec::new();
        let v = parse(
            Some(views).filter(|v| !v.is_null()),
            Some(endpoints).filter(|v| !v.is_null()),
            &["github", "catalog"],
            &mut problems,
        );
        if problems.is_empty() {
            Ok(v)
        } else {
            Err(problems)
        }
    }

    fn token(sub: &str, scopes: &[&str], groups: &[&str]) -> Principal {
        Principal {
            subject: sub.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            method: AuthMethod::OAuth {
                issuer: "https://idp".into(),
            },
            claims: serde_json::json!({ "groups": groups })
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn a_caller_sees_the_union_of_their_views_and_nothing_else() {
        let v = parsed(
            serde_json::json!([
                {"callers": ["key:ci"], "upstreams": ["catalog"], "deny": ["*_sql*"]},
                {"callers": ["group:admins", "scope:github.write"], "tools": ["github_*"]},
                {"callers": ["*"], "tags": ["public"]}
            ]),
            Value::Null,
        )
        .unwrap();
        let ci = Principal::api_key("ci");
        let other_key = Principal::api_key("ops");
        let admin = token("u1", &[], &["admins"]);
        let writer = token("u2", &["github.write"], &[]);
        let catalog = facts("catalog", &[]);
        let github = facts("github", &[]);
        let public = facts("github", &["public"]);

        assert!(v.sees("catalog_search", Some(&catalog), Some(&ci), None));
        assert!(!v.sees("catalog_run_sql", Some(&catalog), Some(&ci), None));
        assert!(!v.sees("github_issue", Some(&github), Some(&ci), None));
        assert!(!v.sees("catalog_search", Some(&catalog), Some(&other_key), None));
        assert!(v.sees("github_issue", Some(&github), Some(&admin), None));
        assert!(v.sees("github_issue", Some(&github), Some(&writer), None));
        assert!(!v.sees("catalog_search", Some(&catalog), Some(&admin), None));
        // `*` takes in the anonymous caller too; tags come from the upstream or the tool.
        assert!(v.sees("github_readme", Some(&public), None, None));
        assert!(!v.sees("github_issue", Some(&github), None, None));
    }

    #[test]
    fn an_endpoint_narrows_what_its_callers_see() {
        let v = parsed(
            Value::Null,
            serde_json::json!({"gh": {"upstreams": ["github"], "deny": ["*delete*"]}}),
        )
        .unwrap();
        let github = facts("github", &[]);
        let catalog = facts("catalog", &[]);
        assert!(v.sees("github_issue", Some(&github), None, None));
        assert!(v.sees("catalog_search", Some(&catalog), None, None));
        assert!(v.sees("github_issue", Some(&github), None, Some("gh")));
        assert!(!v.sees("github_delete_repo", Some(&github), None, Some("gh")));
        assert!(!v.sees("catalog_search", Some(&catalog), None, Some("gh")));
        assert!(!v.sees("github_issue", Some(&github), None, Some("nope")));
    }

    #[test]
    fn every_mistake_is_located() {
        let e = parsed(
            serde_json::json!([
                {"tools": ["a"]},
                {"callers": ["user:bob"], "upstreams": ["gitlab"], "tools": ["a[b"]},
                {"callers": ["*"], "allow": ["x"]}
            ]),
            serde_json::json!({"sse": {}, "x": {"callers": ["*"]}}),
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|p| p.to_string()).collect();
        let has = |at: &str, what: &str| {
            assert!(
                text.iter().any(|t| t.contains(at) && t.contains(what)),
                "{at} / {what} not in {text:#?}"
            )
        };
        has("views[0].callers", "say who this view is for");
        has("views[1].callers", "`user:bob` names no caller");
        has("views[1].upstreams", "no server is named `gitlab`");
        has("views[1].tools", "`a[b` is not a glob");
        has("views[2]", "unknown field `allow`");
        has("endpoints.sse", "not `sse`");
        has("endpoints.x.callers", "say who sees what in `views`");
    }
}
