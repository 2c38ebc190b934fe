//! The widgets in `web/`: install their pinned npm packages, build them with
//! esbuild into `web/dist/` (committed, embedded in the binary), check that the
//! committed build is current, and run the browser tests in headless Chromium.

use std::{path::Path, process::Command};

use anyhow::{Result, bail};

use crate::{run, tools::Tools, workspace_root};

/// Where Debian's `chromium` package puts the browser; CHROMIUM_PATH overrides.
const CHROMIUM: &str = "/usr/bin/chromium";

fn node(tools: &Tools, args: &[&str]) -> Command {
    let mut cmd = Command::new(&tools.node);
    cmd.args(args);
    cmd
}

/// `npm ci` in web/ from its lock file.
fn install() -> Result<()> {
    let web = workspace_root().join("web");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&web))
}

/// `cargo xtask widget`: rebuild web/dist/ from web/src/.
pub(crate) fn build(tools: &Tools) -> Result<()> {
    install()?;
    run(&mut node(tools, &["web/build.mjs"]))
}

/// Type-check the sources and fail if web/dist/ is not what they build to.
pub(crate) fn check(tools: &Tools) -> Result<()> {
    install()?;
    run(&mut node(
        tools,
        &["web/node_modules/typescript/bin/tsc", "-p", "web"],
    ))?;
    run(&mut node(tools, &["web/build.mjs", "--check"]))
}

/// The browser tests against the `wharf` binary at `wharf`.
pub(crate) fn test(tools: &Tools, wharf: &Path) -> Result<()> {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.into());
    if !Path::new(&chromium).exists() {
        bail!(
            "the widget tests need Chromium at {chromium}: `apt-get install chromium`, or set CHROMIUM_PATH"
        );
    }
    run(node(tools, &["--test", "web/test/widget.test.mjs"])
        .env("TEST_WHARF_BIN", wharf)
        // The Python SDK server whose widget is tested behind the gateway.
        .env("TEST_PYTHON", &tools.python)
        .env("CHROMIUM_PATH", chromium))
}
