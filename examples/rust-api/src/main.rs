//! A notes server in a few dozen lines: two tools with typed, bounded inputs, a
//! resource, and every transport, limit and setting of `wharf serve`.
//!
//! cargo run -p wharf-example-notes -- serve      # http://127.0.0.1:8000/mcp
//! cargo run -p wharf-example-notes -- stdio      # for Claude Desktop and friends

use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wharf_core::{App, ToolError, ToolSpec, structured_result, text_result};

#[derive(Deserialize, JsonSchema)]
struct AddNote {
    /// The note's text.
    #[schemars(length(min = 1, max = 2000))]
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct ListNotes {
    /// Only notes containing this text.
    #[schemars(length(max = 100))]
    #[serde(default)]
    containing: String,
}

#[derive(Serialize, JsonSchema)]
struct Notes {
    notes: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let (add, list) = (notes.clone(), notes);
    let app = App::builder("notes", "1.0.0")
        .tool(
            ToolSpec::typed("add_note", move |_, args: AddNote| {
                let notes = add.clone();
                async move {
                    let mut notes = wharf_core::sync::lock(&notes);
                    notes.push(args.text);
                    Ok::<_, ToolError>(text_result(format!("Saved. {} note(s) now.", notes.len())))
                }
            })
            .description("Use this when the user asks you to remember something."),
        )
        .tool(
            ToolSpec::typed("list_notes", move |_, args: ListNotes| {
                let notes = list.clone();
                async move {
                    let notes = wharf_core::sync::lock(&notes);
                    let found: Vec<String> = notes
                        .iter()
                        .filter(|n| n.contains(&args.containing))
                        .cloned()
                        .collect();
                    let summary = format!("{} note(s)", found.len());
                    structured_result(&Notes { notes: found }, summary)
                }
            })
            .description("Use this when the user asks what they told you to remember.")
            .output::<Notes>()
            .read_only(),
        )
        .build()
        .expect("the tools are valid");
    wharf::run_app(app)
}
