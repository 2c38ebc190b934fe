//! The scale-out test: PostgreSQL, Redis, three `wharf serve` replicas and nginx
//! round robin in front (deploy/nginx/wharf-proxy.conf, no stickiness), all real
//! processes on loopback.
//!
//! 1. Load: 2026-07-28 clients and legacy 2025-11-25 sessions call tools through
//!    nginx while one replica is killed (SIGKILL, no drain) and restarted. A
//!    client retries a request that got no answer (connection error, 502/503/504)
//!    with backoff, as MCP clients do; a legacy session is never re-initialized
//!    unless a replica says it does not know it (404), which is counted.
//!    Passes when no request fails for good and no session is re-initialized.
//! 2. Limits: a burst against a per-tool limit, spread by nginx over the three
//!    replicas, must be held to the limit once (Redis), not once per replica.
//! 3. The conformance suite through nginx, replicas serving its fixtures
//!    (`examples/conformance`).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    conformance::{free_port, healthy},
    target_dir,
    tools::Tools,
    workspace_root,
};

const REPLICAS: usize = 3;
/// Length of the load phase, when the replica is killed, and for how long.
const LOAD: Duration = Duration::from_secs(14);
const KILL_AT: Duration = Duration::from_secs(4);
const DOWN_FOR: Duration = Duration::from_secs(3);
const MODERN_CLIENTS: usize = 3;
const LEGACY_SESSIONS: usize = 3;
/// Attempts per request before it counts as failed; backoff doubles from 100 ms.
const MAX_ATTEMPTS: u32 = 6;
/// `get_item` calls per caller per minute, and the burst sent against it.
const TOOL_LIMIT: u64 = 30;
const BURST: u64 = 60;
const LOAD_KEY: &str = "scale-out-load-key-0123456789abcdef";
const BURST_KEY: &str = "scale-out-burst-key-0123456789abcdef";
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// A child process, stopped with SIGTERM (then SIGKILL) when dropped; nginx's
/// master must be asked, or its workers outlive it.
struct Proc(Child);

impl Proc {
    /// A crash: SIGKILL, no drain.
    fn crash(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        std::mem::forget(self);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One replica's port, data directory and process.
struct Replica {
    port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    reinitialized: AtomicU64,
}

impl Tally {
    fn row(&self, name: &str) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{name:<22} {:>6} {:>6} {:>7} {:>8} {:>15}",
            n(&self.sent),
            n(&self.ok),
            n(&self.failed),
            n(&self.retried),
            n(&self.reinitialized)
        )
    }
}

pub(crate) fn run(tools: &Tools) -> Result<()> {
    let dir = target_dir().join("scale-out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let pg = crate::postgres::start()?;
    let redis_port = free_port()?;
    let _redis = Proc(
        Command::new("redis-server")
            .args([
                "--port",
                &redis_port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server (Debian package redis-server)")?,
    );
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| {
            Ok(Replica {
                port: free_port()?,
                dir: dir.join(format!("replica-{i}")),
                proc: None,
            })
        })
        .collect::<Result<_>>()?;
    let catalog_env = vec![
        ("WHARF_PROFILE", "catalog".to_owned()),
        ("WHARF_DATABASE", pg.url.clone()),
        ("WHARF_REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
        (
            "WHARF_API_KEYS",
            format!("load:{LOAD_KEY},burst:{BURST_KEY}"),
        ),
        ("WHARF_RATE_LIMIT_SUBJECT", "1000000".to_owned()),
        ("WHARF_RATE_LIMIT_TOOLS", format!("get_item={TOOL_LIMIT}")),
        ("WHARF_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
    ];
    // The first replica seeds the catalog; the others start on a full database.
    for r in &mut replicas {
        start(r, "wharf", &catalog_env)?;
    }
    let nginx_port = free_port()?;
    let _nginx = nginx(&dir, nginx_port, &replicas, Balance::RoundRobin)?;
    let base = format!("http://127.0.0.1:{nginx_port}");

    // 1. Load, with a replica killed and restarted in the middle.
    let modern = Arc::new(Tally::default());
    let legacy = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..MODERN_CLIENTS {
        let (tally, stop, base) = (modern.clone(), stop.clone(), base.clone());
        workers.push(thread::spawn(move || {
            modern_client(i, &base, &tally, &stop)
        }));
    }
    for i in 0..LEGACY_SESSIONS {
        let (tally, stop, base) = (legacy.clone(), stop.clone(), base.clone());
        workers.push(thread::spawn(move || {
            legacy_client(i, &base, &tally, &stop)
        }));
    }
    let began = Instant::now();
    thread::sleep(KILL_AT);
    let victim = &mut replicas[1];
    // SIGKILL: no drain, requests in flight on it are cut.
    if let Some(p) = victim.proc.take() {
        p.crash();
    }
    eprintln!(
        "scale-out: killed replica 1 (port {}) at {:?}",
        victim.port,
        began.elapsed()
    );
    thread::sleep(DOWN_FOR);
    start(victim, "wharf", &catalog_env)?;
    eprintln!("scale-out: replica 1 back at {:?}", began.elapsed());
    thread::sleep(LOAD.saturating_sub(began.elapsed()));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a load client panicked"))??;
    }
    let served: Vec<u64> = replicas.iter().map(|r| tool_calls(r.port)).collect();

    // 2. The per-tool limit, across replicas.
    let (accepted, refused) = burst(&base)?;

    println!();
    println!(
        "scale-out: {REPLICAS} replicas behind nginx round robin (no stickiness), sessions in PostgreSQL, \
         limits in Redis; replica 1 SIGKILLed at {}s, restarted {}s later",
        KILL_AT.as_secs(),
        DOWN_FOR.as_secs()
    );
    println!(
        "{:<22} {:>6} {:>6} {:>7} {:>8} {:>15}",
        "clients", "sent", "ok", "failed", "retried", "re-initialized"
    );
    println!("{}", modern.row(&format!("modern ({MODERN})")));
    println!("{}", legacy.row(&format!("legacy ({LEGACY})")));
    println!("tool calls served per replica (replica 1 since its restart): {served:?}");
    println!(
        "rate limit: get_item at {TOOL_LIMIT}/min per caller; {BURST} calls through {REPLICAS} replicas: \
         {accepted} accepted, {refused} refused (429)"
    );
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut problems = Vec::new();
    if n(&modern.failed) > 0 || n(&legacy.failed) > 0 {
        problems.push("requests failed after every retry".to_owned());
    }
    if n(&legacy.reinitialized) > 0 {
        problems.push("legacy sessions had to be re-initialized".to_owned());
    }
    if n(&modern.ok) == 0 || n(&legacy.ok) == 0 {
        problems.push("a kind of client got no answer at all".to_owned());
    }
    if served.iter().filter(|&&s| s > 0).count() < REPLICAS {
        problems.push(format!("not every replica served calls: {served:?}"));
    }
    // One token may refill while the burst is sent.
    if !(TOOL_LIMIT..=TOOL_LIMIT + 1).contains(&accepted) {
        problems.push(format!(
            "the limit did not hold across replicas: {accepted} accepted"
        ));
    }
    if !problems.is_empty() {
        bail!(
            "scale-out: {}; logs in {}",
            problems.join("; "),
            dir.display()
        );
    }

    // 3. The conformance suite through nginx.
    let conformance_env = vec![
        ("WHARF_DATABASE", pg.url.clone()),
        ("WHARF_RATE_LIMIT", "false".to_owned()),
        // requestState sealed on one replica is opened on another.
        (
            "WHARF_STATE_KEY",
            "scale-out-state-key-0123456789abcdef0123".to_owned(),
        ),
    ];
    for r in &mut replicas {
        r.proc = None;
    }
    for r in &mut replicas {
        start(r, CONFORMANCE_BIN, &conformance_env)?;
    }
    // 2026-07-28 is stateless: plain round robin. A legacy session's
    // server-to-client requests (elicitation, sampling) are answered by a new
    // POST, which must reach the replica waiting for it, and its log level lives
    // in that replica: route legacy sessions by their Mcp-Session-Id.
    let results = dir.join("conformance");
    let (modern_runs, legacy_runs): (Vec<_>, Vec<_>) = crate::conformance::RUNS
        .iter()
        .copied()
        .partition(|(_, spec)| *spec == MODERN);
    let mut passed = crate::conformance::run_against(
        tools,
        &format!("{base}/mcp"),
        &results,
        &modern_runs,
        TOLERATED,
    )?;
    drop(_nginx);
    let _nginx = nginx(&dir, nginx_port, &replicas, Balance::BySession)?;
    passed += crate::conformance::run_against(
        tools,
        &format!("{base}/mcp"),
        &results,
        &legacy_runs,
        &[],
    )?;
    println!(
        "conformance through nginx over {REPLICAS} replicas ({MODERN}: round robin; 2025-x: by session id): \
         {passed} passed, none failed"
    );
    Ok(())
}

/// The conformance suite's fixtures, behind the `wharf` command line.
const CONFORMANCE_BIN: &str = "wharf-example-conformance";

/// Warnings that a round-robin spread makes unavoidable: the fixture changes the
/// tool (prompt) list of the one replica its request reaches, in memory; the
/// subscription stream is open on another replica, whose list did not change, so
/// it has nothing true to announce. (A real deployment changes every replica's
/// list, by configuration, and each announces its own change.)
const TOLERATED: &[(&str, &str)] = &[
    (
        "sep-2575-server-sends-tools-list-changed-on-subscription",
        "the list changed on another replica than the one holding the stream",
    ),
    (
        "sep-2575-server-sends-prompts-list-changed-on-subscription",
        "the list changed on another replica than the one holding the stream",
    ),
];

/// How nginx spreads requests over the replicas.
#[derive(Clone, Copy)]
enum Balance {
    RoundRobin,
    /// `hash $http_mcp_session_id consistent`: a legacy session stays on one
    /// replica while it lives (requests without one are spread).
    BySession,
}

/// Start `r` with `env` and wait until it answers /health.
fn start(r: &mut Replica, bin: &str, env: &[(&str, String)]) -> Result<()> {
    std::fs::create_dir_all(&r.dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(r.dir.join("server.log"))?;
    let child = Command::new(target_dir().join("debug").join(bin))
        .arg("--data-dir")
        .arg(&r.dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", r.port)])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WHARF_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start target/debug/{bin} (build it first)"))?;
    r.proc = Some(Proc(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !healthy(r.port) {
        if Instant::now() > deadline {
            bail!(
                "replica on port {} did not start; see {}",
                r.port,
                r.dir.join("server.log").display()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// nginx on `port`, round robin over the replicas, with the proxy settings of
/// deploy/nginx/wharf-proxy.conf.
fn nginx(dir: &Path, port: u16, replicas: &[Replica], balance: Balance) -> Result<Proc> {
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(&prefix)?;
    std::fs::copy(
        workspace_root().join("deploy/nginx/wharf-proxy.conf"),
        prefix.join("wharf-proxy.conf"),
    )?;
    let servers: String = replicas
        .iter()
        .map(|r| {
            format!(
                "        server 127.0.0.1:{} max_fails=1 fail_timeout=2s;\n",
                r.port
            )
        })
        .collect();
    let balance = match balance {
        Balance::RoundRobin => "",
        Balance::BySession => "        hash $http_mcp_session_id consistent;\n",
    };
    let p = prefix.display();
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {p}/{t};\n"))
        .collect();
    std::fs::write(
        prefix.join("nginx.conf"),
        format!(
            "daemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n\
             {temps}    access_log {p}/access.log;\n    upstream wharf {{\n{balance}{servers}        keepalive 32;\n    }}\n\
             server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://wharf;\n\
             include wharf-proxy.conf;\n        }}\n    }}\n}}\n"
        ),
    )?;
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|n| Command::new(n).arg("-v").output().is_ok())
        .context("nginx is not installed (Debian package nginx)")?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .arg("-e")
        .arg(prefix.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nginx")?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !healthy(port) {
        if Instant::now() > deadline {
            bail!(
                "nginx did not start; see {}",
                prefix.join("error.log").display()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(proc)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// How a request ended after its attempts.
enum Outcome {
    Answer(Value),
    /// A final HTTP status that retrying does not fix (404: unknown session).
    Refused(u16, String),
    GaveUp(String),
}

/// POST `body` until an answer, retrying what got none (a connection error, or
/// 502/503/504 from nginx when a replica is gone) with exponential backoff.
fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
    tally: &Tally,
) -> Outcome {
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let mut last = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tally.retried.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(100 << (attempt - 1)));
        }
        let mut request = client
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(LOAD_KEY);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        match request.json(body).send() {
            Ok(r) if r.status().is_success() => {
                let status = r.status().as_u16();
                let text = r.text().unwrap_or_default();
                match answer(&text) {
                    Some(v) => return Outcome::Answer(v),
                    // An empty 202 (a notification) is an answer too.
                    None if status == 202 => return Outcome::Answer(Value::Null),
                    // A stream cut before its answer: no answer yet.
                    None => last = format!("{status} without a JSON-RPC answer: {text}"),
                }
            }
            Ok(r) if matches!(r.status().as_u16(), 502..=504) => {
                last = format!("{}", r.status());
            }
            Ok(r) => {
                let status = r.status().as_u16();
                return Outcome::Refused(status, r.text().unwrap_or_default());
            }
            Err(e) => last = e.to_string(),
        }
    }
    Outcome::GaveUp(last)
}

/// The JSON-RPC answer in a body: plain JSON, or the `data:` event of an SSE
/// stream (legacy sessions answer on a stream) that carries a result or error.
fn answer(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
}

/// Count an outcome: a result without `isError` is ok, anything else failed.
fn settle(outcome: Outcome, tally: &Tally, who: &str) -> Option<Value> {
    match outcome {
        Outcome::Answer(v) if v.get("error").is_none() && v["result"]["isError"] != true => {
            tally.ok.fetch_add(1, Ordering::Relaxed);
            Some(v)
        }
        Outcome::Answer(v) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("scale-out: {who}: error answer {v}");
            None
        }
        Outcome::Refused(status, body) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("scale-out: {who}: {status} {body}");
            None
        }
        Outcome::GaveUp(why) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("scale-out: {who}: no answer after {MAX_ATTEMPTS} attempts: {why}");
            None
        }
    }
}

const QUERIES: &[&str] = &["tea", "coffee", "mountain", "river", "book", "garden"];

fn search(id: u64, query: &str, meta: Option<Value>) -> Value {
    let mut params = json!({"name": "search_items", "arguments": {"query": query, "limit": 3}});
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "scale-out", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

fn modern_client(i: usize, base: &str, tally: &Tally, stop: &AtomicBool) -> Result<()> {
    let client = http();
    let url = format!("{base}/mcp");
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "search_items"),
    ];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let query = QUERIES[(i + n as usize) % QUERIES.len()];
        let outcome = post(
            &client,
            &url,
            &headers,
            &search(n, query, Some(modern_meta())),
            tally,
        );
        settle(outcome, tally, &format!("modern client {i}"));
    }
    Ok(())
}

/// Open a legacy session through nginx (whichever replica answers).
fn initialize(client: &reqwest::blocking::Client, url: &str) -> Result<String> {
    let r = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(LOAD_KEY)
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "scale-out", "version": "1"}}}))
        .send()?;
    let session = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("initialize answered {} without a session id", r.status()))?;
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", LEGACY)
        .bearer_auth(LOAD_KEY)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()?;
    Ok(session)
}

fn legacy_client(i: usize, base: &str, tally: &Tally, stop: &AtomicBool) -> Result<()> {
    let client = http();
    let url = format!("{base}/mcp");
    let mut session = initialize(&client, &url)?;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let query = QUERIES[(i + n as usize) % QUERIES.len()];
        let headers = [
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", LEGACY),
        ];
        match post(&client, &url, &headers, &search(n, query, None), tally) {
            // The replica does not know the session: it was lost. Count it, and
            // start a new one so the run goes on.
            Outcome::Refused(404, body) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                tally.reinitialized.fetch_add(1, Ordering::Relaxed);
                eprintln!("scale-out: legacy session {i} lost: {body}");
                session = initialize(&client, &url)?;
            }
            outcome => {
                settle(outcome, tally, &format!("legacy session {i}"));
            }
        }
    }
    Ok(())
}

/// `BURST` calls of the limited tool through nginx: (accepted, refused with 429).
fn burst(base: &str) -> Result<(u64, u64)> {
    let client = http();
    let (mut accepted, mut refused) = (0, 0);
    for n in 0..BURST {
        let r = client
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "get_item")
            .bearer_auth(BURST_KEY)
            .json(
                &json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
                "name": "get_item", "arguments": {"id": "no-such-item"}, "_meta": modern_meta()}}),
            )
            .send()?;
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {
                if r.headers().get("retry-after").is_none() {
                    bail!("a 429 without Retry-After");
                }
                refused += 1;
            }
            other => bail!("the burst got {other}: {}", r.text().unwrap_or_default()),
        }
    }
    Ok((accepted, refused))
}

/// Tool calls this replica answered (its `wharf_tool_calls_total`, summed).
fn tool_calls(port: u16) -> u64 {
    let Ok(text) = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .and_then(|r| r.text())
    else {
        return 0;
    };
    text.lines()
        .filter(|l| l.starts_with("wharf_tool_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
