//! The built-in app that `wharf serve` offers until a catalog is configured:
//! small, dependency-free tools that show every transport working (and that the
//! benchmarks call).

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wharf_core::{
    App, AppError, PromptSpec, ResourceSpec, ToolError, ToolSpec, structured_result, text_result,
};

/// Longest text `echo` accepts; the bound is part of its published schema.
const MAX_ECHO_LEN: usize = 10_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// The text to send back.
    #[schemars(length(max = 10000))]
    text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    /// First addend.
    a: f64,
    /// Second addend.
    b: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Sum {
    sum: f64,
}

pub(crate) fn app(tool_timeout: std::time::Duration) -> Result<App, AppError> {
    App::builder("wharf", env!("CARGO_PKG_VERSION"))
        .title("Wharf")
        .instructions("Wharf's built-in tools: `echo` returns its input, `add` adds two numbers.")
        .default_tool_timeout(tool_timeout)
        .tool(
            ToolSpec::typed("echo", |_, args: EchoArgs| async move {
                debug_assert!(args.text.len() <= MAX_ECHO_LEN * 4);
                Ok::<_, ToolError>(text_result(args.text))
            })
            .title("Echo")
            .description("Use this when you need to check that the server answers: it returns the text it is given, unchanged.")
            .read_only(),
        )
        .tool(
            ToolSpec::typed("add", |_, args: AddArgs| async move {
                let sum = args.a + args.b;
                structured_result(&Sum { sum }, sum.to_string())
            })
            .title("Add")
            .description("Use this when you need the sum of two numbers.")
            .output::<Sum>()
            .read_only(),
        )
        .resource(ResourceSpec::text(
            "wharf://about",
            "about",
            "text/markdown",
            concat!("# Wharf ", env!("CARGO_PKG_VERSION"), "\n\nA production host for MCP servers and ChatGPT apps.\n"),
        ))
        .prompt(PromptSpec::new(
            Prompt::new(
                "explain_tool",
                Some("Ask the model to explain what one of this server's tools does"),
                Some(vec![PromptArgument::new("tool").with_description("The tool's name").with_required(true)]),
            ),
            |_, args| async move {
                let tool = args.get("tool").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Explain in two sentences what the `{tool}` tool of this server does and when to use it."),
                )]))
            },
        ))
        .build()
}
