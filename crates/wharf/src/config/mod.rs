//! Configuration: flag > `WHARF_*` environment (and `.env`) > `wharf.toml` > default.
//!
//! The raw layers ([`layers`]) are merged by precedence, then converted into a
//! typed [`Config`] that has no `Option` where a default exists. All problems are
//! gathered before anything is returned, so `wharf check` can print every one.

mod account_linking;
pub mod keys;
pub mod layers;
pub mod load;
pub mod tools;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use keys::Kind;
use layers::{Layer, Problem, RawValue, Setting};
pub use wharf_catalog::DatabaseUrl;

/// Where legacy sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStoreKind {
    Database,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What `serve` and `stdio` offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Catalog,
    Builtin,
    Gateway,
}

/// The validated configuration. The libraries' own settings are nested as
/// they take them (`http`: everything the HTTP side is built from), so a new
/// setting is one key in `keys` and one field, never a copy made by hand.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `server.admin_listen`: a second listener for probes and metrics.
    pub admin_listen: Option<SocketAddr>,
    /// The HTTP side's settings; what only exists at run time (the session
    /// store, readiness checks, process metrics) is added when serving.
    pub http: wharf_http::HttpConfig,
    pub shutdown_grace: Duration,
    pub tool_timeout: Duration,
    pub session_store: SessionStoreKind,
    pub database: DatabaseUrl,
    /// The PostgreSQL pool's size, SQLite's memory bounds.
    pub database_settings: wharf_catalog::DatabaseSettings,
    pub log_format: LogFormat,
    pub log_level: String,
    pub profile: Profile,
    /// `gateway.upstreams`: the gateway's upstream file.
    pub gateway_upstreams: std::path::PathBuf,
    /// `gateway.ready_when`: which upstreams must be healthy for `/ready`.
    pub gateway_ready_when: wharf_gateway::ReadyWhen,
    /// `[[gateway.servers]]` written in the configuration file itself (with the
    /// other upstream-file fields of `[gateway]`), as TOML text; it wins over
    /// `gateway.upstreams`.
    pub gateway_inline: Option<(String, String)>,
    pub sql_limits: wharf_catalog::SqlLimits,
    /// Tools defined in the file's `[[tools]]`.
    pub tools: Vec<tools::ToolDef>,
    /// `catalog.security`: who may call each catalog tool.
    pub catalog_security: Vec<(String, wharf_core::SecurityScheme)>,
    /// `server.public_url`, when set.
    pub public_url: Option<String>,
    pub allow_unauthenticated: bool,
    pub dev: bool,
    /// `server.tls_cert` and `server.tls_key`, when HTTPS is served natively.
    pub tls: Option<wharf_http::tls::TlsFiles>,
    /// `server.state_key`: seals `requestState` the same way on every replica.
    pub state_key: Option<Secret>,
    /// `[account_linking]`: Wharf's own authorization server, when on.
    pub account_linking: Option<wharf_authz::Settings>,
    pub log_file: Option<LogFile>,
    pub otlp: Option<Otlp>,
    /// What is not wrong but likely not meant (a well-known variable Wharf
    /// does not read): logged at start and printed by `wharf check`.
    pub warnings: Vec<Problem>,
}

/// `log.file` and its rotation.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    pub rotation: Rotation,
    pub max_files: usize,
    /// `log.file_format`: JSON lines unless told otherwise (files are read by machines).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Daily,
    Hourly,
    Never,
}

/// Where and how traces are exported.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// The collector's base URL; `/v1/traces` is appended.
    pub endpoint: String,
    pub json: bool,
    pub service_name: String,
}

/// A value that must never reach a log line: its `Debug` and `Display` hide it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything a load reads, so that loading is a pure function (and testable).
#[derive(Debug, Default)]
pub struct Sources {
    /// The config file's name (for messages) and text, if there is one.
    pub file: Option<(String, String)>,
    pub env: Vec<(String, String)>,
    /// (key path, value, flag as typed)
    pub flags: Vec<(&'static str, String, &'static str)>,
}

/// A Host allow-list entry that names this machine only.
fn is_local_host(entry: &str) -> bool {
    let host = if entry.parse::<std::net::IpAddr>().is_ok() {
        entry
    } else if let Some(bracketed) = entry.strip_prefix('[') {
        bracketed.split_once(']').map_or(bracketed, |(h, _)| h)
    } else {
        entry.rsplit_once(':').map_or(entry, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where a setting came from, for a message about it.
fn setting_at(layer: &Layer, path: &str) -> String {
    layer
        .get(path)
        .map_or_else(|| path.to_owned(), |s| s.at.clone())
}

impl Config {
    /// Whether callers must present credentials (an API key or an OAuth token).
    pub fn auth_on(&self) -> bool {
        self.http.auth.is_on()
    }

    /// With anonymous callers admitted beside sign-in, a tool that declares no
    /// security answers anyone: say which, since that is rarely meant.
    fn warn_open_tools(&mut self, layer: &Layer) {
        if !self.http.auth.anonymous || self.http.auth.oauth.is_none() {
            return;
        }
        let mut open: Vec<&str> = self
            .tools
            .iter()
            .filter(|t| t.security.is_empty())
            .map(|t| t.name.as_str())
            .collect();
        if self.profile == Profile::Catalog {
            open.extend(
                wharf_catalog::tools::TOOL_NAMES
                    .iter()
                    .filter(|n| !self.catalog_security.iter().any(|(t, _)| t == *n)),
            );
        }
        if !open.is_empty() {
            self.warnings.push(Problem {
                at: setting_at(layer, "auth.anonymous"),
                message: format!(
                    "callers without a token are admitted, and these tools declare no security, so anyone may call them: {}. Give each `security` (catalog.security for the catalog's tools, `security` on [[tools]]), `noauth` where that is meant",
                    open.join(", ")
                ),
            });
        }
    }

    /// The rules that keep a public server from running open by accident.
    fn check_security(&self, layer: &Layer, problems: &mut Vec<Problem>) {
        use wharf_http::auth::{WeakKey, key_weakness};
        for wharf_http::auth::ApiKey { name, key } in &self.http.auth.api_keys {
            let Some(weak) = key_weakness(key) else {
                continue;
            };
            // Template text is public: never a key, even for a laptop.
            if self.dev && weak != WeakKey::Placeholder {
                continue;
            }
            let at = if name == "default" && layer.get("auth.api_keys").is_none() {
                "MCP_API_KEY".to_owned()
            } else {
                setting_at(layer, "auth.api_keys")
            };
            let dev = if weak == WeakKey::Placeholder {
                ""
            } else {
                ", or run with --dev"
            };
            problems.push(Problem {
                at,
                message: format!(
                    "API key `{name}` {weak}: generate one with `openssl rand -hex 32`{dev}"
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for wharf_http::auth::ApiKey { name, .. } in &self.http.auth.api_keys {
            if !seen.insert(name) {
                problems.push(Problem {
                    at: setting_at(layer, "auth.api_keys"),
                    message: format!("two API keys are named `{name}`; give each key its own name"),
                });
            }
        }
        if self.auth_on() || self.allow_unauthenticated {
            return;
        }
        let open = "with no API key and no OAuth would let anyone call every tool: set MCP_API_KEY or auth.api_keys (WHARF_API_KEYS), or OAuth (auth.oauth_issuers + auth.jwks_url), or pass --allow-unauthenticated if that is what you want";
        if !self.listen.ip().is_loopback() {
            problems.push(Problem {
                at: setting_at(layer, "server.listen"),
                message: format!("listening on {} (beyond loopback) {open}", self.listen),
            });
        } else if let Some(host) = self.http.allowed_hosts.iter().find(|h| !is_local_host(h)) {
            // A loopback listener that admits another name is reached through
            // a tunnel or a proxy: as public as a public listen.
            problems.push(Problem {
                at: setting_at(layer, "server.allowed_hosts"),
                message: format!(
                    "admits `{host}`, so this server is reachable beyond this machine (a tunnel or a proxy), and {open}"
                ),
            });
        } else if let Some(url) = &self.public_url
            && let Some(host) = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            && !is_local_host(&host)
        {
            problems.push(Problem {
                at: setting_at(layer, "server.public_url"),
                message: format!(
                    "says clients reach this server at `{host}`, beyond this machine, and {open}"
                ),
            });
        }
    }

    pub fn load(sources: Sources) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut merged = Layer::new();
        let mut tool_defs = Vec::new();
        let mut gateway_inline = None;
        if let Some((name, text)) = &sources.file {
            merged.extend(layers::from_file(name, text, &mut problems));
            if let Ok(table) = toml::from_str::<toml::Table>(text) {
                if let Some(value) = table.get("tools") {
                    tool_defs = tools::from_table(name, value, &mut problems);
                }
                if let Some(toml::Value::Table(g)) = table.get("gateway")
                    && g.contains_key("servers")
                {
                    let mut g = g.clone();
                    g.remove("upstreams");
                    gateway_inline = Some((name.clone(), toml::to_string(&g).unwrap_or_default()));
                }
            }
        }
        let mcp_api_key = sources
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "MCP_API_KEY")
            .map(|(_, v)| v.clone());
        let mut warnings = Vec::new();
        merged.extend(layers::from_env(
            sources.env.into_iter(),
            &mut problems,
            &mut warnings,
        ));
        merged.extend(layers::from_flags(sources.flags));
        let mut config = Self::from_layer(&merged, &mut problems);
        config.tools = tool_defs;
        config.gateway_inline = gateway_inline;
        config.warnings = warnings;
        config.warn_open_tools(&merged);
        if let Some(k) = mcp_api_key.filter(|k| !k.is_empty()) {
            config.http.auth.api_keys.push(wharf_http::auth::ApiKey {
                name: "default".into(),
                key: k,
            });
        }
        config.check_security(&merged, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn from_layer(layer: &Layer, problems: &mut Vec<Problem>) -> Config {
        let mut r = Reader { layer, problems };
        let listen = r.addr("server.listen");
        let hosts_explicit = layer.contains_key("server.allowed_hosts");
        let data_dir = PathBuf::from(r.text("database.data_dir"));
        let database = match layer.get("database.url") {
            None => DatabaseUrl::Sqlite(data_dir.join("wharf.db")),
            Some(s) => match &s.value {
                RawValue::Text(url)
                    if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
                {
                    DatabaseUrl::Postgres(url.clone())
                }
                RawValue::Text(url) => DatabaseUrl::Sqlite(sqlite_path(url, &s.at, r.problems)),
                _ => {
                    r.problems.push(Problem {
                        at: s.at.clone(),
                        message: "must be a string".into(),
                    });
                    DatabaseUrl::Sqlite(PathBuf::new())
                }
            },
        };
        let admin_listen = layer
            .contains_key("server.admin_listen")
            .then(|| r.addr("server.admin_listen"));
        let tls = None;
        let http = wharf_http::HttpConfig {
            stateless: r.bool("server.stateless"),
            fast_path: r.bool("server.fast_path"),
            allowed_hosts: r.list("server.allowed_hosts", wharf_http::config::loopback_hosts),
            allowed_origins: r.list(
                "server.allowed_origins",
                wharf_http::config::loopback_origins,
            ),
            max_body_bytes: r.count("server.max_body_bytes"),
            body_timeout: r.duration("server.body_timeout"),
            body_min_rate: r.count("server.body_min_rate"),
            connections: wharf_http::ConnectionLimits {
                max_connections: r.count("server.max_connections"),
                max_connections_per_client: r.count("server.max_connections_per_client"),
                header_timeout: r.duration("server.header_timeout"),
                idle_timeout: r.duration("server.idle_timeout"),
                write_timeout: r.duration("server.write_timeout"),
            },
            max_requests_per_client: r.count("server.max_requests_per_client"),
            session_idle_timeout: r.duration("sessions.idle_timeout"),
            max_sessions: r.count("sessions.max"),
            sse_keep_alive: r.duration("server.sse_keep_alive"),
            auth: wharf_http::auth::AuthConfig {
                api_keys: Vec::new(),
                oauth: None,
                anonymous: r.bool("auth.anonymous"),
            },
            rate_limit: wharf_http::rate_limit::RateLimitConfig {
                enabled: r.bool("rate_limit.enabled"),
                anonymous_per_minute: u32::try_from(r.count("rate_limit.anonymous_per_minute"))
                    .unwrap_or(u32::MAX),
                subject_per_minute: u32::try_from(r.count("rate_limit.subject_per_minute"))
                    .unwrap_or(u32::MAX),
                tools: Default::default(),
                backend: match r.optional_text("rate_limit.redis_url") {
                    Some(url) => wharf_http::rate_limit::Backend::Redis {
                        url,
                        prefix: "wharf:rl:".into(),
                    },
                    None => wharf_http::rate_limit::Backend::Local,
                },
                on_backend_error: match r.word("rate_limit.on_backend_error") {
                    "closed" => wharf_http::rate_limit::FailMode::Closed,
                    _ => wharf_http::rate_limit::FailMode::Open,
                },
            },
            trusted_proxies: r.list("server.trusted_proxies", Vec::new),
            max_concurrent_requests: r.count("server.max_concurrent_requests"),
            max_sse_streams: r.count("server.max_sse_streams"),
            require_https: r.bool("server.require_https"),
            metrics_on_main: admin_listen.is_none(),
            metrics_key: r.optional_text("server.metrics_key"),
            drain_delay: r.duration_or_zero("server.drain_delay"),
            ..Default::default()
        };
        let mut config = Config {
            listen,
            admin_listen,
            http,
            shutdown_grace: r.duration("server.shutdown_grace"),
            tool_timeout: r.duration("server.tool_timeout"),
            session_store: match r.word("sessions.store") {
                "memory" => SessionStoreKind::Memory,
                _ => SessionStoreKind::Database,
            },
            database,
            database_settings: wharf_catalog::DatabaseSettings {
                pool_size: r.count("database.pool_size"),
                sqlite: wharf_catalog::SqliteSettings {
                    memory_limit: r.count("database.sqlite_memory_limit"),
                    max_value_bytes: r.count("catalog.sql_max_value_bytes"),
                },
            },
            log_format: match r.word("log.format") {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            log_level: r.text("log.level"),
            gateway_upstreams: r.text("gateway.upstreams").into(),
            gateway_ready_when: match r.word("gateway.ready_when") {
                "all" => wharf_gateway::ReadyWhen::All,
                "always" => wharf_gateway::ReadyWhen::Always,
                _ => wharf_gateway::ReadyWhen::Any,
            },
            gateway_inline: None,
            profile: match r.word("app.profile") {
                "builtin" => Profile::Builtin,
                "gateway" => Profile::Gateway,
                _ => Profile::Catalog,
            },
            sql_limits: wharf_catalog::SqlLimits {
                timeout: r.duration("catalog.sql_timeout"),
                max_rows: r.count("catalog.sql_max_rows"),
                max_bytes: r.count("catalog.sql_max_bytes"),
            },
            tools: Vec::new(),
            catalog_security: Vec::new(),
            public_url: r.optional_text("server.public_url"),
            allow_unauthenticated: r.bool("server.allow_unauthenticated"),
            dev: r.bool("server.dev"),
            tls,
            state_key: r.optional_text("server.state_key").map(Secret),
            log_file: {
                // Read even without a file, so a wrong value is reported.
                let rotation = match r.word("log.rotation") {
                    "hourly" => Rotation::Hourly,
                    "never" => Rotation::Never,
                    _ => Rotation::Daily,
                };
                let max_files = r.count("log.max_files");
                let format = match r.word("log.file_format") {
                    "text" => LogFormat::Text,
                    _ => LogFormat::Json,
                };
                r.optional_text("log.file").map(|path| LogFile {
                    path: PathBuf::from(path),
                    rotation,
                    max_files,
                    format,
                })
            },
            otlp: None,
            warnings: Vec::new(),
            account_linking: None,
        };
        if let Some(key) = &config.state_key
            && wharf_http::auth::key_weakness(key.expose())
                == Some(wharf_http::auth::WeakKey::Placeholder)
        {
            r.problems.push(Problem {
                at: setting_at(layer, "server.state_key"),
                message: format!(
                    "{}: make one with `openssl rand -hex 32`",
                    wharf_http::auth::WeakKey::Placeholder
                ),
            });
        } else if let Some(key) = &config.state_key
            && key.expose().len() < 32
        {
            r.problems.push(Problem {
                at: setting_at(layer, "server.state_key"),
                message: format!(
                    "is {} bytes; use at least 32 (openssl rand -hex 32)",
                    key.expose().len()
                ),
            });
        }
        let json = r.word("telemetry.otlp_protocol") == "http/json";
        let service_name = r.text("telemetry.service_name");
        if let Some(endpoint) = r.optional_text("telemetry.otlp_endpoint") {
            let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
            if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
                config.http.tracing = true;
                config.otlp = Some(Otlp {
                    endpoint,
                    json,
                    service_name,
                });
            } else {
                r.problems.push(Problem {
                    at: setting_at(layer, "telemetry.otlp_endpoint"),
                    message: format!("`{endpoint}` is not an http:// or https:// URL; write the collector's OTLP/HTTP address, such as http://localhost:4318"),
                });
            }
        }
        // name:key pairs; the value is a secret, so messages name the entry, not the key.
        for (i, entry) in r.list("auth.api_keys", Vec::new).into_iter().enumerate() {
            match entry.split_once(':') {
                Some((name, key)) if !name.trim().is_empty() && !key.is_empty() => {
                    config.http.auth.api_keys.push(wharf_http::auth::ApiKey {
                        name: name.trim().to_owned(),
                        key: key.to_owned(),
                    });
                }
                _ => r.problems.push(Problem {
                    at: setting_at(layer, "auth.api_keys"),
                    message: format!("entry #{} is not `name:key`; write each key as a name, a colon and the key", i + 1),
                }),
            }
        }
        for entry in r.list("rate_limit.tools", Vec::new) {
            match entry
                .split_once('=')
                .map(|(t, n)| (t.trim(), n.trim().parse::<u32>()))
            {
                Some((tool, Ok(n))) if !tool.is_empty() && n > 0 => {
                    config.http.rate_limit.tools.insert(tool.to_owned(), n);
                }
                _ => r.problems.push(Problem {
                    at: setting_at(layer, "rate_limit.tools"),
                    message: format!(
                        "`{entry}` is not `tool=N` with N a whole number of at least 1"
                    ),
                }),
            }
        }
        match (
            r.optional_text("server.tls_cert"),
            r.optional_text("server.tls_key"),
        ) {
            (Some(cert), Some(key)) => {
                config.http.native_tls = true;
                config.tls = Some(wharf_http::tls::TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                });
            }
            (None, None) => {}
            (Some(_), None) => r.problems.push(Problem {
                at: setting_at(layer, "server.tls_cert"),
                message: "HTTPS needs the key too: set server.tls_key (WHARF_TLS_KEY)".into(),
            }),
            (None, Some(_)) => r.problems.push(Problem {
                at: setting_at(layer, "server.tls_key"),
                message: "HTTPS needs the certificate too: set server.tls_cert (WHARF_TLS_CERT)"
                    .into(),
            }),
        }
        let issuers = r.list("auth.oauth_issuers", Vec::new);
        let jwks_url = r.optional_text("auth.jwks_url");
        match (issuers.is_empty(), jwks_url) {
            (true, None) => {}
            (false, Some(jwks_url)) => {
                let resource = r.optional_text("auth.resource").or_else(|| config.public_url.clone());
                match resource {
                    None => r.problems.push(Problem {
                        at: setting_at(layer, "auth.oauth_issuers"),
                        message: "OAuth needs this server's resource identifier: set auth.resource (WHARF_OAUTH_RESOURCE) or server.public_url (WHARF_PUBLIC_URL), such as https://mcp.example.com/mcp".into(),
                    }),
                    Some(resource) => {
                        let required_scopes = r.list("auth.required_scopes", Vec::new);
                        let scopes_supported = match layer.get("auth.scopes_supported") {
                            Some(_) => r.list("auth.scopes_supported", Vec::new),
                            None => required_scopes.clone(),
                        };
                        config.http.auth.oauth = Some(wharf_http::oauth::OAuthConfig {
                            resource,
                            issuers,
                            jwks_url,
                            required_scopes,
                            scopes_supported,
                            leeway: r.duration("auth.leeway"),
                            own: None,
                        });
                    }
                }
            }
            (true, Some(_)) => r.problems.push(Problem {
                at: setting_at(layer, "auth.jwks_url"),
                message: "auth.jwks_url is set but auth.oauth_issuers is empty: name the issuer(s) whose tokens to accept (WHARF_OAUTH_ISSUERS)".into(),
            }),
            (false, None) => r.problems.push(Problem {
                at: setting_at(layer, "auth.oauth_issuers"),
                message: "OAuth issuers are set but not where their keys are: set auth.jwks_url (WHARF_JWKS_URL) to the issuer's jwks_uri".into(),
            }),
        }
        config.account_linking = account_linking::read(&mut r, layer, &mut config);
        for entry in r.list("catalog.security", Vec::new) {
            let parsed = entry
                .split_once('=')
                .ok_or_else(|| {
                    format!(
                        "`{entry}` is not `tool=scheme`, such as `execute_sql_query=oauth2:sql`"
                    )
                })
                .and_then(|(tool, scheme)| {
                    let tool = tool.trim();
                    if !wharf_catalog::tools::TOOL_NAMES.contains(&tool) {
                        return Err(format!(
                            "`{tool}` is not a catalog tool; they are {}",
                            wharf_catalog::tools::TOOL_NAMES.join(", ")
                        ));
                    }
                    Ok((tool.to_owned(), tools::parse_scheme(scheme)?))
                });
            match parsed {
                Ok(pair) => config.catalog_security.push(pair),
                Err(message) => r.problems.push(Problem {
                    at: setting_at(layer, "catalog.security"),
                    message,
                }),
            }
        }
        if !config.listen.ip().is_loopback() && !hosts_explicit {
            let at = layer
                .get("server.listen")
                .map_or("server.listen".to_owned(), |s| s.at.clone());
            problems.push(Problem {
                at,
                message: format!(
                    "listening on {} (beyond loopback) needs an explicit Host allow-list against DNS rebinding: set server.allowed_hosts / WHARF_ALLOWED_HOSTS to the names clients use (for example \"mcp.example.com\"), or \"*\" behind a proxy that checks Host",
                    config.listen
                ),
            });
        }
        if let Err(e) =
            wharf_http::HostGuard::new(&config.http.allowed_hosts, &config.http.allowed_origins)
        {
            problems.push(e.within("server"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log_level) {
            let at = layer
                .get("log.level")
                .map_or("log.level".to_owned(), |s| s.at.clone());
            problems.push(Problem {
                at,
                message: format!(
                    "not a log filter ({e}); write for example `info` or `wharf=debug,rmcp=warn`"
                ),
            });
        }
        config
    }
}

/// `sqlite://path`, `sqlite:path` or a plain path.
fn sqlite_path(url: &str, at: &str, problems: &mut Vec<Problem>) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        problems.push(Problem {
            at: at.to_owned(),
            message: format!(
                "`{url}` is not a SQLite path; write sqlite://data/wharf.db or a plain path"
            ),
        });
    }
    PathBuf::from(path)
}

/// Converts settings to types, recording a problem (and using the default) on failure.
struct Reader<'a> {
    layer: &'a Layer,
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    /// The setting for `path`, or the key's default as if written in the file.
    fn setting(&self, path: &str) -> (Setting, &'static keys::Key) {
        let key = keys::by_path(path).expect("known key");
        let setting = self.layer.get(path).cloned().unwrap_or_else(|| Setting {
            value: RawValue::Text(key.default.to_owned()),
            at: format!("default of {path}"),
        });
        (setting, key)
    }

    fn fail(&mut self, s: &Setting, key: &keys::Key, detail: &str) {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        self.problems.push(Problem {
            at: s.at.clone(),
            message: format!("must be {}{detail}", key.kind.describe()),
        });
    }

    fn text(&mut self, path: &str) -> String {
        let (s, key) = self.setting(path);
        match s.value {
            RawValue::Text(t) => t,
            _ => {
                self.fail(&s, key, "");
                key.default.to_owned()
            }
        }
    }

    /// A text setting whose default is "unset" (or names another key).
    fn optional_text(&mut self, path: &str) -> Option<String> {
        self.layer.get(path)?;
        Some(self.text(path)).filter(|t| !t.trim().is_empty())
    }

    fn word(&mut self, path: &str) -> &'static str {
        let (s, key) = self.setting(path);
        let Kind::OneOf(words) = key.kind else {
            unreachable!("{path} is not a OneOf key")
        };
        match &s.value {
            RawValue::Text(t) => {
                if let Some(w) = words.iter().find(|w| **w == t.as_str()) {
                    return w;
                }
                self.fail(&s, key, &format!("got `{t}`"));
            }
            _ => self.fail(&s, key, ""),
        }
        words[0]
    }

    fn bool(&mut self, path: &str) -> bool {
        let (s, key) = self.setting(path);
        match &s.value {
            RawValue::Bool(b) => *b,
            RawValue::Text(t) => match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" | "" => false,
                _ => {
                    self.fail(&s, key, &format!("got `{t}`"));
                    false
                }
            },
            _ => {
                self.fail(&s, key, "");
                false
            }
        }
    }

    fn count(&mut self, path: &str) -> usize {
        let (s, key) = self.setting(path);
        let n = match &s.value {
            RawValue::Int(i) => usize::try_from(*i).ok(),
            RawValue::Text(t) => t.trim().replace('_', "").parse::<usize>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n >= 1 => n,
            _ => {
                self.fail(&s, key, "");
                key.default.parse().unwrap_or(1)
            }
        }
    }

    fn duration(&mut self, path: &str) -> Duration {
        let (s, key) = self.setting(path);
        match &s.value {
            RawValue::Text(t) => match humantime::parse_duration(t.trim()) {
                Ok(d) if !d.is_zero() => return d,
                Ok(_) => self.fail(&s, key, "zero is not allowed"),
                Err(e) => self.fail(&s, key, &format!("`{t}`: {e}")),
            },
            RawValue::Int(_) => self.fail(&s, key, "write the unit, for example \"30s\""),
            _ => self.fail(&s, key, ""),
        }
        humantime::parse_duration(key.default).unwrap_or(Duration::from_secs(30))
    }

    /// A duration that may be zero (`0s` turns the behaviour off).
    fn duration_or_zero(&mut self, path: &str) -> Duration {
        let (s, key) = self.setting(path);
        match &s.value {
            RawValue::Text(t) => match humantime::parse_duration(t.trim()) {
                Ok(d) => return d,
                Err(e) => self.fail(&s, key, &format!("`{t}`: {e}")),
            },
            RawValue::Int(0) => return Duration::ZERO,
            RawValue::Int(_) => self.fail(&s, key, "write the unit, for example \"5s\""),
            _ => self.fail(&s, key, ""),
        }
        Duration::ZERO
    }

    fn addr(&mut self, path: &str) -> SocketAddr {
        let (s, key) = self.setting(path);
        let parsed = match &s.value {
            RawValue::Text(t) => t
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("got `{t}`")),
            _ => Err(String::new()),
        };
        parsed.unwrap_or_else(|detail| {
            self.fail(&s, key, &detail);
            key.default.parse().expect("default address")
        })
    }

    fn list(&mut self, path: &str, default: fn() -> Vec<String>) -> Vec<String> {
        match self.layer.get(path) {
            None => default(),
            Some(s) => match &s.value {
                RawValue::List(items) => items.clone(),
                RawValue::Text(t) => vec![t.clone()],
                _ => {
                    let key = keys::by_path(path).expect("known key");
                    self.fail(&s.clone(), key, "");
                    default()
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: &str,
        env: &[(&str, &str)],
        flags: Vec<(&'static str, String, &'static str)>,
    ) -> Result<Config, Vec<Problem>> {
        Config::load(Sources {
            file: (!file.is_empty()).then(|| ("wharf.toml".to_owned(), file.to_owned())),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags,
        })
    }

    #[test]
    fn operations_settings_are_checked() {
        let problems = load(
            "",
            &[
                ("WHARF_STATE_KEY", "short"),
                ("WHARF_OTLP_ENDPOINT", "collector:4318"),
                ("WHARF_DRAIN_DELAY", "soon"),
                ("WHARF_LOG_ROTATION", "weekly"),
            ],
            vec![],
        )
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.contains("WHARF_STATE_KEY") && t.contains("at least 32")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("WHARF_OTLP_ENDPOINT") && t.contains("http://localhost:4318")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("WHARF_DRAIN_DELAY")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("WHARF_LOG_ROTATION") && t.contains("daily, hourly, never")),
            "{text:?}"
        );
        let c = load(
            "[server]\ndrain_delay = \"5s\"\nadmin_listen = \"127.0.0.1:9090\"\n[log]\nfile = \"logs/mcp.log\"\n[telemetry]\notlp_endpoint = \"http://localhost:4318/\"\n",
            &[],
            vec![],
        )
        .unwrap();
        assert_eq!(c.http.drain_delay, Duration::from_secs(5));
        assert_eq!(c.admin_listen.unwrap().to_string(), "127.0.0.1:9090");
        assert_eq!(c.log_file.unwrap().max_files, 7);
        assert_eq!(c.otlp.unwrap().endpoint, "http://localhost:4318");
        assert_eq!(
            load("", &[], vec![]).unwrap().http.drain_delay,
            Duration::ZERO
        );
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = load("", &[], vec![]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert!(!c.http.stateless);
        assert_eq!(c.http.max_sessions, 10_000);
        assert_eq!(c.http.session_idle_timeout, Duration::from_secs(1800));
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(PathBuf::from("./data/wharf.db"))
        );
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let file = "[server]\nlisten = \"127.0.0.1:1111\"\nstateless = true\n[sessions]\nmax = 5\n";
        let c = load(
            file,
            &[
                ("WHARF_LISTEN", "127.0.0.1:2222"),
                ("WHARF_MAX_SESSIONS", "7"),
            ],
            vec![("server.listen", "127.0.0.1:3333".into(), "--listen")],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 3333);
        assert_eq!(c.http.max_sessions, 7);
        assert!(c.http.stateless);
    }

    #[test]
    fn every_bad_value_is_reported_with_both_spellings() {
        let file = "[server]\nshutdown_grace = 30\n[log]\nformat = \"xml\"\n";
        let problems = load(file, &[("WHARF_MAX_SESSIONS", "lots")], vec![]).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t
                    .starts_with("wharf.toml:2:1 (`server.shutdown_grace`): must be a duration")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with(
                "wharf.toml:4:1 (`log.format`): must be one of text, json (got `xml`)"
            )),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t
                    .starts_with("WHARF_MAX_SESSIONS (`sessions.max`): must be a whole number")),
            "{text:?}"
        );
    }

    #[test]
    fn a_public_listener_needs_a_host_allow_list() {
        let problems = load("", &[("WHARF_LISTEN", "0.0.0.0:8000")], vec![]).unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("server.allowed_hosts / WHARF_ALLOWED_HOSTS"),
            "{problems:?}"
        );
        let ok = load(
            "",
            &[
                ("WHARF_LISTEN", "0.0.0.0:8000"),
                ("WHARF_ALLOWED_HOSTS", "mcp.example.com, localhost"),
                KEY,
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(ok.http.allowed_hosts, vec!["mcp.example.com", "localhost"]);
    }

    const PUBLIC: (&str, &str) = ("WHARF_LISTEN", "0.0.0.0:8000");
    const HOSTS: (&str, &str) = ("WHARF_ALLOWED_HOSTS", "mcp.example.com");

    #[test]
    fn a_public_listener_without_auth_refuses_unless_told() {
        let problems = load("", &[PUBLIC, HOSTS], vec![]).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("with no API key and no OAuth would let anyone call every tool"),
            "{problems:?}"
        );
        assert!(
            problems[0].message.contains("--allow-unauthenticated"),
            "{problems:?}"
        );
        let open = load(
            "",
            &[PUBLIC, HOSTS],
            vec![(
                "server.allow_unauthenticated",
                "true".into(),
                "--allow-unauthenticated",
            )],
        )
        .unwrap();
        assert!(!open.auth_on());
    }

    #[test]
    fn short_api_keys_are_refused_outside_dev_mode() {
        let problems = load(
            "",
            &[(
                "WHARF_API_KEYS",
                "ci:short, ops:0123456789abcdef0123456789abcdef",
            )],
            vec![],
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].at, "WHARF_API_KEYS (`auth.api_keys`)");
        assert!(
            problems[0]
                .message
                .starts_with("API key `ci` is 5 characters; use at least 32"),
            "{problems:?}"
        );
        assert!(
            !problems[0].message.contains("short"),
            "the key itself must not appear: {problems:?}"
        );
        let problems = load("", &[("MCP_API_KEY", "tiny")], vec![]).unwrap_err();
        assert_eq!(problems[0].at, "MCP_API_KEY");
        let dev = load(
            "",
            &[("MCP_API_KEY", "tiny")],
            vec![("server.dev", "true".into(), "--dev")],
        )
        .unwrap();
        assert_eq!(dev.http.auth.api_keys.len(), 1);
        assert_eq!(dev.http.auth.api_keys[0].name, "default");
        assert_eq!(
            format!("{:?}", dev.http.auth.api_keys),
            "[ApiKey { name: \"default\", key: \"[redacted]\" }]"
        );
    }

    #[test]
    fn api_key_entries_and_tool_limits_must_be_well_formed() {
        let problems = load(
            "",
            &[
                ("WHARF_API_KEYS", "no-colon-here-0123456789abcdef0123456789"),
                ("WHARF_RATE_LIMIT_TOOLS", "search_items=0, get_item=x"),
            ],
            vec![],
        )
        .unwrap_err();
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(all[0].contains("entry #1 is not `name:key`"), "{all:?}");
        assert!(!all[0].contains("0123456789"), "{all:?}");
        assert!(
            all[1].contains("`search_items=0` is not `tool=N`"),
            "{all:?}"
        );
        assert!(all[2].contains("`get_item=x` is not `tool=N`"), "{all:?}");
    }

    #[test]
    fn account_linking_says_what_it_needs_and_points_the_resource_server_at_itself() {
        let p = load("[account_linking]\nprovider = \"github\"\n", &[], vec![]).unwrap_err();
        assert!(p[0].message.contains("set server.public_url"), "{p:?}");
        let url = "[server]\npublic_url = \"https://mcp.example.com/mcp\"\n";
        let p = load(
            &format!("{url}[account_linking]\nprovider = \"github\"\n"),
            &[],
            vec![],
        )
        .unwrap_err();
        assert!(p[0].message.contains("server.state_key"), "{p:?}");
        let key = "state_key = \"0123456789abcdef0123456789abcdef-x\"\n";
        let p = load(
            &format!("{url}{key}[account_linking]\nprovider = \"oidc\"\n"),
            &[],
            vec![],
        )
        .unwrap_err();
        let text = format!("{p:?}");
        assert!(
            text.contains("https://mcp.example.com/oauth/callback"),
            "{text}"
        );
        assert!(text.contains("account_linking.issuer"), "{text}");
        let p = load(
            &format!("{url}{key}[account_linking]\nprovider = \"okta\"\n"),
            &[],
            vec![],
        )
        .unwrap_err();
        assert!(p[0].message.contains("oidc"), "{p:?}");
        let p = load(
            &format!("{url}{key}[account_linking]\nprovider = \"github\"\nclient_id = \"x\"\nscopes = [\"sql\"]\nscopes_by_group = [\"admins=sql root\", \"nogroup\"]\n"),
            &[("WHARF_ACCOUNT_LINKING_CLIENT_SECRET", "s")],
            vec![],
        )
        .unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.contains("scope `root`"), "{p:?}");
        assert!(
            p[1].message
                .contains("`nogroup` is not `group=scope scope`"),
            "{p:?}"
        );
        let c = load(
            &format!("{url}{key}[account_linking]\nprovider = \"entra\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"x\"\nscopes = [\"catalog\", \"sql\"]\ndefault_scopes = [\"catalog\"]\n"),
            &[("WHARF_ACCOUNT_LINKING_CLIENT_SECRET", "s")],
            vec![],
        )
        .unwrap();
        let a = c.account_linking.unwrap();
        assert_eq!(a.issuer, "https://mcp.example.com");
        assert_eq!(a.default_scopes, ["catalog"]);
        assert_eq!(
            a.provider.oidc_issuer().unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        let o = c.http.auth.oauth.unwrap();
        assert_eq!(o.issuers, ["https://mcp.example.com"]);
        assert_eq!(o.resource, "https://mcp.example.com/mcp");
        assert_eq!(o.scopes_supported, ["catalog", "sql"]);
    }

    #[test]
    fn entra_needs_a_tenant_and_a_multi_tenant_authority_needs_the_tenants_it_admits() {
        let base = "[server]\npublic_url = \"https://mcp.example.com/mcp\"\nstate_key = \"0123456789abcdef0123456789abcdef-x\"\n[account_linking]\nprovider = \"entra\"\nclient_id = \"x\"\n";
        let env = [("WHARF_ACCOUNT_LINKING_CLIENT_SECRET", "s")];
        let p = load(base, &env, vec![]).unwrap_err();
        assert!(p[0].message.contains("needs the tenant"), "{p:?}");
        for tenant in ["organizations", "Common"] {
            let p = load(&format!("{base}tenant = \"{tenant}\"\n"), &env, vec![]).unwrap_err();
            assert!(
                p[0].message.contains("account_linking.allowed_tenants"),
                "{tenant}: {p:?}"
            );
        }
        let c = load(&format!("{base}tenant = \"organizations\"\nallowed_tenants = [\"72f988bf\"]\nscopes = [\"a\", \"b\"]\nscopes_by_group = [\"admins=b\"]\n"), &env, vec![]).unwrap();
        let a = c.account_linking.unwrap();
        assert_eq!(a.provider.allowed_tenants, ["72f988bf"]);
        assert_eq!(
            a.default_scopes,
            ["a"],
            "a scope a group rule names is that group's only"
        );
    }

    #[test]
    fn tools_open_to_anyone_beside_sign_in_are_named_in_a_warning() {
        let file = "[server]\npublic_url = \"https://mcp.example.com/mcp\"\nstate_key = \"0123456789abcdef0123456789abcdef-x\"\n[auth]\nanonymous = true\n[account_linking]\nprovider = \"github\"\nclient_id = \"x\"\n[catalog]\nsecurity = [\"search_items=noauth\", \"get_item=noauth\", \"execute_sql_query=oauth2\"]\n";
        let c = load(
            file,
            &[("WHARF_ACCOUNT_LINKING_CLIENT_SECRET", "s")],
            vec![],
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0]
                .message
                .contains("anyone may call them: list_tables, describe_table."),
            "{}",
            c.warnings[0]
        );
    }

    #[test]
    fn catalog_security_names_catalog_tools_and_schemes() {
        let c = load(
            "[catalog]\nsecurity = [\"search_items=noauth\", \"execute_sql_query=oauth2:sql admin\"]\n",
            &[],
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.catalog_security,
            vec![
                (
                    "search_items".to_owned(),
                    wharf_core::SecurityScheme::NoAuth
                ),
                (
                    "execute_sql_query".to_owned(),
                    wharf_core::SecurityScheme::OAuth2 {
                        scopes: vec!["sql".into(), "admin".into()]
                    }
                ),
            ]
        );
        let p = load(
            "",
            &[("WHARF_CATALOG_SECURITY", "search=noauth,get_item=anyone")],
            vec![],
        )
        .unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].message.contains("`search` is not a catalog tool"),
            "{p:?}"
        );
        assert!(
            p[1].message.contains("`anyone` is not a security scheme"),
            "{p:?}"
        );
    }

    #[test]
    fn oauth_needs_issuer_keys_and_a_resource() {
        let p = load("", &[("WHARF_OAUTH_ISSUERS", "https://as.example")], vec![]).unwrap_err();
        assert!(p[0].message.contains("set auth.jwks_url"), "{p:?}");
        let p = load("", &[("WHARF_JWKS_URL", "https://as.example/jwks")], vec![]).unwrap_err();
        assert!(
            p[0].message.contains("auth.oauth_issuers is empty"),
            "{p:?}"
        );
        let p = load(
            "",
            &[
                ("WHARF_OAUTH_ISSUERS", "https://as.example"),
                ("WHARF_JWKS_URL", "https://as.example/jwks"),
            ],
            vec![],
        )
        .unwrap_err();
        assert!(p[0].message.contains("set auth.resource"), "{p:?}");
        let c = load(
            "",
            &[
                ("WHARF_OAUTH_ISSUERS", "https://as.example"),
                ("WHARF_JWKS_URL", "https://as.example/jwks"),
                ("WHARF_PUBLIC_URL", "https://mcp.example.com/mcp"),
                ("WHARF_OAUTH_REQUIRED_SCOPES", "catalog:read"),
            ],
            vec![],
        )
        .unwrap();
        let o = c.http.auth.oauth.unwrap();
        assert_eq!(o.resource, "https://mcp.example.com/mcp");
        assert_eq!(o.scopes_supported, ["catalog:read"]);
    }

    #[test]
    fn a_postgres_url_is_a_secret() {
        let c = load(
            "",
            &[(
                "WHARF_DATABASE",
                "postgres://wharf:hunter2@db.internal/wharf",
            )],
            vec![],
        )
        .unwrap();
        assert!(matches!(c.database, DatabaseUrl::Postgres(_)));
        let shown = format!("{c:?} {}", c.database);
        assert!(!shown.contains("hunter2"), "{shown}");
        let bad = load("", &[("WHARF_DATABASE", "mysql://x")], vec![]).unwrap_err();
        assert!(bad[0].message.contains("not a SQLite path"), "{bad:?}");
    }

    #[test]
    fn the_reference_in_the_docs_is_current() {
        let docs = include_str!("../../../../docs/configuration.md");
        assert!(
            docs.contains(&keys::reference_markdown()),
            "docs/configuration.md is out of date: regenerate its table with `wharf config-reference`"
        );
    }

    const KEY: (&str, &str) = (
        "MCP_API_KEY",
        "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef",
    );

    #[test]
    fn port_from_the_platform_is_a_public_listen_under_the_public_rules() {
        let c = load("", &[("PORT", "18440"), HOSTS, KEY], vec![]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:18440");
        // WHARF_LISTEN, when set, wins; so does --listen.
        let c = load(
            "[server]\nlisten = \"127.0.0.1:9000\"\n",
            &[("PORT", "18440"), ("WHARF_LISTEN", "127.0.0.1:7000")],
            vec![],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        // The same rules as any public listen, naming where it came from.
        let problems = load("", &[("PORT", "18440")], vec![]).unwrap_err();
        assert!(
            problems.iter().all(|p| p.at == "PORT (`server.listen`)"),
            "{problems:?}"
        );
        assert_eq!(
            problems.len(),
            2,
            "a Host allow-list and a key: {problems:?}"
        );
        let problems = load("", &[("PORT", "eighty")], vec![]).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "PORT (`server.listen`): `eighty` is not a port number (1 to 65535)"
        );
    }

    #[test]
    fn the_names_guides_use_mean_what_they_say_and_others_are_named() {
        let c = load(
            "",
            &[
                ("LOG_LEVEL", "WARNING"),
                ("MCP_CONFIG_PATH", "/etc/wharf/servers.json"),
                ("API_KEY", "x"),
                ("DEBUG", "1"),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(c.log_level, "warn");
        assert_eq!(
            c.gateway_upstreams,
            std::path::PathBuf::from("/etc/wharf/servers.json")
        );
        let warned: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(
            warned[0]
                .starts_with("API_KEY: is set but Wharf does not read it: Wharf reads MCP_API_KEY"),
            "{warned:?}"
        );
        assert!(warned[1].contains("WHARF_LOG=debug"), "{warned:?}");
        // Wharf's own name wins over the conventional one.
        let c = load("", &[("LOG_LEVEL", "debug"), ("WHARF_LOG", "info")], vec![]).unwrap();
        assert_eq!(c.log_level, "info");
    }

    #[test]
    fn a_tunnel_host_or_a_public_url_is_public_and_needs_a_key() {
        let tunnel = ("WHARF_ALLOWED_HOSTS", "localhost,abc123.ngrok-free.app");
        let problems = load("", &[tunnel], vec![]).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().starts_with(
                "WHARF_ALLOWED_HOSTS (`server.allowed_hosts`): admits `abc123.ngrok-free.app`, so this server is reachable beyond this machine"
            ),
            "{problems:?}"
        );
        assert!(load("", &[tunnel, KEY], vec![]).is_ok());
        let url = ("WHARF_PUBLIC_URL", "https://mcp.example.com/mcp");
        let problems = load("", &[url], vec![]).unwrap_err();
        assert!(
            problems[0].message.contains("`mcp.example.com`"),
            "{problems:?}"
        );
        // Loopback names in any spelling are this machine.
        assert!(
            load(
                "",
                &[(
                    "WHARF_ALLOWED_HOSTS",
                    "localhost:8000,127.0.0.1,[::1]:8000,::1"
                )],
                vec![]
            )
            .is_ok()
        );
    }

    #[test]
    fn a_placeholder_key_never_authenticates_even_for_a_laptop() {
        let placeholder = (
            "MCP_API_KEY",
            "replace-with-the-output-of-openssl-rand-hex-32",
        );
        for flags in [vec![], vec![("server.dev", "true".to_owned(), "--dev")]] {
            let problems = load("", &[placeholder], flags).unwrap_err();
            assert_eq!(
                problems[0].to_string(),
                "MCP_API_KEY: API key `default` is placeholder text from a template, which anyone can read: generate one with `openssl rand -hex 32`"
            );
        }
        let problems = load("", &[("MCP_API_KEY", &"k".repeat(40))], vec![]).unwrap_err();
        assert!(
            problems[0].message.contains("does not look random"),
            "{problems:?}"
        );
    }
}
