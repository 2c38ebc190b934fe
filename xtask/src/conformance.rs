//! The official conformance suite against `wharf serve --profile conformance`.
//!
//! Done means 0 failed checks and 0 warnings in every `checks.json`: the suite's
//! exit code ignores warnings, so the files are read and counted here.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{target_dir, tools::Tools};

/// (suite version, spec version) pairs that must pass.
pub const RUNS: &[(&str, &str)] = &[
    ("0.1.16", "2025-11-25"),
    ("0.2.0-alpha.12", "2025-11-25"),
    ("0.2.0-alpha.12", "2026-07-28"),
];

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// Returns (checks passed, checks failed or warned).
pub fn run(tools: &Tools) -> Result<(usize, usize)> {
    let results = target_dir().join("conformance");
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results)?;
    let port = free_port()?;
    let data = results.join("data");
    let log = std::fs::File::create(results.join("server.log"))?;
    let server = Server(
        Command::new(target_dir().join("debug/wharf"))
            .args(["--profile", "conformance", "--data-dir"])
            .arg(&data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // The suite sends a few hundred requests a minute from one IP, above the
            // default anonymous limit (100/min); the limits have their own tests.
            .env("WHARF_RATE_LIMIT", "false")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start target/debug/wharf (build it first)")?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if Instant::now() > deadline {
            bail!(
                "the conformance server did not start; see {}",
                results.join("server.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = run_against(
        tools,
        &format!("http://127.0.0.1:{port}/mcp"),
        &results,
        RUNS,
        &[],
    );
    drop(server);
    result
}

/// `runs` (from [`RUNS`]) against the server at `url`; results under `results`.
/// `tolerated`: (check id, why) of SHOULD-level warnings accepted for this
/// setup, printed with their reason; any other failure or warning fails.
pub fn run_against(
    tools: &Tools,
    url: &str,
    results: &Path,
    runs: &[(&str, &str)],
    tolerated: &[(&str, &str)],
) -> Result<(usize, usize)> {
    let mut total_passed = 0;
    let mut bad = Vec::new();
    for (suite, spec) in runs {
        let entry = &tools
            .conformance
            .iter()
            .find(|(v, _)| v == suite)
            .context("suite not installed")?
            .1;
        let out = results.join(format!("{suite}-{spec}"));
        crate::run(
            Command::new(&tools.node)
                .arg(entry)
                .args([
                    "server",
                    "--url",
                    url,
                    "--suite",
                    "all",
                    "--spec-version",
                    spec,
                    "-o",
                ])
                .arg(&out)
                .stdout(Stdio::null()),
        )
        .with_context(|| {
            format!(
                "conformance {suite} at {spec} failed; see {}",
                out.display()
            )
        })?;
        let (passed, mut problems) = count(&out)?;
        problems.retain(|p| {
            let known = tolerated
                .iter()
                .find(|(id, _)| p.starts_with(&format!("{id} WARNING")));
            if let Some((id, why)) = known {
                eprintln!("conformance {suite} at {spec}: tolerated warning {id}: {why}");
            }
            known.is_none()
        });
        eprintln!(
            "conformance {suite} at {spec}: {passed} checks passed, {} failed or warned",
            problems.len()
        );
        total_passed += passed;
        bad.extend(
            problems
                .into_iter()
                .map(|p| format!("{suite} at {spec}: {p}")),
        );
    }
    for line in &bad {
        eprintln!("  {line}");
    }
    if !bad.is_empty() {
        bail!(
            "{} conformance check(s) failed or warned; results in {}",
            bad.len(),
            results.display()
        );
    }
    if total_passed == 0 {
        bail!("the conformance suite ran no checks");
    }
    Ok((total_passed, bad.len()))
}

/// Checks that passed, and a line for each that failed or warned.
fn count(dir: &Path) -> Result<(usize, Vec<String>)> {
    let mut passed = 0;
    let mut problems = Vec::new();
    let mut files = 0;
    for scenario in std::fs::read_dir(dir)? {
        let path = scenario?.path().join("checks.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        files += 1;
        let checks: Vec<Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for check in checks {
            match check["status"].as_str().unwrap_or("") {
                "SUCCESS" => passed += 1,
                "INFO" | "SKIPPED" => {}
                status => problems.push(format!(
                    "{} {status}: {}",
                    check["id"].as_str().unwrap_or("?"),
                    check["errorMessage"].as_str().unwrap_or("")
                )),
            }
        }
    }
    if files == 0 {
        bail!("no checks.json under {}", dir.display());
    }
    Ok((passed, problems))
}
