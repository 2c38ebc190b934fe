//! The gateway: every upstream's tools, prompts and resources gathered into one
//! [`App`], served by Wharf like any other app (auth, limits, metrics, every
//! transport).
//!
//! Tools and prompts are renamed `{namespace}{separator}{name}`; resource URIs
//! keep their identity (a widget's `ui://` URI is named in its tool's `_meta` and
//! in the host's cache, so rewriting it would break the widget) and are routed
//! by URI. When an upstream announces a change, or recovers, its lists are read
//! again and the app's offer replaced, which announces the change downstream.

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData,
    model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams, Tool},
};
use tokio_util::sync::CancellationToken;
use wharf_core::{
    App, AppError, ArgumentValidator, CallContext, Offering, PromptError, PromptSpec,
    ResourceError, ResourceSpec, TemplateSpec, ToolError, ToolSpec,
};

use crate::{
    config::{GatewayConfig, WhenUnhealthy},
    error::UpstreamError,
    metrics::UpstreamMetrics,
    upstream::{Health, Upstream},
};

/// Bursts of change notifications are folded into one re-listing.
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(100);

/// Many upstreams behind one app.
pub struct Gateway {
    app: Arc<App>,
    upstreams: Vec<Arc<Upstream>>,
    separator: String,
    when_unhealthy: WhenUnhealthy,
    stop: CancellationToken,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstreams", &self.upstreams)
            .finish()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Gateway {
    /// The gateway for `config`; nothing is connected until [`Gateway::start`].
    pub fn new(config: GatewayConfig, name: &str, version: &str) -> Result<Self, AppError> {
        let metrics = UpstreamMetrics::new();
        let mut builder = App::builder(name, version)
            .title("Wharf gateway")
            .list_changed();
        for c in metrics.collectors() {
            builder = builder.collector(c);
        }
        let app = Arc::new(builder.build()?);
        let upstreams = config
            .upstreams
            .into_iter()
            .map(|u| {
                Arc::new(Upstream::new(
                    u,
                    config.breaker,
                    config.retry_backoff,
                    config.reconnect_backoff,
                    metrics.clone(),
                ))
            })
            .collect();
        Ok(Self {
            app,
            upstreams,
            separator: config.separator,
            when_unhealthy: config.when_unhealthy,
            stop: CancellationToken::new(),
        })
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Connect to every upstream at once, list what each offers, publish, and
    /// start the health checks and change listeners. An upstream that is down
    /// is reported and retried by its health check; the gateway starts anyway.
    pub async fn start(self: &Arc<Self>) {
        futures::future::join_all(self.upstreams.iter().map(|u| async move {
            if u.check_health().await == Health::Healthy
                && let Err(e) = u.refresh_lists().await
            {
                tracing::warn!(upstream = u.name(), error = %e, "cannot list the upstream's tools");
            }
        }))
        .await;
        self.publish();
        for u in &self.upstreams {
            if u.config().enabled {
                tokio::spawn(self.clone().watch(u.clone()));
            }
        }
    }

    /// Stop the background tasks and close every connection.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        futures::future::join_all(self.upstreams.iter().map(|u| u.shutdown())).await;
    }

    /// Health checks at the upstream's interval, and re-listing when it
    /// announces a change or comes back.
    async fn watch(self: Arc<Self>, upstream: Arc<Upstream>) {
        let changes = upstream.changes();
        let mut tick = tokio::time::interval(upstream.config().health_check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // start() just checked
        let mut was = upstream.health();
        loop {
            let relist = tokio::select! {
                () = self.stop.cancelled() => return,
                () = changes.notified() => {
                    tokio::time::sleep(CHANGE_DEBOUNCE).await;
                    true
                }
                _ = tick.tick() => {
                    let now = upstream.check_health().await;
                    let recovered = now == Health::Healthy && was != Health::Healthy;
                    let fell = now != Health::Healthy && was == Health::Healthy;
                    was = now;
                    if fell && self.when_unhealthy == WhenUnhealthy::Hide {
                        self.publish();
                    }
                    recovered
                }
            };
            if relist {
                match upstream.refresh_lists().await {
                    Ok(_) => self.publish(),
                    Err(e) => {
                        tracing::warn!(upstream = upstream.name(), error = %e, "cannot list the upstream's tools")
                    }
                }
            }
        }
    }

    /// Build the offer from every upstream's last lists and swap it in.
    pub fn publish(&self) {
        let mut offering = Offering::default();
        let mut uris = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for u in &self.upstreams {
            let hidden = match u.health() {
                Health::Disabled => true,
                Health::Unhealthy(_) => self.when_unhealthy == WhenUnhealthy::Hide,
                _ => false,
            };
            if hidden {
                continue;
            }
            let lists = u.lists();
            let ns = &u.config().namespace;
            let rename = |name: &str| {
                if ns.is_empty() {
                    name.to_owned()
                } else {
                    format!("{ns}{}{name}", self.separator)
                }
            };
            for tool in &lists.tools {
                let name = rename(&tool.name);
                if !names.insert(name.clone()) {
                    tracing::warn!(
                        upstream = u.name(),
                        tool = name,
                        "tool name taken by another upstream; skipped"
                    );
                    continue;
                }
                match forward_tool(u, tool, name.clone()) {
                    Ok(spec) => offering.tools.push(spec),
                    Err(why) => {
                        names.remove(&name);
                        tracing::warn!(upstream = u.name(), tool = %tool.name, error = why, "upstream tool skipped");
                    }
                }
            }
            for prompt in &lists.prompts {
                let name = rename(&prompt.name);
                let mut renamed = prompt.clone();
                renamed.name = name;
                let original = prompt.name.clone();
                let up = u.clone();
                offering
                    .prompts
                    .push(PromptSpec::new(renamed, move |_ctx, args| {
                        let up = up.clone();
                        let params =
                            GetPromptRequestParams::new(original.clone()).with_arguments(args);
                        async move {
                            up.call("prompts/get", true, |c| {
                                let p = params.clone();
                                async move { c.get_prompt_once(p).await }
                            })
                            .await
                            .map_err(|e| PromptError::Protocol(relayed(e)))
                        }
                    }));
            }
            for resource in &lists.resources {
                if !uris.insert(resource.uri.clone()) {
                    tracing::warn!(
                        upstream = u.name(),
                        uri = resource.uri,
                        "resource URI offered by another upstream; skipped"
                    );
                    continue;
                }
                let up = u.clone();
                offering
                    .resources
                    .push(ResourceSpec::new(resource.clone(), move |ctx, uri| {
                        read(up.clone(), ctx, uri)
                    }));
            }
            for template in &lists.templates {
                let up = u.clone();
                offering
                    .templates
                    .push(TemplateSpec::new(template.clone(), move |ctx, uri, _| {
                        read(up.clone(), ctx, uri)
                    }));
            }
        }
        match self.app.replace_offer(offering) {
            Ok(changed) => tracing::debug!(?changed, "gateway offer published"),
            Err(e) => tracing::error!(error = %e, "gateway offer refused; the previous one stays"),
        }
    }
}

async fn read(
    up: Arc<Upstream>,
    ctx: CallContext,
    uri: String,
) -> Result<rmcp::model::ReadResourceResponse, ResourceError> {
    let mut params = ReadResourceRequestParams::new(uri);
    if let Some(r) = ctx.input_responses() {
        params = params.with_input_responses(r.clone());
    }
    params.request_state = ctx.request_state().map(str::to_owned);
    up.call("resources/read", true, |c| {
        let p = params.clone();
        async move { c.read_resource_once(p).await }
    })
    .await
    .map_err(|e| ResourceError::Protocol(relayed(e)))
}

/// An upstream's own JSON-RPC error goes back as it came; the gateway's reasons
/// (breaker open, timeout, cannot connect) as an internal error that says which
/// upstream and why: nothing in them is secret, and a client can act on them.
fn relayed(e: UpstreamError) -> ErrorData {
    match e {
        UpstreamError::Remote { error, .. } => error,
        other => ErrorData::internal_error(other.to_string(), None),
    }
}

/// A tool of `upstream`, published as `name`. Its schema is checked here so one
/// upstream's bad tool is skipped instead of refusing the whole offer.
fn forward_tool(upstream: &Arc<Upstream>, tool: &Tool, name: String) -> Result<ToolSpec, String> {
    ArgumentValidator::new(&tool.input_schema)?;
    let idempotent = tool
        .annotations
        .as_ref()
        .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));
    let original = tool.name.clone();
    let mut renamed = tool.clone();
    renamed.name = name.into();
    let up = upstream.clone();
    Ok(
        ToolSpec::from_definition(renamed).handler(move |ctx: CallContext, args| {
            let up = up.clone();
            let mut params = CallToolRequestParams::new(original.clone()).with_arguments(args);
            if let Some(r) = ctx.input_responses() {
                params = params.with_input_responses(r.clone());
            }
            if let Some(s) = ctx.request_state() {
                params = params.with_request_state(s);
            }
            async move {
                up.call("tools/call", idempotent, |c| {
                    let p = params.clone();
                    async move { c.call_tool_once(p).await }
                })
                .await
                .map_err(|e| match e {
                    UpstreamError::Remote { error, .. } => ToolError::Protocol(error),
                    other => ToolError::Upstream(other.to_string()),
                })
            }
        }),
    )
}
