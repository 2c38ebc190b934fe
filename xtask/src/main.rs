//! Project automation. `cargo xtask ci` runs exactly what CI runs, so a green run
//! on a developer's machine means a green CI.
//!
//! `ci` = format and lint checks, the Rust tests (against SQLite and a real
//! PostgreSQL server it starts), the real-client tests (the
//! official Python SDK over stdio, Streamable HTTP and HTTP+SSE) and the official
//! MCP conformance suite against its fixtures (`examples/conformance`), counting
//! every failed check and every warning in its `checks.json` files, and the
//! widget: its committed build is current, and it works in headless Chromium
//! under an MCP Apps host and a `window.openai` host.
//!
//! `scale-out` (also part of `ci`) runs three replicas behind nginx on
//! PostgreSQL and Redis, kills one under load, and runs the conformance suite
//! through nginx.
//!
//! `widget` rebuilds `web/dist/` from `web/src/` (esbuild).
//!
//! `fuzz [SECONDS]` (also part of `ci`, 60 s a target) runs every libFuzzer
//! target in `fuzz/` for a bounded time.
//!
//! Tools that are not Rust (Node 22, the conformance suite, the Python SDK, the
//! deployment files' validators, Helm) are installed from the package
//! registries, at pinned versions, into `<target>/ci-tools/`, once.

// Automation runs outside any runtime and any Wharf crate: std's clock and
// plain mutexes are right here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod conformance;
mod fuzz;
mod postgres;
mod scale_out;
mod tidy;
mod tools;
mod widget;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("conformance") => build_servers()
            .and_then(|()| tools::ensure())
            .and_then(|t| conformance::run(&t).map(|_| ())),
        Some("conformance-gateway") => build_servers()
            .and_then(|()| tools::ensure())
            .and_then(|t| conformance::run_gateway(&t).map(|_| ())),
        Some("widget") => tools::ensure().and_then(|t| widget::build(&t)),
        Some("fuzz") => fuzz::run_all(
            args.get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(FUZZ_SECONDS),
        ),
        Some("tidy") => tidy(),
        Some("scale-out") => build_servers()
            .and_then(|()| tools::ensure())
            .and_then(|t| scale_out::run(&t)),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | conformance | conformance-gateway | scale-out | widget | fuzz [SECONDS]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The layout rules (xtask/src/tidy.rs); `cargo test` checks them too.
fn tidy() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let problems = tidy::check(&root);
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() {
        bail!("{} layout rule(s) broken", problems.len());
    }
    Ok(())
}

/// Run a command from the workspace root; fail with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (CI keeps it outside
/// the clone so that builds are incremental across runs), else `./target`.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), Into::into)
}

/// The binaries the end-to-end suites start: `wharf`, and the two example
/// programs built on its library (the notes app, the conformance fixtures).
fn build_servers() -> Result<()> {
    run(cargo().args([
        "build",
        "-p",
        "wharf",
        "-p",
        "wharf-example-notes",
        "-p",
        "wharf-example-conformance",
    ]))
}

/// How long CI fuzzes each target.
const FUZZ_SECONDS: u32 = 60;

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The catalog's tests run on SQLite always and on PostgreSQL here.
    let pg = postgres::start()?;
    run(cargo()
        .args(["test", "--workspace"])
        .env("TEST_POSTGRES_URL", &pg.url))?;
    drop(pg);
    build_servers()?;
    let tools = tools::ensure()?;
    widget::check(&tools)?;
    let wharf = target_dir().join("debug/wharf");
    // The real authorization server (oidc-provider) of the OAuth end-to-end tests.
    run(Command::new("npm").args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--prefix",
        "tests/auth-server",
    ]))?;
    run(Command::new(&tools.python)
        .args(["-m", "pytest", "-q", "tests/clients", "tests/deploy"])
        .env("TEST_NODE", &tools.node)
        .env("TEST_INSPECTOR", &tools.inspector)
        .env("TEST_WHARF_BIN", &wharf)
        .env("TEST_HELM", &tools.helm)
        .env(
            "TEST_EXAMPLE_BIN",
            target_dir().join("debug/wharf-example-notes"),
        ))?;
    widget::test(&tools, &wharf)?;
    let passed = conformance::run(&tools)?;
    println!("conformance: {passed} passed, none failed");
    let passed = conformance::run_gateway(&tools)?;
    println!("conformance through `wharf gateway`: {passed} passed, none failed");
    scale_out::run(&tools)?;
    fuzz::run_all(FUZZ_SECONDS)?;
    Ok(())
}
