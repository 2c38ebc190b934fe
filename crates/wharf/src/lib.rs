//! The `wharf` binary as a library: command dispatch, configuration, telemetry.
//!
//! Only this crate reads environment variables, files and command-line
//! arguments; the library crates receive typed settings.

mod builtin;
mod catalog_app;
mod catalog_cli;
mod chat;
mod cli;
mod client;
pub mod config;
mod config_tools;
mod conformance;
mod database;
mod demo;
mod eval;
mod gateway;
mod llm;
mod log_queue;
mod telemetry;

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use wharf_core::{App, WharfServer};

use cli::{CatalogCommand, Cli, Command};
use config::{Config, Profile, SessionStoreKind, Sources, layers::Problem};

/// Exit code for a configuration that cannot be used (as sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

/// After the command finishes, how long blocking work still running (a SQL
/// statement past the drain grace, a file read) may delay the exit.
const ABANDON_BLOCKING_AFTER: Duration = Duration::from_millis(500);

/// The session store's heartbeat: how often live sessions are marked used and
/// expired ones swept, as a fraction of the idle timeout.
const HEARTBEAT_FRACTION: u32 = 4;

/// The `wharf` command: parse the command line and run it.
pub fn run() -> ExitCode {
    run_with(None)
}

/// Run the `wharf` command line for a program's own [`App`]: `serve`, `stdio`
/// and `check` behave exactly as they do for `wharf`, with every setting, limit
/// and transport, but offer `app` instead of a profile.
///
/// ```no_run
/// use wharf_core::{App, ToolError, ToolSpec, text_result};
///
/// fn main() -> std::process::ExitCode {
///     let app = App::builder("hello", "1.0.0")
///         .tool(ToolSpec::new("hello").description("Use this to say hello.").handler(|_, _| async {
///             Ok::<_, ToolError>(text_result("Hello!"))
///         }))
///         .build()
///         .expect("a valid app");
///     wharf::run_app(app)
/// }
/// ```
pub fn run_app(app: App) -> ExitCode {
    run_with(Some(Arc::new(app)))
}

fn run_with(app: Option<Arc<App>>) -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::ConfigReference) {
        print!("{}", config::keys::reference_markdown());
        return ExitCode::SUCCESS;
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(problems) => {
            report(&problems);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Command::Health { url, live } = &cli.command {
        return health(&config, url.as_deref(), *live);
    }
    if let Command::Check { submission: false } = cli.command {
        if let Err(problems) = check_files(&config) {
            report(&problems);
            return ExitCode::from(EXIT_CONFIG);
        }
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let mut config = config;
    if matches!(
        cli.command,
        Command::Client(_) | Command::Demo { .. } | Command::Chat(_) | Command::Eval(_)
    ) && cli.common.log_level.is_none()
        && std::env::var_os("WHARF_LOG").is_none()
    {
        // A terminal command: its output is the answer, not the connection's story.
        config.log_level = if matches!(cli.command, Command::Demo { .. }) {
            "error,rmcp=off".into()
        } else {
            "warn,rmcp=off".into()
        };
    }
    // A server logs its fatal error as a log line (in the log's format); a
    // terminal command prints it for the person who ran it. Never both.
    let logs_fatal_errors = matches!(
        cli.command,
        Command::Serve(_) | Command::Stdio | Command::Gateway(_)
    );
    let fatal_also_printed = !logs_fatal_errors || config.log_format == config::LogFormat::Json;
    let telemetry = match telemetry::init(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Check { submission: true } = cli.command {
        return match runtime.block_on(check_submission(&config, app)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut code = ExitCode::SUCCESS;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(_) => serve(config, app, telemetry.registry().clone()).await,
            Command::Stdio => stdio(config, app).await,
            Command::Catalog(CatalogCommand::Import {
                file,
                format,
                skip_invalid,
            }) => {
                catalog_cli::import(
                    database::open(&config).await?.catalog(config.sql_limits),
                    &file,
                    format.as_deref(),
                    skip_invalid,
                )
                .await
            }
            Command::Catalog(CatalogCommand::Export { output }) => {
                catalog_cli::export(
                    database::open(&config).await?.catalog(config.sql_limits),
                    output.as_deref(),
                )
                .await
            }
            Command::Client(args) => {
                code = client::run(args).await?;
                Ok(())
            }
            Command::Gateway(cli::GatewayArgs {
                command: Some(cli::GatewayCommand::Status { url, json_output }),
                ..
            }) => {
                let url = url.unwrap_or_else(|| {
                    format!("http://127.0.0.1:{}/metrics", config.listen.port())
                });
                gateway::status(
                    &url,
                    config.metrics_key.as_ref().map(|k| k.expose()),
                    json_output,
                )
                .await
            }
            Command::Demo { url } => demo::run(&config, url).await,
            Command::Chat(args) => {
                code = chat::run(args).await?;
                Ok(())
            }
            Command::Eval(args) => {
                code = eval::run(args).await?;
                Ok(())
            }
            Command::Gateway(g) if g.stdio => stdio(config, app).await,
            Command::Gateway(_) => serve(config, app, telemetry.registry().clone()).await,
            Command::Check { .. } | Command::ConfigReference | Command::Health { .. } => Ok(()),
        }
    });
    // The process ends now, not when the last blocking task does (a SQL
    // statement still running past the drain grace): they are abandoned.
    runtime.shutdown_timeout(ABANDON_BLOCKING_AFTER);
    match result {
        Ok(()) => code,
        Err(e) => {
            if logs_fatal_errors {
                tracing::error!(error = format!("{e:#}"), "wharf stopped");
            }
            // A text log line already says it on stderr; a JSON one is for
            // machines, and the person at the terminal gets the sentence.
            if fatal_also_printed {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `wharf health`: GET the probe (on loopback, at server.listen's port) and
/// exit 0 on 200, 1 otherwise, saying why; a container image has no curl.
fn health(config: &Config, url: Option<&str>, live: bool) -> ExitCode {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let url = url.map_or_else(
        || {
            format!(
                "http://127.0.0.1:{}/{}",
                config.listen.port(),
                if live { "health" } else { "ready" }
            )
        },
        str::to_owned,
    );
    let probe = async {
        let r = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()?
            .get(&url)
            .send()
            .await?;
        let status = r.status();
        Ok::<_, reqwest::Error>((status, r.text().await.unwrap_or_default()))
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(probe).map_err(|e| e.to_string()));
    match result {
        Ok((status, _)) if status == reqwest::StatusCode::OK => {
            println!("{url}: 200");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{url}: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The files the configuration names (widget templates) exist and are readable.
fn check_files(config: &Config) -> Result<(), Vec<Problem>> {
    let mut problems: Vec<Problem> = config
        .tools
        .iter()
        .filter_map(|t| Some((t, t.widget.as_ref()?)))
        .filter_map(|(t, w)| {
            let e = std::fs::read_to_string(&w.template).err()?;
            Some(Problem {
                at: format!("[[tools]] `{}` (`widget.template`)", t.name),
                message: format!(
                    "cannot read {}: {e} (the path is relative to the config file)",
                    w.template.display()
                ),
            })
        })
        .collect();
    if config.profile == Profile::Gateway
        && let Err(more) = gateway::load(config)
    {
        problems.extend(more);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `wharf check --submission`: build the app (without loading the sample
/// catalog) and list every app-submission rule it breaks.
async fn check_submission(config: &Config, app: Option<Arc<App>>) -> anyhow::Result<ExitCode> {
    if let Err(problems) = check_files(config) {
        report(&problems);
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let (app, _db) = build_app(config, app, false).await?;
    let findings = wharf_core::submission::lint(&app, config.public_url.as_deref());
    let widgets = app
        .offer()
        .resources()
        .filter(|r| r.uri().starts_with("ui://"))
        .count();
    if findings.is_empty() {
        println!(
            "submission check: no findings ({} tools, {widgets} widget resources)",
            app.offer().tools().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("submission check: {} finding(s):", findings.len());
    for f in &findings {
        println!("  - {f}");
    }
    Ok(ExitCode::FAILURE)
}

fn report(problems: &[Problem]) {
    eprintln!(
        "wharf: the configuration has {} problem(s):",
        problems.len()
    );
    for p in problems {
        eprintln!("  - {p}");
    }
    eprintln!("Every key is listed in docs/configuration.md (or run `wharf config-reference`).");
}

/// `WHARF_X_FILE=/path` (and `MCP_API_KEY_FILE`) stand for `WHARF_X` with the
/// file's contents, as container platforms mount secrets; one trailing newline
/// is dropped. Setting both spellings of one variable is a mistake.
fn secrets_from_files(
    env: Vec<(String, String)>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let direct: std::collections::HashSet<String> = env.iter().map(|(k, _)| k.clone()).collect();
    let mut out = Vec::with_capacity(env.len());
    for (name, value) in env {
        // A key's own variable (WHARF_LOG_FILE is log.file) is never an indirection.
        let target = name
            .strip_suffix("_FILE")
            .filter(|_| config::keys::by_env(&name).is_none())
            .filter(|t| t.starts_with("WHARF_") || *t == "MCP_API_KEY");
        let Some(target) = target else {
            out.push((name, value));
            continue;
        };
        if direct.contains(target) {
            problems.push(Problem {
                at: name.clone(),
                message: format!("both {target} and {name} are set; keep one"),
            });
            continue;
        }
        match std::fs::read_to_string(&value) {
            Ok(text) => {
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                out.push((target.to_owned(), text.to_owned()));
            }
            Err(e) => problems.push(Problem {
                at: name.clone(),
                message: format!("cannot read {value}: {e}"),
            }),
        }
    }
    out
}

/// Read the file, `.env` and the environment, and apply the flags.
fn load_config(cli: &Cli) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let file = match &cli.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(e) => {
                problems.push(Problem {
                    at: format!("--config {}", path.display()),
                    message: format!("cannot read the file: {e}"),
                });
                None
            }
        },
        None => std::fs::read_to_string("wharf.toml")
            .ok()
            .map(|t| ("wharf.toml".to_owned(), t)),
    };
    // `.env` fills in variables the environment does not set (the usual rule).
    let mut env: Vec<(String, String)> = Vec::new();
    if Path::new(".env").exists() {
        match dotenvy::from_path_iter(".env") {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) if std::env::var_os(&k).is_none() => env.push((k, v)),
                        Ok(_) => {}
                        Err(e) => problems.push(Problem {
                            at: ".env".into(),
                            message: format!("cannot be read: {e}"),
                        }),
                    }
                }
            }
            Err(e) => problems.push(Problem {
                at: ".env".into(),
                message: format!("cannot be read: {e}"),
            }),
        }
    }
    env.extend(std::env::vars());
    let env = secrets_from_files(env, &mut problems);
    match Config::load(Sources {
        file,
        env,
        flags: cli.config_flags(),
    }) {
        Ok(c) if problems.is_empty() => Ok(c),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// The app to serve, and the database when the app or the session store needs one.
/// The app to serve: the program's own, or the configured profile's. `seed`
/// loads the sample catalog into an empty database.
async fn build_app(
    config: &Config,
    given: Option<Arc<App>>,
    seed: bool,
) -> anyhow::Result<(Arc<App>, Option<wharf_catalog::Database>)> {
    let needs_db = given.is_none() && config.profile == Profile::Catalog;
    let db =
        if needs_db || (!config.stateless && config.session_store == SessionStoreKind::Database) {
            Some(database::open(config).await?)
        } else {
            None
        };
    if let Some(app) = given {
        return Ok((app, db));
    }
    let app = match config.profile {
        Profile::Catalog => {
            let (catalog, metrics) = db
                .as_ref()
                .expect("opened above")
                .measured_catalog(config.sql_limits);
            catalog_app::app(
                catalog,
                metrics,
                &config.tools,
                config.tool_timeout,
                config.sql_limits.max_rows,
                seed,
            )
            .await?
        }
        Profile::Builtin => {
            builtin::app(config.tool_timeout).context("the app's tools are not valid")?
        }
        Profile::Conformance => conformance::app(config.state_key.as_ref().map(|k| k.expose()))
            .context("the app's tools are not valid")?,
        Profile::Gateway => return Ok((gateway::app(config).await?, db)),
    };
    Ok((Arc::new(app), db))
}

async fn stdio(mut config: Config, app: Option<Arc<App>>) -> anyhow::Result<()> {
    // stdio has no HTTP sessions to store.
    config.session_store = SessionStoreKind::Memory;
    let (app, _db) = build_app(&config, app, true).await?;
    tracing::info!(tools = app.offer().tools().count(), "serving MCP on stdio");
    let running = rmcp::service::serve_server(WharfServer::new(app), rmcp::transport::stdio())
        .await
        .context("the client did not complete the MCP handshake on stdio")?;
    running.waiting().await.context("stdio session failed")?;
    Ok(())
}

async fn serve(
    config: Config,
    app: Option<Arc<App>>,
    process_metrics: prometheus::Registry,
) -> anyhow::Result<()> {
    let (app, db) = build_app(&config, app, true).await?;
    let mut http = wharf_http::HttpConfig {
        stateless: config.stateless,
        fast_path: config.fast_path,
        allowed_hosts: config.allowed_hosts.clone(),
        allowed_origins: config.allowed_origins.clone(),
        max_body_bytes: config.max_body_bytes,
        body_timeout: config.body_timeout,
        body_min_rate: config.body_min_rate,
        connections: fit_to_descriptors(config.connections),
        max_requests_per_client: config.max_requests_per_client,
        session_idle_timeout: config.session_idle_timeout,
        max_sessions: config.max_sessions,
        sse_keep_alive: config.sse_keep_alive,
        session_store: None,
        session_owners: None,
        ready_check: db.clone().map(|db| -> wharf_http::ReadyCheck {
            Arc::new(move || {
                let db = db.clone();
                Box::pin(async move { db.ping().await })
            })
        }),
        auth: wharf_http::auth::AuthConfig {
            api_keys: config
                .api_keys
                .iter()
                .map(|(name, key)| wharf_http::auth::ApiKey {
                    name: name.clone(),
                    key: key.expose().to_owned(),
                })
                .collect(),
            oauth: config.oauth.clone(),
            anonymous: config.auth_anonymous,
        },
        rate_limit: config.rate_limit.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        max_concurrent_requests: config.max_concurrent_requests,
        max_sse_streams: config.max_sse_streams,
        native_tls: config.tls.is_some(),
        require_https: config.require_https,
        tracing: config.otlp.is_some(),
        metrics_on_main: config.admin_listen.is_none(),
        metrics_key: config.metrics_key.as_ref().map(|k| k.expose().to_owned()),
        drain_delay: config.drain_delay,
        process_metrics: Some(process_metrics),
    };
    let tls = match &config.tls {
        Some(files) => Some(
            wharf_http::tls::TlsConfig::new(files.clone())
                .map_err(|e| anyhow::anyhow!("HTTPS (server.tls_cert / server.tls_key): {e}"))?,
        ),
        None => None,
    };
    let mut store = None;
    if let Some(db) =
        db.filter(|_| !config.stateless && config.session_store == SessionStoreKind::Database)
    {
        let s = db.session_store(config.session_idle_timeout);
        http.session_store = Some(s.clone());
        http.session_owners = Some(Arc::new(database::StoredOwners(s.clone())));
        store = Some(s);
    }
    let server = wharf_http::build(app.clone(), &http)?;
    if let Some(v) = &server.oauth {
        // Load the issuer's keys now; if the issuer is down, /ready says so and the
        // cache tries again (spaced) when tokens or probes arrive.
        if let Err(e) = v.jwks().refresh().await {
            tracing::warn!(error = %e, "cannot load the JWKS yet; /ready stays 503 until it loads");
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.listen / WHARF_LISTEN)",
                config.listen
            )
        })?;
    let shutdown = CancellationToken::new();
    if let Some(store) = store {
        tokio::spawn(heartbeat(
            store,
            server.sessions.clone(),
            config.session_idle_timeout,
            shutdown.clone(),
        ));
    }
    tokio::spawn(signals(shutdown.clone()));
    if let Some(addr) = config.admin_listen {
        let admin = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (server.admin_listen / WHARF_ADMIN_LISTEN)")
        })?;
        tracing::info!(listen = %addr, "serving /health, /ready and /metrics on the admin listener");
        let serving = server.admin_serving();
        // Probes must keep answering while the main listener drains, so the admin
        // listener stops only when the process exits.
        tokio::spawn(async move {
            let never = CancellationToken::new();
            if let Err(e) = wharf_http::serve(admin, serving, never, Duration::ZERO).await {
                tracing::error!(error = %e, "the admin listener failed");
            }
        });
    }
    tracing::info!(
        listen = %listener.local_addr()?,
        tools = app.offer().tools().count(),
        stateless = config.stateless,
        auth = if config.oauth.is_some() { "oauth" } else if config.api_keys.is_empty() { "none" } else { "api_keys" },
        api_keys = config.api_keys.len(),
        rate_limit = config.rate_limit.enabled,
        https = config.tls.is_some(),
        "serving MCP at /mcp"
    );
    match tls {
        Some(tls) => {
            tokio::spawn(reload_on_sighup(tls.clone()));
            wharf_http::serve_tls(
                listener,
                tls,
                server.serving(),
                shutdown,
                config.shutdown_grace,
            )
            .await?;
        }
        None => {
            wharf_http::serve(listener, server.serving(), shutdown, config.shutdown_grace).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Descriptors kept for what is not a client connection: database files and
/// connections, the search index, log files, upstream servers.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raise the descriptor limit to what the system allows (as Go's runtime does),
/// and keep `server.max_connections` under it with room for everything else,
/// so that connections run out before descriptors do (and `/health`, the
/// database and the logs keep working).
fn fit_to_descriptors(mut limits: wharf_http::ConnectionLimits) -> wharf_http::ConnectionLimits {
    let wanted = limits.max_connections as u64 + RESERVED_DESCRIPTORS;
    let available = match rlimit::increase_nofile_limit(wanted) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit");
            return limits;
        }
    };
    if available < wanted {
        let fitted = available.saturating_sub(RESERVED_DESCRIPTORS).max(16) as usize;
        tracing::warn!(
            max_connections = limits.max_connections,
            descriptors = available,
            fitted,
            "server.max_connections lowered to fit the file-descriptor limit (raise it with `ulimit -n` or the container's nofile limit)"
        );
        limits.max_connections = fitted;
    }
    limits
}

/// Keep the store in step with the sessions this process holds.
async fn heartbeat(
    store: Arc<dyn wharf_catalog::SessionTable>,
    sessions: Arc<wharf_http::CappedSessionManager>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval((idle / HEARTBEAT_FRACTION).max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ids = sessions
            .ids()
            .await
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        match wharf_catalog::heartbeat(store.as_ref(), ids).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "swept expired sessions"),
            Err(e) => tracing::warn!(error = %e, "session store heartbeat failed"),
        }
    }
}

/// Cancel `shutdown` on SIGTERM or SIGINT.
/// On SIGHUP, read the certificate and key again (after a renewal); new
/// connections use them, open ones keep theirs. A bad file keeps the old pair.
async fn reload_on_sighup(tls: wharf_http::tls::TlsConfig) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; certificate reloads need a restart");
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate"),
                Err(e) => tracing::warn!(error = %e, "SIGHUP: kept the old TLS certificate"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(tls);
}

async fn signals(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    shutdown.cancel();
}
