//! `wharf gateway status`: a running gateway's upstreams, read from its
//! `/metrics` (healthy, breaker, calls, failures, retries, reconnections).

use crate::output::say;
use std::collections::BTreeMap;

use anyhow::Context;

/// One row of `wharf gateway status`, read from the gateway's `/metrics`.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Row {
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
pub(crate) fn rows(metrics: &str) -> Vec<Row> {
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
pub(crate) fn print_table(rows: &[Row], indent: &str) -> std::io::Result<()> {
    say!(
        "{indent}{:<20} {:<9} {:<9} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "upstream",
        "health",
        "breaker",
        "calls",
        "failed",
        "retries",
        "reconnects",
        "mean ms"
    )?;
    for r in rows {
        say!(
            "{indent}{:<20} {:<9} {:<9} {:>8} {:>8} {:>8} {:>10} {:>9}",
            r.upstream,
            if r.healthy { "healthy" } else { "down" },
            r.breaker,
            r.calls,
            r.failed,
            r.retries,
            r.reconnects,
            r.mean_ms.map_or("-".into(), |m| format!("{m:.1}")),
        )?;
    }
    Ok(())
}

/// `wharf gateway status`: the table of upstreams of a running gateway.
pub(crate) async fn status(url: &str, metrics_key: Option<&str>, json: bool) -> anyhow::Result<()> {
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
        say!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    print_table(&rows, "")?;
    Ok(())
}

#[cfg(test)]
mod tests {
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
