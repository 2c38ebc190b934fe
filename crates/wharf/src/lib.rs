//! The `wharf` binary as a library. This file only dispatches a command to
//! its wing: `serve` (HTTP, and the gateway), `stdio`, `check` (and health),
//! `apps/` (what is served), `client/` (commands that talk to servers),
//! `catalog_cli` (data), `demo`; `config/` reads and checks the settings,
//! `telemetry` sets up logs and traces.
//!
//! Only this crate reads environment variables, files and command-line
//! arguments; the library crates receive typed settings.

mod account_linking;
mod apps;
mod audit;
mod catalog_cli;
mod check;
mod cli;
mod client;
pub mod config;
mod connect;
mod database;
mod demo;
mod log_queue;
mod output;
mod serve;
mod sign_in;
mod stdio;
mod telemetry;

use std::{process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use wharf_core::App;

use check::{EXIT_CONFIG, report};
use cli::{CatalogCommand, Cli, Command};

/// After the command finishes, how long blocking work still running (a SQL
/// statement past the drain grace, a file read) may delay the exit.
const ABANDON_BLOCKING_AFTER: Duration = Duration::from_millis(500);

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
    if let Some(dir) = &cli.directory
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("error: -C {}: {e}", dir.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    if matches!(cli.command, Command::ConfigReference) {
        print!("{}", config::keys::reference_markdown());
        return ExitCode::SUCCESS;
    }
    let config = match config::load::load_config(&cli) {
        Ok(c) => c,
        Err(problems) => {
            report(&problems);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Command::Health { url, live } = &cli.command {
        return check::health(&config, url.as_deref(), *live);
    }
    if let Command::Check {
        submission: false, ..
    } = cli.command
    {
        for w in &config.warnings {
            eprintln!("warning: {w}");
        }
        if let Err(problems) = check::check_files(&config) {
            report(&problems);
            return ExitCode::from(EXIT_CONFIG);
        }
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let mut config = config;
    // `wharf gateway status` and `lock` answer and end; `wharf gateway` serves.
    let gateway_serves = matches!(&cli.command, Command::Gateway(g) if g.command.is_none());
    let terminal = matches!(
        cli.command,
        Command::Client(_)
            | Command::Demo { .. }
            | Command::Chat(_)
            | Command::Eval(_)
            | Command::Connect { .. }
            | Command::Gateway(_)
    ) && !gateway_serves;
    if terminal && cli.common.log_level.is_none() && std::env::var_os("WHARF_LOG").is_none() {
        // A terminal command: its output is the answer, not the connection's story.
        config.log_level = if matches!(cli.command, Command::Demo { .. }) {
            "error,rmcp=off".into()
        } else {
            // What a stdio server writes to stderr still shows (a traceback).
            "warn,rmcp=off,wharf::upstream_stderr=info".into()
        };
    }
    // A server logs its fatal error as a log line (in the log's format); a
    // terminal command prints it for the person who ran it. Never both.
    let logs_fatal_errors =
        matches!(cli.command, Command::Serve { .. } | Command::Stdio { .. }) || gateway_serves;
    let fatal_also_printed = !logs_fatal_errors || config.log_format == config::LogFormat::Json;
    let telemetry = match telemetry::init(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &config.warnings {
        tracing::warn!(variable = %w.at, "{}", w.message);
    }
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
    if let Command::Check {
        submission: true, ..
    } = cli.command
    {
        return match runtime.block_on(check::check_submission(&config, app)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut code = ExitCode::SUCCESS;
    let app_flags = cli.app_flags();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { .. } => serve::serve(config, app, telemetry.registry().clone()).await,
            Command::Stdio { .. } => stdio::stdio(config, app).await,
            Command::Catalog(CatalogCommand::Import {
                file,
                format,
                skip_invalid,
                replace,
                ..
            }) => {
                catalog_cli::import(
                    database::open(&config).await?.catalog(config.sql_limits),
                    &file,
                    format.as_deref(),
                    catalog_cli::Mode {
                        skip_invalid,
                        replace,
                    },
                )
                .await
            }
            Command::Catalog(CatalogCommand::Export { output, .. }) => {
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
                client::status::status(&url, config.http.metrics_key.as_deref(), json_output).await
            }
            Command::Gateway(cli::GatewayArgs {
                command: Some(cli::GatewayCommand::Lock { output }),
                ..
            }) => apps::gateway::lock(&config, output).await,
            Command::Gateway(cli::GatewayArgs {
                command:
                    Some(cli::GatewayCommand::Tokens {
                        user,
                        upstream,
                        revoke,
                    }),
                ..
            }) => {
                let table = database::open(&config).await?.token_table();
                audit::tokens(table, user, upstream, revoke).await
            }
            Command::Gateway(cli::GatewayArgs {
                command:
                    Some(cli::GatewayCommand::Audit {
                        user,
                        tool,
                        upstream,
                        outcome,
                        since,
                        until,
                        limit,
                        json_output,
                    }),
                ..
            }) => {
                let log = database::open(&config).await?.audit_log();
                let filters = audit::Filters {
                    user,
                    tool,
                    upstream,
                    outcome,
                    since,
                    until,
                    limit,
                    json_output,
                };
                audit::query(log, filters).await
            }
            Command::Demo { gateway: true, .. } => {
                let (_, gateway) = apps::gateway::serve_on_loopback(&config).await?;
                demo::run_gateway(&gateway).await
            }
            Command::Demo { url, .. } => demo::run(&config, url).await,
            Command::Chat(mut args) => {
                // No server named: "chat with my configured servers".
                let front = if args.server.names_none() && apps::gateway::configured(&config) {
                    let (url, gateway) = apps::gateway::serve_on_loopback(&config).await?;
                    args.server.url = Some(url);
                    Some(gateway)
                } else {
                    None
                };
                code = client::chat::run(args).await?;
                if let Some(g) = front {
                    g.shutdown().await;
                }
                Ok(())
            }
            Command::Connect { client, url, .. } => {
                connect::print(client, url.as_deref(), cli.config.as_deref(), &app_flags)
            }
            Command::Eval(args) => {
                code = client::eval::run(args).await?;
                Ok(())
            }
            Command::Gateway(g) if g.stdio => stdio::stdio(config, app).await,
            Command::Gateway(_) => serve::serve(config, app, telemetry.registry().clone()).await,
            Command::Check { .. } | Command::ConfigReference | Command::Health { .. } => Ok(()),
        }
    });
    // The process ends now, not when the last blocking task does (a SQL
    // statement still running past the drain grace): they are abandoned.
    runtime.shutdown_timeout(ABANDON_BLOCKING_AFTER);
    match result {
        Ok(()) => code,
        // `wharf client … | head`: the reader has what it wanted.
        Err(e) if !logs_fatal_errors && output::is_broken_pipe(&e) => ExitCode::SUCCESS,
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
