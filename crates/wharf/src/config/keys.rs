//! Every configuration key, once: its TOML path, environment variable, kind,
//! default and meaning. The file reader, the environment reader, the CLI,
//! `wharf check` and docs/configuration.md all work from this table, so a key
//! cannot exist in one place and be missing in another.

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `host:port`.
    SocketAddr,
    Bool,
    /// A whole number of at least 1.
    Count,
    /// `30s`, `5m`, `250ms`.
    Duration,
    /// A list of strings; in the environment, comma-separated.
    List,
    Text,
    /// One of the listed words.
    OneOf(&'static [&'static str]),
}

impl Kind {
    pub fn describe(self) -> String {
        match self {
            Kind::SocketAddr => "an address such as 127.0.0.1:8000".into(),
            Kind::Bool => "true or false".into(),
            Kind::Count => "a whole number of at least 1".into(),
            Kind::Duration => "a duration such as 30s, 5m or 250ms".into(),
            Kind::List => "a list of strings (comma-separated in the environment)".into(),
            Kind::Text => "a string".into(),
            Kind::OneOf(words) => format!("one of {}", words.join(", ")),
        }
    }
}

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// `section.name` in the TOML file.
    pub path: &'static str,
    pub env: &'static str,
    pub kind: Kind,
    /// The default, as it would be written in the file; empty when it is computed.
    pub default: &'static str,
    pub doc: &'static str,
}

pub const PROFILES: &[&str] = &["catalog", "builtin", "gateway"];

pub const KEYS: &[Key] = &[
    Key {
        path: "server.listen",
        env: "WHARF_LISTEN",
        kind: Kind::SocketAddr,
        default: "127.0.0.1:8000",
        doc: "Address `wharf serve` listens on. A non-loopback address needs server.allowed_hosts.",
    },
    Key {
        path: "server.public_url",
        env: "WHARF_PUBLIC_URL",
        kind: Kind::Text,
        default: "unset",
        doc: "The HTTPS URL clients such as ChatGPT reach this server at (`https://mcp.example.com/mcp`). `wharf check --submission` requires it to be public HTTPS.",
    },
    Key {
        path: "server.stateless",
        env: "WHARF_STATELESS",
        kind: Kind::Bool,
        default: "false",
        doc: "Turn legacy (2025-x) sessions off: no Mcp-Session-Id is minted and any replica serves any request. 2026-07-28 requests are always stateless.",
    },
    Key {
        path: "server.fast_path",
        env: "WHARF_FAST_PATH",
        kind: Kind::Bool,
        default: "true",
        doc: "Answer ordinary 2026-07-28 tool calls (no progress token, no log level, plain headers) without rmcp's per-request service; the answers are the same. `false` sends every request through rmcp.",
    },
    Key {
        path: "server.allowed_hosts",
        env: "WHARF_ALLOWED_HOSTS",
        kind: Kind::List,
        default: "[\"localhost\", \"127.0.0.1\", \"[::1]\"]",
        doc: "Host header values accepted (`name` or `name:port`; `*` for any). Others get 403 (DNS-rebinding protection). Required when listening beyond loopback.",
    },
    Key {
        path: "server.allowed_origins",
        env: "WHARF_ALLOWED_ORIGINS",
        kind: Kind::List,
        default: "loopback origins on any port",
        doc: "Origin header values accepted from browsers (`https://app.example`, `http://localhost:*`, `null`, `*`). Requests without Origin are not affected.",
    },
    Key {
        path: "server.max_body_bytes",
        env: "WHARF_MAX_BODY_BYTES",
        kind: Kind::Count,
        default: "4194304",
        doc: "Largest request body accepted; larger ones get 413.",
    },
    Key {
        path: "server.body_timeout",
        env: "WHARF_BODY_TIMEOUT",
        kind: Kind::Duration,
        default: "10s",
        doc: "How long a request body may take before server.body_min_rate applies; a body slower than both is cut with 408. Keeps one slow client from holding a request place.",
    },
    Key {
        path: "server.body_min_rate",
        env: "WHARF_BODY_MIN_RATE",
        kind: Kind::Count,
        default: "32768",
        doc: "Bytes per second a request body must keep up, after server.body_timeout (a 4 MiB body may take about two minutes at the default).",
    },
    Key {
        path: "server.header_timeout",
        env: "WHARF_HEADER_TIMEOUT",
        kind: Kind::Duration,
        default: "10s",
        doc: "A request head (request line and headers) must arrive within this long of its first byte, or of the connection opening; otherwise the connection is closed.",
    },
    Key {
        path: "server.idle_timeout",
        env: "WHARF_IDLE_TIMEOUT",
        kind: Kind::Duration,
        default: "75s",
        doc: "A kept-alive connection waiting for its next request is closed after this long. Keep it above your load balancer's idle timeout (60 s on most), so the balancer closes first.",
    },
    Key {
        path: "server.write_timeout",
        env: "WHARF_WRITE_TIMEOUT",
        kind: Kind::Duration,
        default: "30s",
        doc: "A response write (an answer, an SSE event or keep-alive) that makes no progress for this long, because the client stopped reading, ends the connection.",
    },
    Key {
        path: "server.max_connections",
        env: "WHARF_MAX_CONNECTIONS",
        kind: Kind::Count,
        default: "4096",
        doc: "Connections open at once; more are closed as soon as they are accepted. Lowered at start to fit the process's file-descriptor limit (with room for the database and logs).",
    },
    Key {
        path: "server.max_connections_per_client",
        env: "WHARF_MAX_CONNECTIONS_PER_CLIENT",
        kind: Kind::Count,
        default: "256",
        doc: "Connections one client address may hold open at once (a trusted proxy's connections are not counted per address). Raise it for clients behind a shared NAT.",
    },
    Key {
        path: "server.max_requests_per_client",
        env: "WHARF_MAX_REQUESTS_PER_CLIENT",
        kind: Kind::Count,
        default: "64",
        doc: "Requests one client (its subject when authenticated, its address otherwise) may have in flight at once; more get 429. Keeps one client from holding server.max_concurrent_requests.",
    },
    Key {
        path: "server.shutdown_grace",
        env: "WHARF_SHUTDOWN_GRACE",
        kind: Kind::Duration,
        default: "30s",
        doc: "On SIGTERM/SIGINT, how long requests in flight may take to finish before streams are closed and the process exits.",
    },
    Key {
        path: "server.drain_delay",
        env: "WHARF_DRAIN_DELAY",
        kind: Kind::Duration,
        default: "0s",
        doc: "On SIGTERM, how long `/ready` answers 503 while new connections are still accepted, so load balancers stop routing here before the listener closes. Set it a little above the balancer's probe interval (Kubernetes: 5s).",
    },
    Key {
        path: "server.admin_listen",
        env: "WHARF_ADMIN_LISTEN",
        kind: Kind::SocketAddr,
        default: "",
        doc: "A second address serving only `/health`, `/ready` and `/metrics` (say 127.0.0.1:9090, or a port the outside cannot reach); `/metrics` then leaves the main listener. Unset: everything on server.listen.",
    },
    Key {
        path: "server.state_key",
        env: "WHARF_STATE_KEY",
        kind: Kind::Text,
        default: "",
        doc: "Key (at least 32 characters) sealing the `requestState` that 2026-07-28 multi-round-trip tools hand to clients (`CallContext::seal_state`, in every app); replicas must share it so a round trip may continue on any of them. Unset: a random key per process. Secret: also read from `WHARF_STATE_KEY_FILE`.",
    },
    Key {
        path: "server.metrics_key",
        env: "WHARF_METRICS_KEY",
        kind: Kind::Text,
        default: "",
        doc: "When set, `/metrics` answers only `Authorization: Bearer <key>` (401 otherwise). Secret: also read from `WHARF_METRICS_KEY_FILE`.",
    },
    Key {
        path: "server.sse_keep_alive",
        env: "WHARF_SSE_KEEP_ALIVE",
        kind: Kind::Duration,
        default: "15s",
        doc: "Interval of keep-alive comments on SSE streams, so proxies do not cut idle streams. Keep it below your proxy's read timeout.",
    },
    Key {
        path: "server.tool_timeout",
        env: "WHARF_TOOL_TIMEOUT",
        kind: Kind::Duration,
        default: "60s",
        doc: "Longest a tool call may run before it answers with a timeout error.",
    },
    Key {
        path: "server.tls_cert",
        env: "WHARF_TLS_CERT",
        kind: Kind::Text,
        default: "unset",
        doc: "Serve HTTPS natively: the PEM certificate chain (with server.tls_key). Re-read on SIGHUP, so a renewal needs no restart. HSTS is sent on every answer.",
    },
    Key {
        path: "server.tls_key",
        env: "WHARF_TLS_KEY",
        kind: Kind::Text,
        default: "unset",
        doc: "The PEM private key of server.tls_cert.",
    },
    Key {
        path: "server.require_https",
        env: "WHARF_REQUIRE_HTTPS",
        kind: Kind::Bool,
        default: "false",
        doc: "Refuse plain-HTTP requests to MCP routes (403). Behind a proxy, a request counts as HTTPS when a trusted proxy (server.trusted_proxies) sends `X-Forwarded-Proto: https`.",
    },
    Key {
        path: "server.max_concurrent_requests",
        env: "WHARF_MAX_CONCURRENT_REQUESTS",
        kind: Kind::Count,
        default: "512",
        doc: "MCP requests handled at once; one more is answered 503 with Retry-After at once instead of queueing (open SSE streams do not count).",
    },
    Key {
        path: "server.max_sse_streams",
        env: "WHARF_MAX_SSE_STREAMS",
        kind: Kind::Count,
        default: "2048",
        doc: "SSE streams open at once, all transports together; one more is answered 503 with Retry-After. Open streams are in wharf_sse_streams.",
    },
    Key {
        path: "server.trusted_proxies",
        env: "WHARF_TRUSTED_PROXIES",
        kind: Kind::List,
        default: "[]",
        doc: "Proxies (IPs or CIDRs, `10.0.0.0/8`) whose `X-Forwarded-For` / `Forwarded` headers give the client IP for rate limits. Others' headers are ignored.",
    },
    Key {
        path: "server.allow_unauthenticated",
        env: "WHARF_ALLOW_UNAUTHENTICATED",
        kind: Kind::Bool,
        default: "false",
        doc: "Allow listening beyond loopback with no API key and no OAuth (`--allow-unauthenticated`). Without it such a server refuses to start.",
    },
    Key {
        path: "server.dev",
        env: "WHARF_DEV",
        kind: Kind::Bool,
        default: "false",
        doc: "Development mode (`--dev`): accept API keys shorter than 32 characters.",
    },
    Key {
        path: "auth.api_keys",
        env: "WHARF_API_KEYS",
        kind: Kind::List,
        default: "[]",
        doc: "Bearer keys as `name:key` (several, so a key can be rotated without downtime; at least 32 characters each). `MCP_API_KEY` adds one named `default`. Secret: also read from `WHARF_API_KEYS_FILE` / `MCP_API_KEY_FILE`.",
    },
    Key {
        path: "auth.anonymous",
        env: "WHARF_AUTH_ANONYMOUS",
        kind: Kind::Bool,
        default: "false",
        doc: "With auth on, let requests without credentials through; tools then decide by their security schemes (a `noauth` tool answers, an `oauth2` one challenges). Bad credentials are refused either way.",
    },
    Key {
        path: "auth.oauth_issuers",
        env: "WHARF_OAUTH_ISSUERS",
        kind: Kind::List,
        default: "[]",
        doc: "Authorization servers whose JWT access tokens are accepted (their `iss`); published in the protected-resource metadata. Turns OAuth on, with auth.jwks_url.",
    },
    Key {
        path: "auth.jwks_url",
        env: "WHARF_JWKS_URL",
        kind: Kind::Text,
        default: "unset",
        doc: "Where the issuer publishes its signing keys (its `jwks_uri`).",
    },
    Key {
        path: "auth.resource",
        env: "WHARF_OAUTH_RESOURCE",
        kind: Kind::Text,
        default: "server.public_url",
        doc: "This server's resource identifier: tokens must carry it in `aud`. Compared after normalising case, default port and trailing slash.",
    },
    Key {
        path: "auth.required_scopes",
        env: "WHARF_OAUTH_REQUIRED_SCOPES",
        kind: Kind::List,
        default: "[]",
        doc: "Scopes every OAuth token must carry; a token without them gets 403 insufficient_scope.",
    },
    Key {
        path: "auth.scopes_supported",
        env: "WHARF_OAUTH_SCOPES",
        kind: Kind::List,
        default: "auth.required_scopes",
        doc: "Scopes published in the protected-resource metadata.",
    },
    Key {
        path: "auth.leeway",
        env: "WHARF_OAUTH_LEEWAY",
        kind: Kind::Duration,
        default: "60s",
        doc: "Clock skew tolerated on a token's `exp` and `nbf`.",
    },
    Key {
        path: "rate_limit.enabled",
        env: "WHARF_RATE_LIMIT",
        kind: Kind::Bool,
        default: "true",
        doc: "Rate limits on MCP routes, on by default (loopback included).",
    },
    Key {
        path: "rate_limit.anonymous_per_minute",
        env: "WHARF_RATE_LIMIT_ANONYMOUS",
        kind: Kind::Count,
        default: "100",
        doc: "Requests per minute per client IP without credentials (refused credentials count here too).",
    },
    Key {
        path: "rate_limit.subject_per_minute",
        env: "WHARF_RATE_LIMIT_SUBJECT",
        kind: Kind::Count,
        default: "100",
        doc: "Requests per minute per authenticated subject (token `sub` or API-key name), whatever its IP.",
    },
    Key {
        path: "rate_limit.tools",
        env: "WHARF_RATE_LIMIT_TOOLS",
        kind: Kind::List,
        default: "[]",
        doc: "Per-tool limits as `tool=N` (calls per minute per caller), on top of the others.",
    },
    Key {
        path: "rate_limit.redis_url",
        env: "WHARF_REDIS_URL",
        kind: Kind::Text,
        default: "unset",
        doc: "Keep the counters in Redis (`redis://host:6379/0`) so limits hold across replicas; unset: per process. Secret (may hold a password).",
    },
    Key {
        path: "rate_limit.on_backend_error",
        env: "WHARF_RATE_LIMIT_ON_ERROR",
        kind: Kind::OneOf(&["open", "closed"]),
        default: "open",
        doc: "When Redis cannot answer: `open` lets requests through, `closed` answers 503. Either way it is logged and counted in wharf_rate_limit_backend_errors_total.",
    },
    Key {
        path: "sessions.idle_timeout",
        env: "WHARF_SESSION_IDLE_TIMEOUT",
        kind: Kind::Duration,
        default: "30m",
        doc: "A legacy session unused for this long expires; its client then gets 404 and initializes again.",
    },
    Key {
        path: "sessions.max",
        env: "WHARF_MAX_SESSIONS",
        kind: Kind::Count,
        default: "10000",
        doc: "Most legacy sessions one process holds; past it, `initialize` gets 503 with Retry-After.",
    },
    Key {
        path: "sessions.store",
        env: "WHARF_SESSION_STORE",
        kind: Kind::OneOf(&["database", "memory"]),
        default: "database",
        doc: "Where legacy sessions are kept: `database` (survive restarts, shared by replicas on the same database) or `memory` (this process only).",
    },
    Key {
        path: "database.url",
        env: "WHARF_DATABASE",
        kind: Kind::Text,
        default: "sqlite file wharf.db in database.data_dir",
        doc: "The database: a SQLite path (`sqlite://path` or a plain path), or `postgres://user:password@host/db`. Treated as a secret: never logged.",
    },
    Key {
        path: "database.pool_size",
        env: "WHARF_DATABASE_POOL_SIZE",
        kind: Kind::Count,
        default: "16",
        doc: "Connections in the PostgreSQL pool (SQLite uses a fixed pool of 8 readers/writers).",
    },
    Key {
        path: "database.sqlite_memory_limit",
        env: "WHARF_SQLITE_MEMORY_LIMIT",
        kind: Kind::Count,
        default: "268435456",
        doc: "Bytes of memory every SQLite connection of the process may use together (`PRAGMA hard_heap_limit`); a statement that needs more fails with a clear error instead of growing the process.",
    },
    Key {
        path: "database.data_dir",
        env: "WHARF_DATA_DIR",
        kind: Kind::Text,
        default: "./data",
        doc: "Directory for the embedded SQLite database; created if missing.",
    },
    Key {
        path: "log.format",
        env: "WHARF_LOG_FORMAT",
        kind: Kind::OneOf(&["text", "json"]),
        default: "text",
        doc: "Log lines on stderr: readable text or one JSON object per line.",
    },
    Key {
        path: "log.level",
        env: "WHARF_LOG",
        kind: Kind::Text,
        default: "info",
        doc: "Log filter, in tracing's EnvFilter syntax (`info`, `wharf=debug,rmcp=warn`).",
    },
    Key {
        path: "log.file",
        env: "WHARF_LOG_FILE",
        kind: Kind::Text,
        default: "",
        doc: "Also write log lines to this file (for example `logs/mcp.log`; the directory is created), rotated by log.rotation. Unset: stderr only.",
    },
    Key {
        path: "log.file_format",
        env: "WHARF_LOG_FILE_FORMAT",
        kind: Kind::OneOf(&["json", "text"]),
        default: "json",
        doc: "Lines in log.file: one JSON object per line (what log shippers read), or text as on stderr.",
    },
    Key {
        path: "log.rotation",
        env: "WHARF_LOG_ROTATION",
        kind: Kind::OneOf(&["daily", "hourly", "never"]),
        default: "daily",
        doc: "When log.file starts a new file. The file being written is always reachable by the configured name (`logs/mcp.log`, a link to the current file; follow it across rotations with `tail -F`); each period's file is named with its date (`mcp.2026-11-22.log`), and those beyond log.max_files are deleted.",
    },
    Key {
        path: "log.max_files",
        env: "WHARF_LOG_MAX_FILES",
        kind: Kind::Count,
        default: "7",
        doc: "Rotated log files kept.",
    },
    Key {
        path: "telemetry.otlp_endpoint",
        env: "WHARF_OTLP_ENDPOINT",
        kind: Kind::Text,
        default: "",
        doc: "Export traces over OTLP/HTTP to this collector (`http://localhost:4318`; `/v1/traces` is appended). Spans: each HTTP request, MCP request, tool call and database operation, joined to the caller's `traceparent` (HTTP header or request `_meta`). Unset: no spans are made.",
    },
    Key {
        path: "telemetry.otlp_protocol",
        env: "WHARF_OTLP_PROTOCOL",
        kind: Kind::OneOf(&["http/protobuf", "http/json"]),
        default: "http/protobuf",
        doc: "OTLP encoding: protobuf (every collector) or JSON.",
    },
    Key {
        path: "telemetry.service_name",
        env: "WHARF_SERVICE_NAME",
        kind: Kind::Text,
        default: "wharf",
        doc: "`service.name` of the exported spans.",
    },
    Key {
        path: "app.profile",
        env: "WHARF_PROFILE",
        kind: Kind::OneOf(PROFILES),
        default: "catalog",
        doc: "What `serve` and `stdio` offer: `catalog` (search and SQL tools over the database, loaded with the sample catalog when empty), `builtin` (small test tools: echo, add) or `gateway` (the upstream servers of gateway.upstreams, federated; `wharf gateway` is a shortcut).",
    },
    Key {
        path: "gateway.upstreams",
        env: "WHARF_GATEWAY_UPSTREAMS",
        kind: Kind::Text,
        default: "config/mcp.json",
        doc: "The gateway's upstream servers: a `config/mcp.json`-style file (JSON, or the same fields in a `.toml` file); see docs/gateway.md.",
    },
    Key {
        path: "gateway.ready_when",
        env: "WHARF_GATEWAY_READY_WHEN",
        kind: Kind::OneOf(&["any", "all", "always"]),
        default: "any",
        doc: "When the gateway's `/ready` says ready, by its enabled upstreams' health: `any` (at least one healthy), `all`, or `always`. `/ready` lists each upstream's health, breaker and last error either way.",
    },
    Key {
        path: "catalog.sql_timeout",
        env: "WHARF_SQL_TIMEOUT",
        kind: Kind::Duration,
        default: "2s",
        doc: "Longest an `execute_sql_query` statement may run before it is interrupted.",
    },
    Key {
        path: "catalog.sql_max_rows",
        env: "WHARF_SQL_MAX_ROWS",
        kind: Kind::Count,
        default: "500",
        doc: "Most rows `execute_sql_query` returns; the result says when it was cut.",
    },
    Key {
        path: "catalog.sql_max_bytes",
        env: "WHARF_SQL_MAX_BYTES",
        kind: Kind::Count,
        default: "262144",
        doc: "Largest `execute_sql_query` result, in bytes of JSON; the result says when it was cut.",
    },
    Key {
        path: "catalog.security",
        env: "WHARF_CATALOG_SECURITY",
        kind: Kind::List,
        default: "[]",
        doc: "Who may call each catalog tool, as `tool=scheme` (several entries for several schemes): `noauth` (anyone), `oauth2` (any signed-in user), `oauth2:scope scope`. Published as the tool's `securitySchemes`; with auth.anonymous, ChatGPT then offers sign-in only when a protected tool is used. For example `search_items=noauth`, `execute_sql_query=oauth2:sql`.",
    },
    Key {
        path: "catalog.sql_max_value_bytes",
        env: "WHARF_SQL_MAX_VALUE_BYTES",
        kind: Kind::Count,
        default: "8388608",
        doc: "On SQLite, the longest string or blob a model-written statement may build (`SQLITE_LIMIT_LENGTH`), so `randomblob(1e9)` fails at once instead of taking a gigabyte.",
    },
    Key {
        path: "account_linking.provider",
        env: "WHARF_ACCOUNT_LINKING_PROVIDER",
        kind: Kind::OneOf(&["off", "oidc", "github", "google", "entra"]),
        default: "off",
        doc: "Account linking: Wharf becomes the OAuth 2.1 authorization server of its own `/mcp` (DCR, client metadata documents, PKCE, rotating refresh tokens) and users sign in with this provider. Needs server.public_url and server.state_key. See docs/security.md, Account linking.",
    },
    Key {
        path: "account_linking.issuer",
        env: "WHARF_ACCOUNT_LINKING_ISSUER",
        kind: Kind::Text,
        default: "unset",
        doc: "The OIDC provider's issuer URL (`oidc`): its `/.well-known/openid-configuration` is read.",
    },
    Key {
        path: "account_linking.tenant",
        env: "WHARF_ACCOUNT_LINKING_TENANT",
        kind: Kind::Text,
        default: "unset",
        doc: "The Microsoft Entra tenant (`entra`, required): a tenant ID or domain; or `organizations`/`common` with account_linking.allowed_tenants.",
    },
    Key {
        path: "account_linking.allowed_tenants",
        env: "WHARF_ACCOUNT_LINKING_ALLOWED_TENANTS",
        kind: Kind::List,
        default: "[]",
        doc: "With a multi-tenant Entra authority (`organizations`, `common`): the tenant IDs whose users may sign in (any tenant can consent to an app and give its users any role).",
    },
    Key {
        path: "account_linking.client_id",
        env: "WHARF_ACCOUNT_LINKING_CLIENT_ID",
        kind: Kind::Text,
        default: "unset",
        doc: "Wharf's client ID at the provider (the OAuth app you registered there).",
    },
    Key {
        path: "account_linking.client_secret",
        env: "WHARF_ACCOUNT_LINKING_CLIENT_SECRET",
        kind: Kind::Text,
        default: "unset",
        doc: "Wharf's client secret at the provider. Secret: also read from `WHARF_ACCOUNT_LINKING_CLIENT_SECRET_FILE`.",
    },
    Key {
        path: "account_linking.provider_scopes",
        env: "WHARF_ACCOUNT_LINKING_PROVIDER_SCOPES",
        kind: Kind::List,
        default: "the preset's",
        doc: "What Wharf asks of the provider. Default: `openid email profile` (OIDC, Google, Entra), `read:user user:email read:org` (GitHub).",
    },
    Key {
        path: "account_linking.scopes",
        env: "WHARF_ACCOUNT_LINKING_SCOPES",
        kind: Kind::List,
        default: "auth.scopes_supported",
        doc: "The scopes clients may ask Wharf for, published in both metadata documents (the scopes tools name in `security`).",
    },
    Key {
        path: "account_linking.default_scopes",
        env: "WHARF_ACCOUNT_LINKING_DEFAULT_SCOPES",
        kind: Kind::List,
        default: "the scopes no group rule names",
        doc: "Scopes every signed-in user may receive.",
    },
    Key {
        path: "account_linking.scopes_by_group",
        env: "WHARF_ACCOUNT_LINKING_SCOPES_BY_GROUP",
        kind: Kind::List,
        default: "[]",
        doc: "More scopes by group, role or GitHub organisation, as `group=scope scope` (`admins=sql`).",
    },
    Key {
        path: "account_linking.allowed_email_domains",
        env: "WHARF_ACCOUNT_LINKING_ALLOWED_EMAIL_DOMAINS",
        kind: Kind::List,
        default: "[]",
        doc: "Only users with a verified email address in one of these domains may sign in.",
    },
    Key {
        path: "account_linking.allowed_github_orgs",
        env: "WHARF_ACCOUNT_LINKING_ALLOWED_GITHUB_ORGS",
        kind: Kind::List,
        default: "[]",
        doc: "Only members of one of these GitHub organisations may sign in (`github`).",
    },
    Key {
        path: "account_linking.allowed_groups",
        env: "WHARF_ACCOUNT_LINKING_ALLOWED_GROUPS",
        kind: Kind::List,
        default: "[]",
        doc: "Only users in one of these groups or roles (the ID token's `groups`/`roles`) may sign in.",
    },
    Key {
        path: "account_linking.access_token_ttl",
        env: "WHARF_ACCOUNT_LINKING_ACCESS_TOKEN_TTL",
        kind: Kind::Duration,
        default: "1h",
        doc: "How long an access token Wharf issues lasts (clients refresh it).",
    },
    Key {
        path: "account_linking.refresh_token_ttl",
        env: "WHARF_ACCOUNT_LINKING_REFRESH_TOKEN_TTL",
        kind: Kind::Duration,
        default: "30d",
        doc: "How long an unused refresh token lasts; each use gives a new one for as long again.",
    },
    Key {
        path: "account_linking.grant_lifetime",
        env: "WHARF_ACCOUNT_LINKING_GRANT_LIFETIME",
        kind: Kind::Duration,
        default: "90d",
        doc: "How long after signing in a client may keep refreshing; then the user signs in again (and the allow-lists apply again).",
    },
    Key {
        path: "account_linking.key_rotation",
        env: "WHARF_ACCOUNT_LINKING_KEY_ROTATION",
        kind: Kind::Duration,
        default: "30d",
        doc: "How long a signing key signs before a new one takes over (the old one stays published until its tokens expire).",
    },
    Key {
        path: "account_linking.max_clients",
        env: "WHARF_ACCOUNT_LINKING_MAX_CLIENTS",
        kind: Kind::Count,
        default: "10000",
        doc: "Dynamically registered clients kept at most; registration answers `temporarily_unavailable` beyond.",
    },
    Key {
        path: "account_linking.client_idle_expiry",
        env: "WHARF_ACCOUNT_LINKING_CLIENT_IDLE_EXPIRY",
        kind: Kind::Duration,
        default: "30d",
        doc: "A registered client unused this long is forgotten.",
    },
    Key {
        path: "account_linking.registrations_per_minute",
        env: "WHARF_ACCOUNT_LINKING_REGISTRATIONS_PER_MINUTE",
        kind: Kind::Count,
        default: "10",
        doc: "Registrations allowed per client address per minute.",
    },
    Key {
        path: "account_linking.allow_private_client_metadata",
        env: "WHARF_ACCOUNT_LINKING_ALLOW_PRIVATE_CLIENT_METADATA",
        kind: Kind::Bool,
        default: "false",
        doc: "Fetch client metadata documents from http and from private, loopback or link-local addresses (tests, one private network). Off: such a `client_id` is refused.",
    },
    Key {
        path: "account_linking.client_metadata_ca",
        env: "WHARF_ACCOUNT_LINKING_CLIENT_METADATA_CA",
        kind: Kind::Text,
        default: "unset",
        doc: "A PEM file of certificate authorities to trust, beside the system's, when fetching client metadata documents (clients on a private PKI).",
    },
    Key {
        path: "account_linking.github_url",
        env: "WHARF_ACCOUNT_LINKING_GITHUB_URL",
        kind: Kind::Text,
        default: "https://github.com",
        doc: "GitHub's web root (another for GitHub Enterprise Server).",
    },
    Key {
        path: "account_linking.github_api_url",
        env: "WHARF_ACCOUNT_LINKING_GITHUB_API_URL",
        kind: Kind::Text,
        default: "https://api.github.com",
        doc: "GitHub's API root (`https://HOST/api/v3` for GitHub Enterprise Server).",
    },
];

/// Variables that platforms and common guides set, read as the key they mean
/// when Wharf's own variable for it is not set: (variable, key path).
/// `PORT` (Cloud Run, App Runner, Heroku, Railway, Render, Azure Container
/// Apps) means `server.listen = 0.0.0.0:$PORT`.
pub const CONVENTIONAL: &[(&str, &str)] = &[
    ("PORT", "server.listen"),
    ("LOG_LEVEL", "log.level"),
    ("MCP_CONFIG_PATH", "gateway.upstreams"),
];

/// Names common guides set that Wharf does not read, and what to set instead:
/// a startup and `wharf check` warning, never silence.
pub const NOT_READ: &[(&str, &str)] = &[
    (
        "API_KEY",
        "Wharf reads MCP_API_KEY (one key) or WHARF_API_KEYS (named keys, `name:key,...`)",
    ),
    (
        "API_BASE_URL",
        "the URL clients reach this server at is WHARF_PUBLIC_URL (server.public_url); an upstream's URL goes in the gateway file",
    ),
    (
        "DEBUG",
        "set WHARF_LOG=debug (log.level) for debug logs; --dev relaxes the production checks",
    ),
    (
        "ENVIRONMENT",
        "Wharf has no environment switch: production rules apply unless --dev (server.dev) is given",
    ),
];

pub fn by_path(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

pub fn by_env(env: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.env == env)
}

/// The closest known name to a misspelt one, if any is close.
pub fn suggest<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Markdown for docs/configuration.md; a test keeps the committed file in step.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "| key (wharf.toml) | environment | values | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            k.path,
            k.env,
            k.kind.describe(),
            if k.default
                .starts_with(['[', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                || k.default == "false"
                || k.default == "true"
                || !k.default.contains(' ')
            {
                format!("`{}`", k.default)
            } else {
                k.default.to_owned()
            },
            k.doc
        ));
    }
    out
}
