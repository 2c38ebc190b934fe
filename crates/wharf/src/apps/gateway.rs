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
        return GatewayConfig::parse(text, true, &env)
            .map_err(located(format!("{file} [gateway]")));
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
    GatewayConfig::parse(&text, toml, &env).map_err(located(path.display().to_string()))
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
    let upstreams = load(config).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::anyhow!(
            "the gateway's upstreams have {} problem(s):\n{}",
            problems.len(),
            lines.join("\n")
        )
    })?;
    let gateway = Arc::new(
        Gateway::new(upstreams, "wharf-gateway", env!("CARGO_PKG_VERSION"))
            .context("cannot build the gateway")?,
    );
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
    Ok(gateway)
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
    fn the_example_upstream_file_is_valid() {
        let text = include_str!("../../../../examples/gateway/mcp.json");
        let c = wharf_gateway::GatewayConfig::parse(text, false, &|_| None).unwrap();
        let names: Vec<_> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["catalog", "tools", "legacy"]);
        assert!(!c.upstreams[2].enabled);
    }
}
