//! `wharf eval golden.yaml`: the golden-prompt check of the app-review guides.
//! For each prompt (direct, indirect or negative) the file names the tool the
//! model should pick, or none; each prompt goes to the chat's provider with the
//! server's tools, and the tools the model asks for in its first answer are
//! compared with the expectation: precision and recall per prompt and overall.
//!
//! ```yaml
//! prompts:
//!   - prompt: Find items about CSS grid
//!     kind: direct
//!     expect: search_items
//!   - prompt: What's the weather in Paris?
//!     kind: negative
//!     expect: none
//! ```

use crate::output::say;
use std::{collections::BTreeSet, process::ExitCode};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{
    chat::{SYSTEM, Toolbox},
    llm::Turn,
};
use crate::cli::EvalArgs;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Golden {
    prompts: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    prompt: String,
    /// direct, indirect or negative.
    #[serde(default)]
    kind: Option<String>,
    /// A tool, a list of tools, or `none` / `[]` / null for no tool.
    #[serde(default)]
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Expect {
    #[default]
    Nothing,
    One(String),
    Many(Vec<String>),
}

impl Expect {
    fn tools(&self) -> BTreeSet<String> {
        match self {
            Self::Nothing => BTreeSet::new(),
            Self::One(t) if t == "none" => BTreeSet::new(),
            Self::One(t) => [t.clone()].into(),
            Self::Many(ts) => ts.iter().cloned().collect(),
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct Row {
    prompt: String,
    kind: String,
    expected: BTreeSet<String>,
    selected: BTreeSet<String>,
    precision: f64,
    recall: f64,
    ok: bool,
}

/// Precision and recall of `selected` against `expected`. With nothing
/// selected there is no false positive (precision 1); with nothing expected
/// there is nothing to miss (recall 1).
fn score(expected: &BTreeSet<String>, selected: &BTreeSet<String>) -> (f64, f64) {
    let hits = expected.intersection(selected).count() as f64;
    let precision = if selected.is_empty() {
        1.0
    } else {
        hits / selected.len() as f64
    };
    let recall = if expected.is_empty() {
        1.0
    } else {
        hits / expected.len() as f64
    };
    (precision, recall)
}

fn load(path: &std::path::Path) -> anyhow::Result<Golden> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let golden: Golden = yaml_serde::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (expected `prompts:`, a list of {{prompt, kind, expect}})",
            path.display()
        )
    })?;
    if golden.prompts.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    for (i, c) in golden.prompts.iter().enumerate() {
        if let Some(k) = &c.kind
            && !matches!(k.as_str(), "direct" | "indirect" | "negative")
        {
            bail!(
                "{}: prompts[{i}].kind `{k}` is not one of direct, indirect, negative",
                path.display()
            );
        }
        if c.kind.as_deref() == Some("negative") && !c.expect.tools().is_empty() {
            bail!(
                "{}: prompts[{i}] is negative but expects a tool; a negative prompt expects none",
                path.display()
            );
        }
    }
    Ok(golden)
}

pub(crate) async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let golden = load(&args.golden)?;
    let provider =
        super::llm::from_env(args.model.provider.as_deref(), args.model.model.as_deref())
            .map_err(|why| anyhow::anyhow!("{why}"))?;
    let (up, _) = match super::connect(&args.server, wharf_gateway::UpstreamMetrics::new()).await {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let listed = up.list_tools().await?;
    let tools = Toolbox::new(listed);
    let known: BTreeSet<String> = tools
        .defs
        .iter()
        .map(|d| tools.mcp_name(&d.name).to_owned())
        .collect();
    for (i, c) in golden.prompts.iter().enumerate() {
        for t in c.expect.tools() {
            if !known.contains(&t) {
                bail!(
                    "{}: prompts[{i}] expects `{t}`, which the server does not have; it has: {}",
                    args.golden.display(),
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    let mut rows = Vec::new();
    for c in &golden.prompts {
        let reply = provider
            .complete(SYSTEM, &[Turn::User(c.prompt.clone())], &tools.defs)
            .await
            .with_context(|| format!("prompt {:?}", c.prompt))?;
        let selected: BTreeSet<String> = reply
            .calls
            .iter()
            .map(|call| tools.mcp_name(&call.name).to_owned())
            .collect();
        let expected = c.expect.tools();
        let (precision, recall) = score(&expected, &selected);
        rows.push(Row {
            prompt: c.prompt.clone(),
            kind: c.kind.clone().unwrap_or_else(|| "direct".into()),
            ok: selected == expected,
            expected,
            selected,
            precision,
            recall,
        });
    }
    up.shutdown().await;
    let expected_total: usize = rows.iter().map(|r| r.expected.len()).sum();
    let selected_total: usize = rows.iter().map(|r| r.selected.len()).sum();
    let hits: usize = rows
        .iter()
        .map(|r| r.expected.intersection(&r.selected).count())
        .sum();
    let precision = if selected_total == 0 {
        1.0
    } else {
        hits as f64 / selected_total as f64
    };
    let recall = if expected_total == 0 {
        1.0
    } else {
        hits as f64 / expected_total as f64
    };
    let passed = rows.iter().filter(|r| r.ok).count();
    if args.json_output {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": provider.model, "prompts": rows,
                "precision": precision, "recall": recall, "passed": passed
            }))?
        )?;
    } else {
        let set = |s: &BTreeSet<String>| {
            if s.is_empty() {
                "(none)".to_owned()
            } else {
                s.iter().cloned().collect::<Vec<_>>().join(",")
            }
        };
        say!(
            "{:<4} {:<9} {:<22} {:<22} {:>5} {:>5}  prompt",
            "",
            "kind",
            "expected",
            "selected",
            "prec",
            "rec"
        )?;
        for r in &rows {
            say!(
                "{:<4} {:<9} {:<22} {:<22} {:>5.2} {:>5.2}  {}",
                if r.ok { "ok" } else { "MISS" },
                r.kind,
                set(&r.expected),
                set(&r.selected),
                r.precision,
                r.recall,
                r.prompt
            )?;
        }
        say!(
            "overall ({}): precision {precision:.2}, recall {recall:.2}, {passed}/{} prompts exact",
            provider.model,
            rows.len()
        )?;
    }
    let below = args.min_precision.is_some_and(|m| precision < m)
        || args.min_recall.is_some_and(|m| recall < m);
    Ok(if below {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_example_golden_file_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/chat/golden.yaml");
        let golden = load(&path).unwrap();
        assert_eq!(golden.prompts.len(), 5);
        assert!(golden.prompts[4].expect.tools().is_empty());
    }

    #[test]
    fn a_bad_golden_file_says_why() {
        let dir = std::env::temp_dir().join(format!("wharf-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.yaml");
        for (text, why) in [
            (
                "prompts:\n  - prompt: x\n    kind: sideways\n",
                "kind `sideways` is not one of",
            ),
            (
                "prompts:\n  - prompt: x\n    kind: negative\n    expect: a\n",
                "negative but expects a tool",
            ),
            ("prompts:\n  - promt: x\n", "unknown field `promt`"),
            ("prompts: []\n", "no prompts"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = load(&path).err().expect(text).to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn scores() {
        assert_eq!(score(&set(&["a"]), &set(&["a"])), (1.0, 1.0));
        assert_eq!(score(&set(&["a"]), &set(&[])), (1.0, 0.0));
        assert_eq!(score(&set(&[]), &set(&["b"])), (0.0, 1.0));
        assert_eq!(score(&set(&["a", "b"]), &set(&["a", "c"])), (0.5, 0.5));
        assert_eq!(score(&set(&[]), &set(&[])), (1.0, 1.0));
    }
}
