//! The gateway profile (`wharf gateway`): read the upstream file and start
//! the federation; the app it serves relays every call to an upstream.

use std::sync::Arc;

use anyhow::Context;
use wharf_gateway::{Gateway, GatewayConfig};

use crate::config::{Config, layers::Problem};

/// Read and check `gateway.upstreams`; `${VAR}` in it come from the
/// environment. Every problem in the file is returned, each located.
pub(crate) fn load(config: &Config) -> Result<GatewayConfig, Vec<Problem>> {
    let env = |name: &str| std::env::var(name).ok();
    let located = |file: String| {
        move |problems: Vec<wharf_core::Problem>| {
            problems
                .into_iter()
                .map(|p| Problem {
                    at: format!("{file}: {}", p.at),
                    message: p.message,
                })
                .collect::<Vec<_>>()
        }
    };
    if let Some((file, text)) = &config.gateway_inline {
        let parsed =
            GatewayConfig::parse(text, true, &env).map_err(located(format!("{file} [gateway]")))?;
        return with_lock_file(with_server_settings(parsed, config)?);
    }
    let path = &config.gateway_upstreams;
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            at: path.display().to_string(),
            message: format!(
                "cannot read the gateway's upstream file: {e} (gateway.upstreams / WHARF_GATEWAY_UPSTREAMS / MCP_CONFIG_PATH / --upstreams)"
            ),
        }]
    })?;
    let toml = path.extension().is_some_and(|e| e == "toml");
    let parsed =
        GatewayConfig::parse(&text, toml, &env).map_err(located(path.display().to_string()))?;
    with_lock_file(with_server_settings(parsed, config)?)
}

/// What the gateway takes from the server's settings: where users reach it
/// (sign-in links, the OAuth redirect URI) and the vault's key material. An
/// upstream that signs each user in needs both.
fn with_server_settings(
    mut config: GatewayConfig,
    server: &Config,
) -> Result<GatewayConfig, Vec<Problem>> {
    // `server.public_url` names the MCP endpoint (…/mcp); the gateway's pages are beside it.
    config.public_url = server.public_url.as_ref().map(|u| {
        let u = u.trim_end_matches('/');
        u.strip_suffix("/mcp").unwrap_or(u).to_owned()
    });
    config.vault_secret = server
        .state_key
        .as_ref()
        .map(|k| k.expose().as_bytes().to_vec());
    let mut problems = Vec::new();
    for u in &config.upstreams {
        let Some(o) = &u.oauth else { continue };
        if o.grant != wharf_gateway::Grant::AuthorizationCode {
            continue;
        }
        if config.public_url.is_none() {
            problems.push(Problem {
                at: format!("servers ({}).oauth", u.name),
                message: "users sign in through the gateway's own pages: set server.public_url (WHARF_PUBLIC_URL) to the URL users reach the gateway at, such as https://gw.example.com/mcp".into(),
            });
        }
        if config.vault_secret.is_none() {
            problems.push(Problem {
                at: format!("servers ({}).oauth", u.name),
                message: "users' tokens are kept sealed with a key derived from server.state_key (WHARF_STATE_KEY): set it (`openssl rand -base64 48`), the same on every replica".into(),
            });
        }
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Where `wharf gateway lock` writes when neither `--output` nor
/// `pinning.lock_file` says.
pub(crate) const DEFAULT_LOCK_FILE: &str = "config/mcp.lock.json";

/// The lock file `pinning.lock_file` names, read into the pins. A file not
/// written yet is no error: tools are pinned at first sight until it is.
fn with_lock_file(mut config: GatewayConfig) -> Result<GatewayConfig, Vec<Problem>> {
    let Some(path) = config.pinning.lock_file.clone() else {
        return Ok(config);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.display(), "no lock file yet; tools are pinned as first seen (write it with `wharf gateway lock`)");
            return Ok(config);
        }
        Err(e) => {
            return Err(vec![Problem {
                at: path.display().to_string(),
                message: format!("cannot read the lock file: {e}"),
            }]);
        }
    };
    #[derive(serde::Deserialize)]
    struct Lock {
        tools: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    }
    match serde_json::from_str::<Lock>(&text) {
        Ok(lock) => {
            config.pinning.locked = lock.tools;
            Ok(config)
        }
        Err(e) => Err(vec![Problem {
            at: format!("{} line {} column {}", path.display(), e.line(), e.column()),
            message: format!("not a lock file `wharf gateway lock` wrote ({e}); write it again"),
        }]),
    }
}

/// `wharf gateway lock`: connect every upstream and write each tool's
/// definition hash to the lock file. Refuses to write one with an upstream
/// missing (its tools would go unpinned).
pub(crate) async fn lock(
    config: &Config,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let gateway = start(config).await?;
    let (hashes, missing) = gateway.tool_hashes();
    gateway.shutdown().await;
    if !missing.is_empty() {
        anyhow::bail!(
            "not connected: {}; nothing was written (start them, or set `enabled: false`)",
            missing.join(", ")
        );
    }
    let path = output
        .or_else(|| load(config).ok().and_then(|c| c.pinning.lock_file))
        .unwrap_or_else(|| DEFAULT_LOCK_FILE.into());
    let tools: usize = hashes.values().map(|t| t.len()).sum();
    let text = serde_json::to_string_pretty(&serde_json::json!({"version": 1, "tools": hashes}))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "pinned {tools} tool(s) of {} upstream(s) in {}",
        hashes.len(),
        path.display()
    );
    Ok(())
}

/// Is there a gateway configuration to start: `[gateway]` in wharf.toml or the
/// upstream file (config/mcp.json, `MCP_CONFIG_PATH`)?
pub(crate) fn configured(config: &Config) -> bool {
    config.gateway_inline.is_some() || config.gateway_upstreams.is_file()
}

/// The gateway served on a loopback port with no credentials, for the
/// terminal commands that talk to "my configured servers" (`wharf chat`,
/// `wharf demo --gateway`): its /mcp URL and the gateway.
pub(crate) async fn serve_on_loopback(config: &Config) -> anyhow::Result<(String, Arc<Gateway>)> {
    let gateway = start(config).await?;
    let server = wharf_http::build(gateway.app(), &wharf_http::HttpConfig::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, server.router).await;
    });
    Ok((url, gateway))
}

/// The gateway, with every upstream connected (or being retried); its app
/// is what is served.
pub(crate) async fn start(config: &Config) -> anyhow::Result<Arc<Gateway>> {
    start_audited(config, None).await.map(|(g, _)| g)
}

/// [`start`], recording every tool call in `db`'s audit trail unless the
/// file turns it off (`audit: false`); the writer, to flush at shutdown.
pub(crate) async fn start_audited(
    config: &Config,
    db: Option<&wharf_catalog::Database>,
) -> anyhow::Result<(Arc<Gateway>, Option<Arc<crate::audit::AuditWriter>>)> {
    let upstreams = load(config).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::anyhow!(
            "the gateway's upstreams have {} problem(s):\n{}",
            problems.len(),
            lines.join("\n")
        )
    })?;
    let audit = upstreams.audit;
    let gateway = Arc::new(
        Gateway::new(upstreams, "wharf-gateway", env!("CARGO_PKG_VERSION"))
            .context("cannot build the gateway")?,
    );
    if let Some(db) = db {
        gateway.tokens_in(Box::new(crate::database::StoredTokens(db.token_table())));
    }
    let writer = match db.filter(|_| audit.enabled) {
        Some(db) => {
            let writer = crate::audit::AuditWriter::start(
                db.audit_log(),
                audit.retention,
                gateway.app().registry(),
            )?;
            gateway.audit_to(writer.clone());
            Some(writer)
        }
        None => None,
    };
    gateway.start().await;
    for u in gateway.upstreams() {
        tracing::info!(
            upstream = u.name(),
            transport = u.config().transport.kind(),
            health = u.health().as_str(),
            tools = u.lists().tools.len(),
            "upstream"
        );
    }
    Ok((gateway, writer))
}

#[cfg(test)]
mod tests {
    #[test]
    fn upstreams_can_live_in_wharf_toml() {
        let text = "[server]\nlisten = \"127.0.0.1:8100\"\n[gateway]\nseparator = \".\"\n\n[[gateway.servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:8000/mcp\"\ntimeout = \"5s\"\n";
        let config = crate::config::Config::load(crate::config::Sources {
            file: Some(("wharf.toml".into(), text.into())),
            env: vec![],
            flags: vec![],
        })
        .unwrap();
        let g = super::load(&config).unwrap();
        assert_eq!(g.separator, ".");
        assert_eq!(g.upstreams[0].timeout, std::time::Duration::from_secs(5));

        let bad = text.replace("timeout", "timout");
        let config = crate::config::Config::load(crate::config::Sources {
            file: Some(("wharf.toml".into(), bad)),
            env: vec![],
            flags: vec![],
        })
        .unwrap();
        let e = super::load(&config).unwrap_err()[0].to_string();
        assert!(
            e.contains("wharf.toml [gateway]: servers[0] (a): unknown field `timout`"),
            "{e}"
        );
    }

    #[test]
    fn per_user_sign_in_needs_a_public_url_and_a_vault_key() {
        let text = "[gateway]\n[[gateway.servers]]\nname = \"gh\"\nurl = \"https://gh.example/mcp\"\noauth = { scopes = [\"repo\"] }\n";
        let load = |extra: &str| {
            let config = crate::config::Config::load(crate::config::Sources {
                file: Some(("wharf.toml".into(), format!("{extra}{text}"))),
                env: vec![],
                flags: vec![],
            })
            .unwrap();
            super::load(&config)
        };
        let problems: Vec<String> = load("")
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            problems.iter().any(|p| p.contains("server.public_url")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("server.state_key")),
            "{problems:?}"
        );
        let ok = load("[server]\npublic_url = \"https://gw.example/mcp\"\nstate_key = \"0123456789abcdef0123456789abcdef0123\"\n[auth]\napi_keys = [\"ci:a8f3k2m9q4w7e1r6t5y0u3i8o2p7s4d9\"]\n")
            .unwrap();
        assert_eq!(ok.public_url.as_deref(), Some("https://gw.example"));
        assert!(ok.vault_secret.is_some());
    }

    #[test]
    fn the_example_upstream_file_is_valid() {
        let text = include_str!("../../../../examples/gateway/mcp.json");
        let c = wharf_gateway::GatewayConfig::parse(text, false, &|_| None).unwrap();
        let names: Vec<_> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["catalog", "tools", "legacy"]);
        assert!(!c.upstreams[2].enabled);
    }
}
