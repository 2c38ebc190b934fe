//! Turning `[[tools]]` definitions into tools: arguments validated against the
//! declared schema, then bound (never interpolated) to the statement's
//! placeholders in the order `params` gives. Read-only tools run like
//! `execute_sql_query` (read-only connection, caps, timeout); writing tools run
//! in a transaction, and are marked as writing in their annotations.

use std::sync::Arc;

use rmcp::model::ToolAnnotations;
use serde::Serialize;
use serde_json::{Value, json};
use wharf_catalog::{Catalog, QueryResult};
use wharf_core::{ToolError, ToolSpec, structured_result};

use crate::config::tools::ToolDef;

#[derive(Serialize, schemars::JsonSchema)]
struct Changed {
    rows_changed: u64,
}

pub fn build(defs: &[ToolDef], catalog: &Arc<dyn Catalog>) -> Vec<ToolSpec> {
    defs.iter()
        .map(|def| build_one(def.clone(), catalog.clone()))
        .collect()
}

fn build_one(def: ToolDef, catalog: Arc<dyn Catalog>) -> ToolSpec {
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
    spec = if def.read_only {
        spec.output::<QueryResult>()
    } else {
        spec.output::<Changed>()
    };
    let def = Arc::new(def);
    spec.handler(move |_, args| {
        let (def, catalog) = (def.clone(), catalog.clone());
        async move {
            let defaults = def.parameters.get("properties").and_then(Value::as_object);
            let values: Vec<Value> = def
                .params
                .iter()
                .map(|p| {
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
