//! `wharf demo`: the whole client side in one command. It serves the sample
//! catalog in process (or uses `--url`), puts a gateway in front of it and of a
//! deliberately broken upstream, and walks through listing, searching, getting,
//! SQL, a failure that is retried, a circuit breaker opening, and the metrics.

use crate::output::say;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use rmcp::model::{CallToolResponse, JsonObject};
use serde_json::{Value, json};
use wharf_core::CallContext;
use wharf_gateway::{
    Backoff, BreakerConfig, Gateway, GatewayConfig, Transport, UpstreamConfig, WhenUnhealthy,
};

use crate::config::{Config, DatabaseUrl, Profile};

/// Requests the flaky front of the in-process catalog refuses (503) when armed.
#[derive(Default)]
struct Flaky {
    refuse: AtomicU32,
}

async fn flaky_front(
    axum::extract::State(flaky): axum::extract::State<Arc<Flaky>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let refused = flaky
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refused {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(request).await
}

/// Serve the sample catalog on a loopback port, in a throwaway database.
async fn catalog(
    config: &Config,
    flaky: Arc<Flaky>,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("wharf-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut config = config.clone();
    config.profile = Profile::Catalog;
    config.database = DatabaseUrl::Sqlite(dir.join("wharf.db"));
    let app = crate::apps::build(&config, None, true).await?.app;
    let server = wharf_http::build(app, &wharf_http::HttpConfig::default())?;
    let router = server
        .router
        .layer(axum::middleware::from_fn_with_state(flaky, flaky_front));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((url, dir))
}

fn step(n: u32, what: &str) -> std::io::Result<()> {
    say!("\n── {n}. {what}")?;
    Ok(())
}

async fn call(g: &Gateway, tool: &str, args: Value) -> Result<(String, Option<Value>), String> {
    let args: JsonObject = args.as_object().cloned().unwrap_or_default();
    match g
        .app()
        .call_tool(tool, args, CallContext::detached(Default::default()))
        .await
    {
        Ok(CallToolResponse::Complete(r)) => {
            let text = r
                .content
                .iter()
                .find_map(|c| c.as_text().map(|t| t.text.clone()))
                .unwrap_or_default();
            if r.is_error == Some(true) {
                Err(text)
            } else {
                Ok((text, r.structured_content))
            }
        }
        Ok(_) => Err("the tool asked for input".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `wharf demo --gateway`: the servers of the gateway file, as the gateway
/// sees them: each upstream's state, the tools it federates, the metrics.
pub(crate) async fn run_gateway(gateway: &Gateway) -> anyhow::Result<()> {
    step(1, "the upstreams of the gateway file")?;
    for u in gateway.upstreams() {
        say!(
            "  {:<20} {:<6} {:<10} {} tool(s)",
            u.name(),
            u.config().transport.kind(),
            u.health().as_str(),
            u.lists().tools.len()
        )?;
    }
    step(2, "the tools a client sees, one name space")?;
    for t in gateway.app().offer().tools() {
        let d = t.definition().description.as_deref().unwrap_or("");
        let d: String = d.chars().take(70).collect();
        say!("  {:<36} {d}", t.name())?;
    }
    step(3, "next")?;
    say!("  wharf chat                      talk to them with a model (or /call without one)")?;
    say!("  wharf gateway                   serve them as one MCP server at /mcp")?;
    say!("  wharf client --url … tools      the same list from any client")?;
    step(4, "metrics (the gateway's /metrics, summed)")?;
    let text =
        prometheus::TextEncoder::new().encode_to_string(&gateway.app().registry().gather())?;
    crate::client::status::print_table(&crate::client::status::rows(&text), "  ")?;
    gateway.shutdown().await;
    Ok(())
}

pub(crate) async fn run(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    let flaky = Arc::new(Flaky::default());
    let (catalog_url, scratch) = match url {
        Some(u) => (u, None),
        None => {
            say!("Starting the sample catalog in process (a throwaway SQLite database)…")?;
            let (u, dir) = catalog(config, flaky.clone()).await?;
            (u, Some(dir))
        }
    };
    let in_process = scratch.is_some();
    let mut catalog = UpstreamConfig::new(
        "catalog",
        Transport::Http {
            url: catalog_url.clone(),
        },
    );
    catalog.timeout = Duration::from_secs(10);
    // Nothing listens on port 9 (discard) on loopback: every attempt fails to connect.
    let mut broken = UpstreamConfig::new(
        "broken",
        Transport::Http {
            url: "http://127.0.0.1:9/mcp".into(),
        },
    );
    broken.timeout = Duration::from_secs(1);
    broken.max_retries = 0;
    let gateway = Arc::new(Gateway::new(
        GatewayConfig {
            upstreams: vec![catalog, broken],
            separator: "_".into(),
            when_unhealthy: WhenUnhealthy::Error,
            breaker: BreakerConfig {
                consecutive_failures: 3,
                ..Default::default()
            },
            retry_backoff: Backoff::default(),
            reconnect_backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
            log_level: None,
            ..GatewayConfig::new(Vec::new())
        },
        "wharf-demo",
        env!("CARGO_PKG_VERSION"),
    )?);
    gateway.start().await;
    say!("Gateway in front of `catalog` ({catalog_url}) and `broken` (nothing listening).")?;

    step(1, "tools, through the gateway")?;
    for t in gateway.app().offer().tools() {
        let d = t.definition().description.as_deref().unwrap_or("");
        let d: String = d.chars().take(70).collect();
        say!("  {:<28} {d}…", t.name())?;
    }

    step(2, "searches")?;
    let mut first_id = None;
    for query in ["grid", "fetch", "clipboard"] {
        match call(
            &gateway,
            "catalog_search_items",
            json!({"query": query, "limit": 3}),
        )
        .await
        {
            Ok((_, Some(sc))) => {
                let hits = sc["hits"].as_array().cloned().unwrap_or_default();
                say!("  {query:?}: {} hit(s)", hits.len())?;
                for h in &hits {
                    say!(
                        "    {:<45} {}",
                        h["id"].as_str().unwrap_or(""),
                        h["title"].as_str().unwrap_or("")
                    )?;
                    first_id = first_id.or_else(|| h["id"].as_str().map(str::to_owned));
                }
            }
            Ok((text, None)) => say!("  {query:?}: {text}")?,
            Err(e) => say!("  {query:?}: error: {e}")?,
        }
    }

    step(3, "get one item")?;
    if let Some(id) = &first_id {
        match call(&gateway, "catalog_get_item", json!({"id": id})).await {
            Ok((text, _)) => say!("  {}", text.lines().next().unwrap_or(""))?,
            Err(e) => say!("  error: {e}")?,
        }
    }

    step(4, "a read-only SQL query")?;
    let sql = "SELECT count(*) AS items FROM items";
    match call(&gateway, "catalog_execute_sql_query", json!({"sql": sql})).await {
        Ok((_, Some(sc))) => say!("  {sql}\n  → {}", sc["rows"])?,
        Ok((text, None)) => say!("  {text}")?,
        Err(e) => say!("  error: {e}")?,
    }

    step(5, "a failure that is retried")?;
    if in_process {
        flaky.refuse.store(1, Ordering::SeqCst);
        say!(
            "  The catalog's next HTTP request is answered 503; search_items is read-only, so it is safe to repeat."
        )?;
        match call(
            &gateway,
            "catalog_search_items",
            json!({"query": "css", "limit": 1}),
        )
        .await
        {
            Ok(_) => say!("  → answered after a retry")?,
            Err(e) => say!("  → failed: {e}")?,
        }
    } else {
        say!("  (only with the in-process catalog, which can be told to fail; run without --url)")?;
    }

    step(6, "a circuit breaker opening against the broken upstream")?;
    let upstream = gateway
        .upstreams()
        .iter()
        .find(|u| u.name() == "broken")
        .expect("configured above")
        .clone();
    for attempt in 1..=4 {
        let outcome = upstream.list_tools().await;
        match outcome {
            Ok(_) => say!("  call {attempt}: answered?")?,
            Err(e) => say!(
                "  call {attempt}: {e}\n          breaker now {}",
                upstream.breaker_state().as_str()
            )?,
        }
    }

    step(7, "metrics (the gateway's /metrics, summed)")?;
    let text =
        prometheus::TextEncoder::new().encode_to_string(&gateway.app().registry().gather())?;
    crate::client::status::print_table(&crate::client::status::rows(&text), "  ")?;
    gateway.shutdown().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
