//! The official conformance suite against its fixtures served by Wharf
//! (`examples/conformance`), directly and through `wharf gateway`.
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
pub(crate) const RUNS: &[(&str, &str)] = &[
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

/// A free loopback port for a server this run starts, below the kernel's
/// ephemeral range. A port from `bind(0)` is itself ephemeral: between this
/// check and the server's own bind, the kernel may hand it out as the source
/// port of an outgoing connection (a replica's connections to PostgreSQL did,
/// once). Ports handed out in this run are not handed out again.
pub(crate) fn free_port() -> Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    const LOWEST: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(LOWEST + 1_000);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 0u64..10_000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let port = LOWEST + (h.finish() % u64::from(ephemeral_start - LOWEST)) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port between {LOWEST} and {ephemeral_start}")
}

pub(crate) fn healthy(port: u16) -> bool {
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

/// Returns the number of checks that passed (any failure is an error).
pub(crate) fn run(tools: &Tools) -> Result<usize> {
    let results = target_dir().join("conformance");
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results)?;
    let (server, port) = conformance_server(&results)?;
    let passed = run_against(
        tools,
        &format!("http://127.0.0.1:{port}/mcp"),
        &results,
        RUNS,
        &[],
    )?;
    drop(server);
    no_errors_logged(&results.join("server.log"))?;
    Ok(passed)
}

/// A whole conformance run (clients connecting, failing on purpose and going
/// away) is normal traffic: the server must log no ERROR line for it.
fn no_errors_logged(log: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("cannot read {}", log.display()))?;
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    if !errors.is_empty() {
        bail!(
            "the server logged {} ERROR line(s) during the conformance run ({}), the first: {}",
            errors.len(),
            log.display(),
            errors[0]
        );
    }
    Ok(())
}

/// The suite against `wharf gateway` fronting the conformance server, names
/// unprefixed (`namespace: ""`), so the fixtures keep their names.
pub(crate) fn run_gateway(tools: &Tools) -> Result<usize> {
    let results = target_dir().join("conformance-gateway");
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results)?;
    let (_server, upstream) = conformance_server(&results)?;
    let file = results.join("mcp.json");
    std::fs::write(
        &file,
        serde_json::json!({"servers": [{
            "name": "conformance",
            "namespace": "",
            "url": format!("http://127.0.0.1:{upstream}/mcp"),
            "max_retries": 0
        }]})
        .to_string(),
    )?;
    let upstreams = ["--upstreams".as_ref(), file.as_os_str()];
    let (gateway, port) = wharf(&results, "gateway", &["gateway".as_ref()], &upstreams)?;
    let passed = run_against(
        tools,
        &format!("http://127.0.0.1:{port}/mcp"),
        &results,
        RUNS,
        &[],
    )?;
    drop(gateway);
    no_errors_logged(&results.join("gateway.log"))?;
    Ok(passed)
}

/// The suite's fixtures (`examples/conformance`, built on `wharf::run_app`:
/// the `wharf` command line and HTTP stack) serving on a free port, its log
/// in `results`.
fn conformance_server(results: &Path) -> Result<(Server, u16)> {
    let data = results.join("data");
    let global = ["--data-dir".as_ref(), data.as_os_str()];
    start(
        "wharf-example-conformance",
        results,
        "server",
        &global,
        &["serve".as_ref()],
    )
}

/// `target/debug/wharf GLOBAL COMMAND --listen 127.0.0.1:PORT` on a free port,
/// ready; its log is `results/NAME.log`. Rate limits are off: the suite sends a
/// few hundred requests a minute from one IP, above the default anonymous limit
/// (100/min); the limits have their own tests.
fn wharf(
    results: &Path,
    name: &str,
    global: &[&std::ffi::OsStr],
    command: &[&std::ffi::OsStr],
) -> Result<(Server, u16)> {
    start("wharf", results, name, global, command)
}

/// [`wharf`] for any binary built on the `wharf` command line.
fn start(
    bin: &str,
    results: &Path,
    name: &str,
    global: &[&std::ffi::OsStr],
    command: &[&std::ffi::OsStr],
) -> Result<(Server, u16)> {
    let port = free_port()?;
    let log_path = results.join(format!("{name}.log"));
    let server = Server(
        Command::new(target_dir().join("debug").join(bin))
            .args(global)
            .args(command)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("WHARF_RATE_LIMIT", "false")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .with_context(|| format!("cannot start target/debug/{bin} (build it first)"))?,
    );
    wait_healthy(port, &log_path)?;
    Ok((server, port))
}

fn wait_healthy(port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if Instant::now() > deadline {
            bail!("the server did not start; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `runs` (from [`RUNS`]) against the server at `url`; results under `results`.
/// `tolerated`: (check id, why) of SHOULD-level warnings accepted for this
/// setup, printed with their reason; any other failure or warning fails.
/// Returns the number of checks that passed.
pub(crate) fn run_against(
    tools: &Tools,
    url: &str,
    results: &Path,
    runs: &[(&str, &str)],
    tolerated: &[(&str, &str)],
) -> Result<usize> {
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
    Ok(total_passed)
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
