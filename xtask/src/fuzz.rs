//! `cargo xtask fuzz [SECONDS]`: every fuzz target for a bounded time
//! (`fuzz/run.sh`), with cargo-fuzz installed at a pinned version into the
//! tools directory. A crash, a leak or a hang fails the run and leaves the
//! input in `fuzz/artifacts/<target>/`.

use std::process::Command;

use anyhow::Result;

use crate::{run, target_dir};

/// cargo-fuzz, pinned like every other tool the tests drive.
const CARGO_FUZZ: &str = "0.13.2";

pub(crate) fn run_all(seconds: u32) -> Result<()> {
    let root = target_dir().join("ci-tools/cargo-fuzz");
    let bin = root.join("bin");
    if !bin.join("cargo-fuzz").exists() {
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "install",
                    "cargo-fuzz",
                    "--locked",
                    "--version",
                    CARGO_FUZZ,
                    "--root",
                ])
                .arg(&root),
        )?;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&path));
    run(Command::new("bash")
        .arg("fuzz/run.sh")
        .arg(seconds.to_string())
        .env("PATH", std::env::join_paths(paths)?))
}
