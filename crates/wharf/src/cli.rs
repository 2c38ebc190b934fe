//! Command-line arguments. Flags that set configuration keys are turned into a
//! layer of the configuration (see `config`), so they follow the same rules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "Put an MCP server or a ChatGPT app into production"
)]
pub struct Cli {
    /// Configuration file [default: ./wharf.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run as if started in DIR: wharf.toml, config/mcp.json and every relative
    /// path are found there (for clients that start servers in `/`)
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonFlags,

    /// What is served, before the command (`wharf --profile builtin stdio`);
    /// the commands that serve or read the database also take them after it.
    #[command(flatten)]
    pub app: AppFlags,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over HTTP: Streamable HTTP at /mcp (every protocol version), HTTP+SSE at /sse, the JSON action API, /health
    Serve {
        #[command(flatten)]
        serve: ServeFlags,
        #[command(flatten)]
        app: AppFlags,
    },
    /// Serve MCP over stdin/stdout (newline-delimited JSON-RPC); logs go to stderr
    Stdio {
        #[command(flatten)]
        app: AppFlags,
    },
    /// Check the configuration: print every problem with where it is and how to fix it
    Check {
        /// Also lint the app against the ChatGPT app-submission rules (annotations,
        /// descriptions, invocation strings, widget CSP, public HTTPS URL, result size)
        #[arg(long)]
        submission: bool,
        #[command(flatten)]
        app: AppFlags,
    },
    /// Print the configuration reference (the table in docs/configuration.md)
    ConfigReference,
    /// Probe a running server, for a container HEALTHCHECK: exit 0 when it answers 200
    Health {
        /// What to ask [default: http://127.0.0.1:<port of server.listen>/ready]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Ask /health (the process is alive) instead of /ready (it should get traffic)
        #[arg(long)]
        live: bool,
    },
    /// Manage the catalog: import and export items
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Talk to any MCP server: list and call its tools, read resources, get prompts
    Client(ClientArgs),
    /// Walk through the client side: the sample catalog behind a gateway, searches, SQL, a retry, a breaker, metrics
    Demo {
        /// Use this MCP server instead of the in-process catalog
        #[arg(long, value_name = "URL", conflicts_with = "gateway")]
        url: Option<String>,
        /// Walk through the servers of the gateway file instead (config/mcp.json, MCP_CONFIG_PATH)
        #[arg(long)]
        gateway: bool,
    },
    /// Chat with a model that can call the tools of a server; with no server named,
    /// of every server in the gateway file (config/mcp.json, MCP_CONFIG_PATH)
    Chat(ChatArgs),
    /// Print what adds this Wharf to a client's MCP configuration, with absolute paths
    Connect {
        /// claude (Claude Desktop), cursor or vscode
        #[arg(value_enum)]
        client: crate::connect::Client,
        /// A running Wharf to connect to over HTTP instead of starting one over stdio
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Passed on to the `wharf stdio` the client starts
        #[command(flatten)]
        app: AppFlags,
    },
    /// Check which tools a model picks for golden prompts: precision and recall of tool selection
    Eval(EvalArgs),
    /// Serve many MCP servers as one (the upstreams of config/mcp.json), with retries, breakers and health checks
    Gateway(GatewayArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ServerFlags {
    /// A Streamable HTTP server (2026-07-28 or 2025-x, detected)
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,
    /// A stdio server to start, as one string: "python3 server.py --flag"
    #[arg(long, value_name = "COMMAND", global = true)]
    pub stdio: Option<String>,
    /// A 2024-11-05 HTTP+SSE server (its GET /sse URL)
    #[arg(long, value_name = "URL", global = true)]
    pub sse: Option<String>,
    /// An HTTP header for every request, "Name: value" (repeatable)
    #[arg(long, value_name = "HEADER", global = true)]
    pub header: Vec<String>,
    /// A bearer token for the Authorization header
    #[arg(long, value_name = "TOKEN", global = true)]
    pub bearer: Option<String>,
    /// Longest wait for each attempt, e.g. 10s [default: 30s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub timeout: Option<humantime::Duration>,
    /// Retries of calls that are safe to repeat (connection errors; reads and idempotent tools)
    #[arg(long, value_name = "N", default_value_t = 2, global = true)]
    pub retries: u32,
    /// auto (detect, remembered per origin), 2026-07-28 or legacy
    #[arg(long, value_name = "ERA", global = true)]
    pub protocol: Option<String>,
}

impl ServerFlags {
    /// No server named: no --url, --stdio or --sse.
    pub fn names_none(&self) -> bool {
        self.url.is_none() && self.stdio.is_none() && self.sse.is_none()
    }
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub server: ServerFlags,
    /// Print the results as JSON
    #[arg(long, global = true)]
    pub json_output: bool,
    #[command(subcommand)]
    pub action: ClientAction,
}

#[derive(Debug, Args)]
pub struct ModelFlags {
    /// anthropic or openai [default: the one whose API key is set]
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
    /// The model [default: claude-sonnet-4-5 or gpt-4o-mini]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub model: ModelFlags,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The golden prompts: a YAML file of {prompt, expect, kind}
    pub golden: std::path::PathBuf,
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub model: ModelFlags,
    /// Exit 1 when overall precision is below this (0 to 1)
    #[arg(long, value_name = "RATIO")]
    pub min_precision: Option<f64>,
    /// Exit 1 when overall recall is below this (0 to 1)
    #[arg(long, value_name = "RATIO")]
    pub min_recall: Option<f64>,
    /// Print the report as JSON
    #[arg(long)]
    pub json_output: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// The server's name, protocol version, capabilities and instructions
    Discover,
    /// List the tools and their arguments
    Tools,
    /// Call a tool: call search_items --arg query=tea --arg limit=3
    Call {
        name: String,
        /// name=value (repeatable); the value is typed by the tool's schema
        #[arg(long, value_name = "NAME=VALUE")]
        arg: Vec<String>,
        /// All the arguments as one JSON object
        #[arg(long, value_name = "OBJECT")]
        json: Option<String>,
    },
    /// List resources and resource templates
    Resources,
    /// Read a resource
    Read { uri: String },
    /// List prompts
    Prompts,
    /// Render a prompt
    GetPrompt {
        name: String,
        /// name=value (repeatable)
        #[arg(long, value_name = "NAME=VALUE")]
        arg: Vec<String>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// The upstream file (config/mcp.json shape, or .toml) [env: WHARF_GATEWAY_UPSTREAMS]
    #[arg(long, value_name = "FILE")]
    pub upstreams: Option<String>,
    /// Serve the gateway on stdin/stdout instead of HTTP
    #[arg(long)]
    pub stdio: bool,
    #[command(flatten)]
    pub serve: ServeFlags,
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Print a running gateway's upstreams: health, breaker, calls, failures, retries, latency
    Status {
        /// The gateway's metrics [default: http://127.0.0.1:<port of server.listen>/metrics]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Print JSON
        #[arg(long)]
        json_output: bool,
    },
    /// The calls made through the gateway (its audit trail), newest first
    Audit {
        /// Only this caller: an OAuth subject, or key:NAME for an API key
        #[arg(long, value_name = "SUBJECT")]
        user: Option<String>,
        /// Only this tool (its published name)
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// Only this upstream server
        #[arg(long, value_name = "NAME")]
        upstream: Option<String>,
        /// ok, error (anything but ok), or one outcome (tool_error, upstream, timeout, ...)
        #[arg(long, value_name = "OUTCOME")]
        outcome: Option<String>,
        /// From this time: a duration back from now (1h, 7d) or an RFC 3339 instant
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Before this time (same forms as --since)
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// At most this many calls
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON Lines, one call per line
        #[arg(long)]
        json_output: bool,
    },
    /// Users signed in to upstreams through the gateway (the token vault); --revoke forgets them
    Tokens {
        /// Only this user: an OAuth subject, or key:NAME for an API key
        #[arg(long, value_name = "SUBJECT")]
        user: Option<String>,
        /// Only this upstream (with --revoke)
        #[arg(long, value_name = "NAME")]
        upstream: Option<String>,
        /// Delete the user's tokens (all upstreams, or --upstream): they sign in again
        #[arg(long, requires = "user")]
        revoke: bool,
    },
    /// Pin every upstream tool's definition: write their hashes to the lock file
    /// (pinning.lock_file, or config/mcp.lock.json) for the gateway to check
    Lock {
        /// Where to write [default: pinning.lock_file, or config/mcp.lock.json]
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Insert or update items by id from JSON Lines, a JSON array or CSV; all or nothing
    Import {
        /// The file to read (.jsonl, .json or .csv; or set --format)
        file: PathBuf,
        /// jsonl, json or csv [default: from the file's extension]
        #[arg(long)]
        format: Option<String>,
        /// Import the good rows and report the bad ones, instead of importing nothing
        #[arg(long, conflicts_with = "replace")]
        skip_invalid: bool,
        #[command(flatten)]
        app: DatabaseFlags,
        /// Make the catalog exactly this file: delete every item it does not
        /// list (the bundled sample, say), in the same transaction
        #[arg(long)]
        replace: bool,
    },
    /// Write every item as JSON Lines
    Export {
        /// Where to write [default: standard output]
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        app: DatabaseFlags,
    },
}

/// What is served and from which database: for the commands that serve.
#[derive(Debug, Args, Default, Clone)]
pub struct AppFlags {
    /// What to serve: catalog, builtin or gateway [env: WHARF_PROFILE] [default: catalog]
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub database: DatabaseFlags,
}

/// The database: for the commands that serve or read it.
#[derive(Debug, Args, Default, Clone)]
pub struct DatabaseFlags {
    /// The database: a SQLite file (a path or sqlite://path) or postgres://user:password@host/db [env: WHARF_DATABASE]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Directory of the embedded SQLite database [env: WHARF_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
}

impl AppFlags {
    /// These flags, each filled from `before` (given before the command) when unset here.
    fn or(&self, before: &AppFlags) -> AppFlags {
        AppFlags {
            profile: self.profile.clone().or(before.profile.clone()),
            database: self.database.or(&before.database),
        }
    }
}

impl DatabaseFlags {
    fn or(&self, before: &DatabaseFlags) -> DatabaseFlags {
        DatabaseFlags {
            database: self.database.clone().or(before.database.clone()),
            data_dir: self.data_dir.clone().or(before.data_dir.clone()),
        }
    }
}

/// Flags every command takes, before or after its name.
#[derive(Debug, Args)]
pub struct CommonFlags {
    /// Log format on stderr: text or json [env: WHARF_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or wharf=debug [env: WHARF_LOG]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct ServeFlags {
    /// Address to listen on [env: WHARF_LISTEN] [default: 127.0.0.1:8000]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// No legacy sessions: no Mcp-Session-Id, any replica serves any request [env: WHARF_STATELESS]
    #[arg(long)]
    pub stateless: bool,
    /// Host header value to accept (repeatable) [env: WHARF_ALLOWED_HOSTS]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Origin header value to accept (repeatable) [env: WHARF_ALLOWED_ORIGINS]
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Development mode: accept API keys shorter than 32 characters [env: WHARF_DEV]
    #[arg(long)]
    pub dev: bool,
    /// Listen beyond loopback with no API key and no OAuth [env: WHARF_ALLOW_UNAUTHENTICATED]
    #[arg(long)]
    pub allow_unauthenticated: bool,
}

impl Cli {
    /// The app flags given before the command and after it (which win).
    pub fn app_flags(&self) -> AppFlags {
        let after = match &self.command {
            Command::Serve { app, .. }
            | Command::Stdio { app }
            | Command::Check { app, .. }
            | Command::Connect { app, .. } => app.clone(),
            Command::Catalog(
                CatalogCommand::Import { app, .. } | CatalogCommand::Export { app, .. },
            ) => AppFlags {
                profile: None,
                database: app.clone(),
            },
            _ => AppFlags::default(),
        };
        after.or(&self.app)
    }

    /// The flags that set configuration keys, as (key, value, flag).
    pub fn config_flags(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut out = Vec::new();
        let c = &self.common;
        let app = self.app_flags();
        let mut push = |key, value: &Option<String>, flag| {
            if let Some(v) = value {
                out.push((key, v.clone(), flag));
            }
        };
        push("app.profile", &app.profile, "--profile");
        push("database.url", &app.database.database, "--database");
        push("database.data_dir", &app.database.data_dir, "--data-dir");
        push("log.format", &c.log_format, "--log-format");
        push("log.level", &c.log_level, "--log-level");
        let serve = match &self.command {
            Command::Serve { serve, .. } => Some(serve),
            Command::Gateway(g) if g.command.is_none() => {
                push("app.profile", &Some("gateway".into()), "gateway");
                push("gateway.upstreams", &g.upstreams, "--upstreams");
                Some(&g.serve)
            }
            _ => None,
        };
        if let Some(s) = serve {
            push("server.listen", &s.listen, "--listen");
            if s.dev {
                out.push(("server.dev", "true".into(), "--dev"));
            }
            if s.allow_unauthenticated {
                out.push((
                    "server.allow_unauthenticated",
                    "true".into(),
                    "--allow-unauthenticated",
                ));
            }
            if s.stateless {
                out.push(("server.stateless", "true".into(), "--stateless"));
            }
            if !s.allowed_hosts.is_empty() {
                out.push((
                    "server.allowed_hosts",
                    s.allowed_hosts.join(","),
                    "--allowed-host",
                ));
            }
            if !s.allowed_origins.is_empty() {
                out.push((
                    "server.allowed_origins",
                    s.allowed_origins.join(","),
                    "--allowed-origin",
                ));
            }
        }
        out
    }
}
