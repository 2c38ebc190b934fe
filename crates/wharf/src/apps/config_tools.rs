//! Turning `[[tools]]` definitions into tools: arguments validated against the
//! declared schema, then bound (never interpolated) to the statement's
//! placeholders in the order `params` gives. Read-only tools run like
//! `execute_sql_query` (read-only connection, caps, timeout); writing tools run
//! in a transaction, and are marked as writing in their annotations. A tool
//! with `[tools.widget]` renders with its own HTML, published at
//! `ui://wharf/tools/<name>.html` with the same metadata as the catalog widget.

use std::sync::Arc;

use anyhow::Context;
use rmcp::model::ToolAnnotations;
use serde::Serialize;
use serde_json::{Value, json};
use wharf_catalog::{Catalog, QueryResult};
use wharf_core::{ToolError, ToolSpec, Widget, structured_result};

use crate::config::tools::ToolDef;

#[derive(Serialize, schemars::JsonSchema)]
struct Changed {
    rows_changed: u64,
}

/// The tools, and the widgets some of them render with (to register with the app).
/// `max_rows` is the row cap of read-only statements, published as the output
/// schema's `maxItems`.
pub(crate) fn build(
    defs: &[ToolDef],
    catalog: &Arc<dyn Catalog>,
    max_rows: usize,
) -> anyhow::Result<(Vec<ToolSpec>, Vec<Widget>)> {
    let mut tools = Vec::with_capacity(defs.len());
    let mut widgets = Vec::new();
    for def in defs {
        let mut spec = build_one(def.clone(), catalog.clone(), max_rows);
        if let Some(w) = &def.widget {
            let html = std::fs::read_to_string(&w.template).with_context(|| {
                format!(
                    "tool `{}`: cannot read its widget template {} (widget.template is relative to the config file)",
                    def.name,
                    w.template.display()
                )
            })?;
            let mut widget = Widget::new(
                format!("ui://wharf/tools/{}.html", def.name),
                format!("{}-widget", def.name),
                html,
            )
            .csp(w.csp.clone())
            .prefers_border(w.prefers_border);
            if let Some(d) = &w.description {
                widget = widget.description(d.clone());
            }
            if let Some(d) = &w.domain {
                widget = widget.domain(d.clone());
            }
            spec = spec.widget(&widget);
            widgets.push(widget);
        }
        if def.widget.is_some() || def.visibility != wharf_core::Visibility::ModelAndApp {
            spec = spec.visibility(def.visibility);
        }
        if let (Some(a), Some(b)) = (&def.invoking, &def.invoked) {
            spec = spec.invocation(a.clone(), b.clone());
        } else if let Some(a) = &def.invoking {
            spec = spec.meta("openai/toolInvocation/invoking", json!(a));
        } else if let Some(b) = &def.invoked {
            spec = spec.meta("openai/toolInvocation/invoked", json!(b));
        }
        tools.push(spec);
    }
    Ok((tools, widgets))
}

fn build_one(def: ToolDef, catalog: Arc<dyn Catalog>, max_rows: usize) -> ToolSpec {
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(def.read_only);
    annotations.destructive_hint = Some(def.destructive);
    annotations.idempotent_hint = Some(def.idempotent);
    annotations.open_world_hint = Some(false);
    let mut spec = ToolSpec::new(def.name.clone())
        .description(def.description.clone())
        .input_schema(def.parameters.clone())
        .annotations(annotations);
    if let Some(title) = &def.title {
        spec = spec.title(title.clone());
    }
    if !def.security.is_empty() {
        spec = spec.security(def.security.clone());
    }
    spec = if def.read_only {
        let mut schema = wharf_core::schema_of::<QueryResult>();
        if let Some(rows) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut("rows"))
            .and_then(Value::as_object_mut)
        {
            rows.insert("maxItems".into(), json!(max_rows));
        }
        spec.output_schema(schema)
    } else {
        spec.output::<Changed>()
    };
    let def = Arc::new(def);
    spec.handler(move |ctx: wharf_core::CallContext, args| {
        let (def, catalog) = (def.clone(), catalog.clone());
        async move {
            let defaults = def.parameters.get("properties").and_then(Value::as_object);
            let mut claims = std::collections::HashMap::new();
            for (param, claim) in &def.bind_claims {
                let value = ctx
                    .principal()
                    .and_then(|p| match claim.as_str() {
                        "sub" => Some(Value::String(p.subject.clone())),
                        c => p.claim(c).cloned(),
                    })
                    .ok_or_else(|| {
                        ToolError::Failed(format!(
                            "`{}` answers only for a signed-in caller whose token has the `{claim}` claim",
                            def.name
                        ))
                    })?;
                claims.insert(param.as_str(), value);
            }
            let values: Vec<Value> = def
                .params
                .iter()
                .map(|p| {
                    if let Some(v) = claims.get(p.as_str()) {
                        return v.clone();
                    }
                    args.get(p)
                        .cloned()
                        .or_else(|| {
                            defaults
                                .and_then(|d| d.get(p))
                                .and_then(|s| s.get("default"))
                                .cloned()
                        })
                        .unwrap_or(Value::Null)
                })
                .collect();
            if def.read_only {
                let result = catalog
                    .query(&def.sql, values)
                    .await
                    .map_err(ToolError::from)?;
                let text = format!(
                    "{} row(s){}",
                    result.rows.len(),
                    result
                        .truncated
                        .as_ref()
                        .map(|t| format!("; {t}"))
                        .unwrap_or_default()
                );
                structured_result(&result, text)
            } else {
                let rows_changed = catalog
                    .execute(&def.sql, values)
                    .await
                    .map_err(ToolError::from)?;
                structured_result(
                    &Changed { rows_changed },
                    format!("{rows_changed} row(s) changed"),
                )
            }
        }
    })
    .meta("wharf/definedIn", json!("wharf.toml"))
}
