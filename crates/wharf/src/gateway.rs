//! `wharf gateway`: read the upstream file, start the federation, and report on
//! a running gateway (`wharf gateway status`).

use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context;
use wharf_core::App;
use wharf_gateway::{Gateway, GatewayConfig};

use crate::config::{Config, layers::Problem};

/// Read and check `gateway.upstreams`; `${VAR}` in it come from the
/// environment. Every problem in the file is returned, each located.
pub fn load(config: &Config) -> Result<GatewayConfig, Vec<Problem>> {
    let env = |name: &str| std::env::var(name).ok();
    let located = |file: String| {
        move |problems: Vec<wharf_gateway::ConfigError>| {
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

/// The gateway's app, with every upstream connected (or being retried).
pub async fn app(config: &Config) -> anyhow::Result<Arc<App>> {
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
    // The watch tasks hold the gateway; the app is what is served.
    Ok(gateway.app())
}

/// One row of `wharf gateway status`, read from the gateway's `/metrics`.
#[derive(Debug, Default, serde::Serialize)]
pub struct Row {
    pub upstream: String,
    pub healthy: bool,
    pub breaker: &'static str,
    pub calls: u64,
    pub failed: u64,
    pub retries: u64,
    pub reconnects: u64,
    pub mean_ms: Option<f64>,
}

/// Parse the `wharf_upstream_*` series of a Prometheus text exposition.
pub fn rows(metrics: &str) -> Vec<Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("wharf_upstream_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches(['"', '}']).to_owned())
        };
        let Some(upstream) = label("upstream") else {
            continue;
        };
        let row = rows.entry(upstream.clone()).or_insert_with(|| Row {
            upstream: upstream.clone(),
            breaker: "closed",
            ..Default::default()
        });
        match name {
            "wharf_upstream_healthy" => row.healthy = value == 1.0,
            "wharf_upstream_breaker_state" => {
                row.breaker = match value as i64 {
                    2 => "open",
                    1 => "half-open",
                    _ => "closed",
                }
            }
            "wharf_upstream_calls_total" => {
                row.calls += value as u64;
                if label("outcome").as_deref() != Some("ok") {
                    row.failed += value as u64;
                }
            }
            "wharf_upstream_retries_total" => row.retries += value as u64,
            "wharf_upstream_reconnects_total" => row.reconnects += value as u64,
            "wharf_upstream_call_duration_seconds_sum" => {
                sums.entry(upstream).or_default().0 = value
            }
            "wharf_upstream_call_duration_seconds_count" => {
                sums.entry(upstream).or_default().1 = value
            }
            _ => {}
        }
    }
    for (upstream, (sum, count)) in sums {
        if let Some(row) = rows.get_mut(&upstream)
            && count > 0.0
        {
            row.mean_ms = Some(sum / count * 1000.0);
        }
    }
    rows.into_values().collect()
}

/// The upstream table of `wharf gateway status` (and `wharf demo`), each line after `indent`.
pub fn print_table(rows: &[Row], indent: &str) {
    println!(
        "{indent}{:<20} {:<9} {:<9} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "upstream", "health", "breaker", "calls", "failed", "retries", "reconnects", "mean ms"
    );
    for r in rows {
        println!(
            "{indent}{:<20} {:<9} {:<9} {:>8} {:>8} {:>8} {:>10} {:>9}",
            r.upstream,
            if r.healthy { "healthy" } else { "down" },
            r.breaker,
            r.calls,
            r.failed,
            r.retries,
            r.reconnects,
            r.mean_ms.map_or("-".into(), |m| format!("{m:.1}")),
        );
    }
}

/// `wharf gateway status`: the table of upstreams of a running gateway.
pub async fn status(url: &str, metrics_key: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = metrics_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        anyhow::bail!(
            "{url} answered {} (a metrics key is sent from server.metrics_key when set)",
            response.status()
        );
    }
    let rows = rows(&response.text().await?);
    if rows.is_empty() {
        anyhow::bail!("{url} has no wharf_upstream_* series: is it a gateway (`wharf gateway`)?");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_table(&rows, "");
    Ok(())
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
        let text = include_str!("../../../examples/gateway/mcp.json");
        let c = wharf_gateway::GatewayConfig::parse(text, false, &|_| None).unwrap();
        let names: Vec<_> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["catalog", "tools", "legacy"]);
        assert!(!c.upstreams[2].enabled);
    }

    #[test]
    fn reads_the_upstream_series() {
        let text = "\
wharf_upstream_healthy{upstream=\"a\"} 1
wharf_upstream_healthy{upstream=\"b\"} 0
wharf_upstream_breaker_state{upstream=\"b\"} 2
wharf_upstream_calls_total{method=\"tools/call\",outcome=\"ok\",upstream=\"a\"} 8
wharf_upstream_calls_total{method=\"tools/call\",outcome=\"timeout\",upstream=\"a\"} 2
wharf_upstream_retries_total{upstream=\"a\"} 3
wharf_upstream_call_duration_seconds_sum{upstream=\"a\"} 0.5
wharf_upstream_call_duration_seconds_count{upstream=\"a\"} 10
wharf_tool_calls_total{outcome=\"ok\",tool=\"x\"} 4
";
        let rows = super::rows(text);
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert!(a.healthy);
        assert_eq!((a.calls, a.failed, a.retries), (10, 2, 3));
        assert_eq!(a.mean_ms, Some(50.0));
        assert_eq!((rows[1].healthy, rows[1].breaker), (false, "open"));
    }
}
