//! The gateway: every upstream's tools, prompts and resources gathered into one
//! [`App`], served by Wharf like any other app (auth, limits, metrics, every
//! transport).
//!
//! Tools and prompts are renamed `{namespace}{separator}{name}`; resource URIs
//! keep their identity (a widget's `ui://` URI is named in its tool's `_meta` and
//! in the host's cache, so rewriting it would break the widget) and are routed
//! by URI. When an upstream announces a change, or recovers, its lists are read
//! again and the app's offer replaced, which announces the change downstream.

use std::collections::BTreeMap;
use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest,
        CompleteRequestParams, GetPromptRequest, GetPromptRequestParams, GetPromptResponse,
        InputResponses, ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse,
        Reference, ServerResult, Tool,
    },
};
use tokio_util::sync::CancellationToken;
use wharf_core::{
    App, AppError, ArgumentValidator, CallContext, Changed, ListChange, Offering, PromptError,
    PromptSpec, ResourceError, ResourceSpec, Seen, SessionRequest, TemplateSpec, ToolError,
    ToolSpec, UriTemplate,
};

use crate::{
    config::{GatewayConfig, ReadyWhen, WhenUnhealthy},
    error::UpstreamError,
    metrics::UpstreamMetrics,
    relay::{MAX_INPUT_ROUNDS, fulfil, legacy_client},
    upstream::{Health, Upstream},
};

/// Bursts of change notifications are folded into one re-listing.
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(100);

/// A legacy caller's lane to an upstream is closed after this long without a
/// request (unless it holds a subscription), or as soon as its session ends.
const LANE_IDLE: Duration = Duration::from_secs(600);

/// Where the gateway hands each call's audit record. Must not block: a sink
/// that cannot keep up drops (and counts) records rather than slow calls.
pub trait AuditSink: Send + Sync {
    fn record(&self, record: wharf_core::AuditRecord);
}

/// Many upstreams behind one app.
pub struct Gateway {
    app: Arc<App>,
    upstreams: Vec<Arc<Upstream>>,
    separator: String,
    when_unhealthy: WhenUnhealthy,
    pins: crate::pinning::Pins,
    /// What views know of each published tool, swapped whole on each publish.
    facts: Arc<arc_swap::ArcSwap<crate::views::Facts>>,
    views: Arc<crate::views::Views>,
    tool_search: bool,
    /// The published tools, for `search_tools` (tool search mode only).
    index: Arc<arc_swap::ArcSwap<crate::tool_search::ToolIndex>>,
    metrics: UpstreamMetrics,
    /// Each tool call's record goes here, when auditing is on.
    audit: std::sync::OnceLock<Arc<dyn AuditSink>>,
    /// Sign-in and tokens of the upstreams with `oauth`.
    sign_ins: Option<Arc<crate::vault::SignIns>>,
    /// Keys the audit trail's argument hashes (from `server.state_key`): the
    /// same on every replica, and not guessable by trying values.
    args_key: Option<Arc<ring::hmac::Key>>,
    stop: CancellationToken,
}

impl Gateway {
    /// Whether the gateway is ready by `when` (`Err`: why not), and each
    /// upstream's state for `/ready`: health, breaker, and the last error.
    pub fn readiness(&self, when: ReadyWhen) -> (Result<(), String>, serde_json::Value) {
        let mut states = serde_json::Map::new();
        let (mut enabled, mut healthy, mut down) = (0usize, 0usize, Vec::new());
        for u in &self.upstreams {
            let health = u.health();
            let mut state = serde_json::json!({
                "health": health.as_str(),
                "breaker": u.breaker_state().as_str(),
            });
            if let Health::Unhealthy(why) = &health {
                state["error"] = why.clone().into();
            }
            states.insert(u.name().to_owned(), state);
            match health {
                Health::Disabled => {}
                Health::Healthy => {
                    enabled += 1;
                    healthy += 1;
                }
                other => {
                    enabled += 1;
                    down.push(format!("{} {}", u.name(), other.as_str()));
                }
            }
        }
        let ready = match when {
            ReadyWhen::All => healthy == enabled,
            ReadyWhen::Any => healthy > 0 || enabled == 0,
            ReadyWhen::Always => true,
        };
        let verdict = if ready {
            Ok(())
        } else {
            let word = if when == ReadyWhen::All { "all" } else { "any" };
            Err(format!(
                "{healthy} of {enabled} upstreams healthy, and readiness needs {word} (gateway.ready_when): {}",
                down.join(", ")
            ))
        };
        (verdict, serde_json::Value::Object(states))
    }
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
        let upstreams: Vec<Arc<Upstream>> = config
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
        let oauth: Vec<_> = upstreams
            .iter()
            .filter_map(|u| {
                let settings = u.config().oauth.clone()?;
                let url = match &u.config().transport {
                    crate::Transport::Http { url } | crate::Transport::Sse { url } => url.clone(),
                    _ => return None,
                };
                Some((u.name().to_owned(), url, settings))
            })
            .collect();
        let sign_ins = (!oauth.is_empty()).then(|| {
            let secret = config.vault_secret.clone().unwrap_or_else(|| {
                tracing::warn!("no key for the token vault (server.state_key): tokens kept by this process do not survive it");
                uuid_like_secret()
            });
            Arc::new(crate::vault::SignIns::new(
                oauth,
                config.public_url.as_deref().unwrap_or("http://127.0.0.1"),
                &secret,
            ))
        });
        let routing = Arc::new((upstreams.clone(), config.separator.clone()));
        let sessions = Arc::new(upstreams.clone());
        let mut builder = App::builder(name, version)
            .title("Wharf gateway")
            .list_changed()
            .logging()
            .resource_subscriptions()
            .completion(Arc::new(move |request| {
                let routing = routing.clone();
                Box::pin(async move { complete(&routing.0, &routing.1, request).await })
            }))
            .on_session_request(Arc::new(move |request, ctx| {
                let upstreams = sessions.clone();
                Box::pin(async move { session_request(&upstreams, request, ctx).await })
            }));
        for c in metrics.collectors() {
            builder = builder.collector(c);
        }
        let facts: Arc<arc_swap::ArcSwap<crate::views::Facts>> = Arc::default();
        let views = Arc::new(config.views);
        let search = config.tool_search;
        if !views.is_empty() || search.enabled {
            let (facts, views, search) = (facts.clone(), views.clone(), search.clone());
            builder = builder.tool_view(Arc::new(move |tool, ctx, seen| {
                let facts = facts.load();
                let f = facts.get(tool.name());
                let callable = views.sees(tool.name(), f, ctx.principal(), ctx.endpoint());
                match seen {
                    Seen::Called => callable,
                    // Tool search lists its own tools and what `always` names.
                    Seen::Listed => {
                        callable
                            && (!search.enabled
                                || f.is_some_and(|f| f.own)
                                || search.always.is_match(tool.name()))
                    }
                }
            }));
        }
        let app = Arc::new(builder.build()?);
        Ok(Self {
            app,
            upstreams,
            separator: config.separator,
            when_unhealthy: config.when_unhealthy,
            pins: crate::pinning::Pins::new(&config.pinning),
            facts,
            views,
            tool_search: search.enabled,
            index: Arc::new(arc_swap::ArcSwap::from_pointee(
                crate::tool_search::ToolIndex::empty(),
            )),
            metrics,
            audit: std::sync::OnceLock::new(),
            args_key: config
                .vault_secret
                .as_deref()
                .map(|secret| Arc::new(crate::pinning::args_key(secret))),
            sign_ins,
            stop: CancellationToken::new(),
        })
    }

    /// Sign-in to the upstreams with `oauth` (the binary serves its pages), if any.
    pub fn sign_ins(&self) -> Option<Arc<crate::vault::SignIns>> {
        self.sign_ins.clone()
    }

    /// Keep users' upstream tokens in `store` (the database) instead of memory.
    pub fn tokens_in(&self, store: Box<dyn crate::vault::TokenStore>) {
        if let Some(s) = &self.sign_ins {
            s.set_store(store);
        }
    }

    /// A user just signed in to `upstream`: list its tools now if they were
    /// not known (nobody had signed in before), and publish them.
    pub async fn signed_in(&self, upstream: &str) {
        let Some(u) = self.upstreams.iter().find(|u| u.name() == upstream) else {
            return;
        };
        self.renew_bearer(u).await;
        if u.check_health().await == Health::Healthy {
            if let Err(e) = u.refresh_lists().await {
                tracing::warn!(upstream, error = %e, "cannot list the upstream's tools");
            }
            self.publish();
        }
    }

    /// An OAuth upstream's shared connection (health checks, lists) carries
    /// the gateway's token, or a signed-in user's.
    async fn renew_bearer(&self, u: &Upstream) {
        if let Some(s) = self.sign_ins.as_ref().filter(|s| s.knows(u.name()))
            && let Some(token) = s.listing_token(u.name()).await
        {
            u.set_bearer(Some(token)).await;
        }
    }

    /// Record every tool call from now on in `sink` (set once, before [`Gateway::start`]).
    pub fn audit_to(&self, sink: Arc<dyn AuditSink>) {
        let _ = self.audit.set(sink);
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Each connected upstream's tools and their definition hashes, for a
    /// lock file; the upstreams that are not connected, by name.
    pub fn tool_hashes(&self) -> (BTreeMap<String, BTreeMap<String, String>>, Vec<String>) {
        let mut hashes = BTreeMap::new();
        let mut missing = Vec::new();
        for u in &self.upstreams {
            if !matches!(u.health(), Health::Healthy) {
                missing.push(u.name().to_owned());
                continue;
            }
            let tools = u
                .lists()
                .tools
                .iter()
                .map(|t| (t.name.to_string(), crate::pinning::definition_hash(t)))
                .collect();
            hashes.insert(u.name().to_owned(), tools);
        }
        (hashes, missing)
    }

    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// The virtual servers' names, each to be served at `/mcp/{name}`.
    pub fn endpoints(&self) -> Vec<String> {
        self.views.endpoints.keys().cloned().collect()
    }

    /// Connect to every upstream at once, list what each offers, publish, and
    /// start the health checks and change listeners. An upstream that is down
    /// is reported and retried by its health check; the gateway starts anyway.
    pub async fn start(self: &Arc<Self>) {
        futures::future::join_all(self.upstreams.iter().map(|u| async move {
            self.renew_bearer(u).await;
            if u.check_health().await == Health::Healthy {
                if let Err(e) = u.refresh_lists().await {
                    tracing::warn!(upstream = u.name(), error = %e, "cannot list the upstream's tools");
                }
                u.listen_for_changes().await;
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
                () = changes.wait() => {
                    tokio::time::sleep(CHANGE_DEBOUNCE).await;
                    true
                }
                _ = tick.tick() => {
                    upstream.sweep_lanes(LANE_IDLE);
                    self.renew_bearer(&upstream).await;
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
            // A connection made again (after a crash, or by a call) is
            // listened to again.
            upstream.listen_for_changes().await;
            if relist {
                self.renew_bearer(&upstream).await;
                let (tools, prompts, resources) = changes.take();
                match upstream.refresh_lists().await {
                    Ok(_) => {
                        let changed = self.publish();
                        // The upstream said a list changed; say so downstream even
                        // when the gateway cannot see the difference (a change in
                        // what a list means, or one already undone).
                        if tools && !changed.tools {
                            self.app.notify(ListChange::Tools);
                        }
                        if prompts && !changed.prompts {
                            self.app.notify(ListChange::Prompts);
                        }
                        if resources && !changed.resources {
                            self.app.notify(ListChange::Resources);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(upstream = upstream.name(), error = %e, "cannot list the upstream's tools")
                    }
                }
            }
        }
    }

    /// Build the offer from every upstream's last lists and swap it in.
    pub fn publish(&self) -> Changed {
        let mut offering = Offering::default();
        let mut uris = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        // Each tool also answers to its upstream's own name (never listed),
        // for the upstream's widget, which calls it so; a name two upstreams
        // share answers to neither.
        let mut own_names: std::collections::HashMap<String, Option<String>> =
            std::collections::HashMap::new();
        let mut facts = crate::views::Facts::new();
        if self.tool_search {
            // First, so that an upstream tool of the same name is the one skipped.
            let app = Arc::downgrade(&self.app);
            for own in [
                crate::tool_search::search_tool(self.index.clone(), app.clone()),
                crate::tool_search::call_tool(app),
            ] {
                names.insert(own.name().to_owned());
                facts.insert(own.name().to_owned(), crate::views::ToolFacts::own());
                offering.tools.push(own);
            }
        }
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
                if let crate::pinning::Verdict::Changed { first } = self.pins.check(u.name(), tool)
                {
                    let hidden = self.pins.on_change == crate::pinning::OnChange::Hide;
                    if first {
                        self.metrics
                            .tool_changes
                            .with_label_values(&[u.name()])
                            .inc();
                        tracing::warn!(
                            upstream = u.name(),
                            tool = %tool.name,
                            hash = crate::pinning::definition_hash(tool),
                            action = if hidden { "hidden" } else { "kept" },
                            "upstream tool definition changed since it was pinned (`wharf gateway lock` pins it again)"
                        );
                    }
                    if hidden {
                        continue;
                    }
                }
                let name = rename(&tool.name);
                if !names.insert(name.clone()) {
                    tracing::warn!(
                        upstream = u.name(),
                        tool = name,
                        "tool name taken by another upstream; skipped"
                    );
                    continue;
                }
                let auth = self.sign_ins.clone().filter(|s| s.knows(u.name()));
                match forward_tool(
                    u,
                    tool,
                    name.clone(),
                    self.audit.get().cloned(),
                    auth,
                    self.args_key.clone(),
                ) {
                    Ok(spec) => {
                        if name != *tool.name {
                            own_names
                                .entry(tool.name.to_string())
                                .and_modify(|seen| *seen = None)
                                .or_insert(Some(name.clone()));
                        }
                        facts.insert(name, crate::views::ToolFacts::of(u.config(), tool));
                        offering.tools.push(spec)
                    }
                    Err(why) => {
                        names.remove(&name);
                        tracing::warn!(upstream = u.name(), tool = %tool.name, error = %why, "upstream tool skipped");
                    }
                }
            }
            // Nobody has signed in to it yet, so its tools are unknown: a tool
            // that gives the caller the link to sign in.
            if lists.tools.is_empty()
                && let Some(s) = self.sign_ins.clone().filter(|s| {
                    matches!(
                        s.grant(u.name()),
                        Some(
                            crate::oauth::Grant::AuthorizationCode
                                | crate::oauth::Grant::TokenExchange
                        )
                    )
                })
            {
                let name = rename("sign_in");
                if names.insert(name.clone()) {
                    facts.insert(
                        name.clone(),
                        crate::views::ToolFacts::of(u.config(), &Tool::default()),
                    );
                    offering.tools.push(sign_in_tool(&name, u.clone(), s));
                }
            }
            for prompt in &lists.prompts {
                let name = rename(&prompt.name);
                let mut renamed = prompt.clone();
                renamed.name = name;
                let original = prompt.name.clone();
                let up = u.clone();
                let auth = self.sign_ins.clone().filter(|_| u.per_user());
                offering
                    .prompts
                    .push(PromptSpec::new(renamed, move |ctx, args| {
                        let (up, auth) = (up.clone(), auth.clone());
                        let params =
                            GetPromptRequestParams::new(original.clone()).with_arguments(args);
                        async move {
                            let ctx = as_caller(&up, auth.as_deref(), ctx)
                                .await
                                .map_err(PromptError::Protocol)?;
                            get_prompt(up, ctx, params)
                                .await
                                .map_err(PromptError::Protocol)
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
                let auth = self.sign_ins.clone().filter(|_| u.per_user());
                offering
                    .resources
                    .push(ResourceSpec::new(resource.clone(), move |ctx, uri| {
                        read(up.clone(), auth.clone(), ctx, uri)
                    }));
            }
            for template in &lists.templates {
                let up = u.clone();
                let auth = self.sign_ins.clone().filter(|_| u.per_user());
                offering
                    .templates
                    .push(TemplateSpec::new(template.clone(), move |ctx, uri, _| {
                        read(up.clone(), auth.clone(), ctx, uri)
                    }));
            }
        }
        offering.aliases = own_names
            .into_iter()
            .filter_map(|(own, published)| Some((own, published?)))
            .collect();
        if self.tool_search {
            let upstream_tools = offering
                .tools
                .iter()
                .filter(|t| facts.get(t.name()).is_some_and(|f| !f.own))
                .map(ToolSpec::definition);
            match crate::tool_search::ToolIndex::build(upstream_tools) {
                Ok(index) => {
                    tracing::debug!(tools = index.len(), "tools indexed for search_tools");
                    self.index.store(Arc::new(index))
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot index the tools for search_tools; the previous index stays")
                }
            }
        }
        // The facts first: a tool published a moment before its facts would
        // be hidden from a view that admits it.
        self.facts.store(Arc::new(facts));
        match self.app.replace_offer(offering) {
            Ok(changed) => {
                tracing::debug!(?changed, "gateway offer published");
                changed
            }
            Err(e) => {
                tracing::error!(error = %e, "gateway offer refused; the previous one stays");
                Changed::default()
            }
        }
    }
}

/// What an upstream answered to a relayed request, once its input rounds are over.
enum Answer {
    Final(Box<ServerResult>),
    /// `input_required` for a caller that answers it itself (2026-07-28).
    AskCaller(rmcp::model::InputRequiredResult),
}

/// Why a relayed request failed.
enum RelayError {
    Upstream(UpstreamError),
    /// The caller's own answer to an input request was an error.
    Caller(ErrorData),
    Unexpected,
    TooManyRounds,
}

impl RelayError {
    /// As a JSON-RPC error: the upstream's own refusal as it came, the rest
    /// saying which upstream and why.
    fn into_error(self, up: &Upstream) -> ErrorData {
        match self {
            Self::Upstream(e) => relayed(e),
            Self::Caller(e) => e,
            Self::Unexpected => ErrorData::internal_error(
                format!(
                    "upstream `{}` answered with an unexpected result type",
                    up.name()
                ),
                None,
            ),
            Self::TooManyRounds => ErrorData::internal_error(
                format!(
                    "upstream `{}` kept asking for input ({MAX_INPUT_ROUNDS} rounds); giving up",
                    up.name()
                ),
                None,
            ),
        }
    }
}

/// Relay one request, driving `input_required` rounds for a legacy caller:
/// `request` builds the request from the current (input responses, request
/// state), which start as the caller's own.
async fn relay_rounds(
    up: &Upstream,
    ctx: &CallContext,
    method: &'static str,
    idempotent: bool,
    request: impl Fn(Option<InputResponses>, Option<String>) -> ClientRequest,
) -> Result<Answer, RelayError> {
    let mut responses = ctx.input_responses().cloned();
    let mut state = ctx.request_state().map(str::to_owned);
    for _ in 0..MAX_INPUT_ROUNDS {
        let result = up
            .relay(
                method,
                idempotent,
                || request(responses.clone(), state.clone()),
                ctx,
            )
            .await
            .map_err(RelayError::Upstream)?;
        let ServerResult::InputRequiredResult(asked) = result else {
            return Ok(Answer::Final(Box::new(result)));
        };
        let Some(client) = legacy_client(ctx) else {
            return Ok(Answer::AskCaller(asked));
        };
        responses = Some(
            fulfil(client, asked.input_requests.unwrap_or_default())
                .await
                .map_err(RelayError::Caller)?,
        );
        state = asked.request_state;
    }
    Err(RelayError::TooManyRounds)
}

/// `ctx` carrying the caller's own token for a per-user upstream (`auth`),
/// for a request other than a tool call (a resource, a prompt): no token is a
/// JSON-RPC error saying where to sign in.
async fn as_caller(
    up: &Upstream,
    auth: Option<&crate::vault::SignIns>,
    ctx: CallContext,
) -> Result<CallContext, ErrorData> {
    let Some(sign_ins) = auth else {
        return Ok(ctx);
    };
    let subject = ctx.principal().map(|p| p.subject.clone());
    match sign_ins
        .token_for(up.name(), subject.as_deref(), ctx.caller_token())
        .await
    {
        Ok(token) => Ok(user_context(sign_ins, up, ctx, subject, token).await),
        Err(crate::vault::NoToken::SignIn(link)) => Err(ErrorData::invalid_request(
            format!("connect your {} account first: {link}", up.name()),
            None,
        )),
        Err(crate::vault::NoToken::Failed(why)) => Err(ErrorData::invalid_request(why, None)),
    }
}

async fn read(
    up: Arc<Upstream>,
    auth: Option<Arc<crate::vault::SignIns>>,
    ctx: CallContext,
    uri: String,
) -> Result<ReadResourceResponse, ResourceError> {
    let ctx = as_caller(&up, auth.as_deref(), ctx)
        .await
        .map_err(ResourceError::Protocol)?;
    let answer = relay_rounds(&up, &ctx, "resources/read", true, |responses, state| {
        let mut p = ReadResourceRequestParams::new(uri.clone());
        p.input_responses = responses;
        p.request_state = state;
        ClientRequest::ReadResourceRequest(ReadResourceRequest::new(p))
    })
    .await;
    match answer {
        Ok(Answer::Final(r)) => match *r {
            ServerResult::ReadResourceResult(r) => Ok(ReadResourceResponse::Complete(r)),
            _ => Err(ResourceError::Protocol(
                RelayError::Unexpected.into_error(&up),
            )),
        },
        Ok(Answer::AskCaller(r)) => Ok(ReadResourceResponse::InputRequired(r)),
        Err(e) => Err(ResourceError::Protocol(e.into_error(&up))),
    }
}

async fn get_prompt(
    up: Arc<Upstream>,
    ctx: CallContext,
    params: GetPromptRequestParams,
) -> Result<GetPromptResponse, ErrorData> {
    let answer = relay_rounds(&up, &ctx, "prompts/get", true, |responses, state| {
        let mut p = params.clone();
        p.input_responses = responses;
        p.request_state = state;
        ClientRequest::GetPromptRequest(GetPromptRequest::new(p))
    })
    .await;
    match answer {
        Ok(Answer::Final(r)) => match *r {
            ServerResult::GetPromptResult(r) => Ok(GetPromptResponse::Complete(r)),
            _ => Err(RelayError::Unexpected.into_error(&up)),
        },
        Ok(Answer::AskCaller(r)) => Ok(GetPromptResponse::InputRequired(r)),
        Err(e) => Err(e.into_error(&up)),
    }
}

async fn call_tool(
    up: Arc<Upstream>,
    ctx: CallContext,
    idempotent: bool,
    params: CallToolRequestParams,
) -> Result<CallToolResponse, ToolError> {
    let answer = relay_rounds(&up, &ctx, "tools/call", idempotent, |responses, state| {
        let mut p = params.clone();
        p.input_responses = responses;
        p.request_state = state;
        ClientRequest::CallToolRequest(CallToolRequest::new(p))
    })
    .await;
    match answer {
        Ok(Answer::Final(r)) => match *r {
            ServerResult::CallToolResult(r) => Ok(CallToolResponse::Complete(r)),
            ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
            _ => Err(ToolError::Protocol(RelayError::Unexpected.into_error(&up))),
        },
        Ok(Answer::AskCaller(r)) => Ok(CallToolResponse::InputRequired(r)),
        // The upstream is down or slow: a tool error the model can read.
        Err(RelayError::Upstream(e)) if !matches!(e, UpstreamError::Remote { .. }) => {
            Err(ToolError::Upstream(e.to_string()))
        }
        Err(e) => Err(ToolError::Protocol(e.into_error(&up))),
    }
}

/// A legacy session's `logging/setLevel` goes to every upstream it has a lane
/// to; `resources/(un)subscribe` to the upstream that offers the resource.
async fn session_request(
    upstreams: &[Arc<Upstream>],
    request: SessionRequest,
    ctx: CallContext,
) -> Result<(), ErrorData> {
    let uri = match &request {
        SessionRequest::SetLevel(_) => {
            for u in upstreams {
                if let Err(e) = u.session_request(&request, &ctx).await {
                    tracing::warn!(upstream = u.name(), error = %e, "log level not passed on");
                }
            }
            return Ok(());
        }
        SessionRequest::Subscribe(uri) | SessionRequest::Unsubscribe(uri) => uri,
    };
    let owner = upstreams.iter().find(|u| {
        let lists = u.lists();
        lists.resources.iter().any(|r| &r.uri == uri)
            || lists.templates.iter().any(|t| {
                UriTemplate::parse(&t.uri_template).is_ok_and(|t| t.matches(uri).is_some())
            })
    });
    let Some(up) = owner else {
        return Err(ErrorData::invalid_params(
            format!(
                "no upstream offers the resource `{uri}`; list resources to see the URIs there are"
            ),
            Some(serde_json::json!({ "uri": uri })),
        ));
    };
    up.session_request(&request, &ctx).await.map_err(relayed)
}

/// `completion/complete`: find the upstream that owns the prompt (by its
/// published name) or the resource template (by its URI template), and ask it.
async fn complete(
    upstreams: &[Arc<Upstream>],
    separator: &str,
    mut request: CompleteRequestParams,
) -> Result<Vec<String>, ErrorData> {
    let owner = upstreams.iter().find_map(|u| {
        let lists = u.lists();
        match &request.r#ref {
            Reference::Prompt(p) => {
                let ns = &u.config().namespace;
                let original = if ns.is_empty() {
                    Some(p.name.as_str())
                } else {
                    p.name
                        .strip_prefix(ns.as_str())
                        .and_then(|rest| rest.strip_prefix(separator))
                }?;
                lists
                    .prompts
                    .iter()
                    .any(|x| x.name == original)
                    .then(|| (u.clone(), Some(original.to_owned())))
            }
            Reference::Resource(r) => lists
                .templates
                .iter()
                .any(|t| t.uri_template == r.uri)
                .then(|| (u.clone(), None)),
            _ => None,
        }
    });
    let Some((up, original)) = owner else {
        return Ok(Vec::new());
    };
    // A completion request names no caller: a per-user upstream is not asked.
    if up.per_user() {
        return Ok(Vec::new());
    }
    if let (Some(name), Reference::Prompt(p)) = (original, &mut request.r#ref) {
        p.name = name;
    }
    let result = up
        .call("completion/complete", true, |c| {
            let r = request.clone();
            async move {
                match c
                    .send_request(ClientRequest::CompleteRequest(CompleteRequest::new(r)))
                    .await?
                {
                    ServerResult::CompleteResult(r) => Ok(r),
                    _ => Err(rmcp::service::ServiceError::UnexpectedResponse),
                }
            }
        })
        .await
        .map_err(relayed)?;
    Ok(result.completion.values)
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

/// One call's audit record until the call ends; a call whose future is
/// dropped first (the tool timeout, its caller gone) is recorded `abandoned`.
struct PendingRecord {
    audit: Arc<dyn AuditSink>,
    started: tokio::time::Instant,
    record: Option<wharf_core::AuditRecord>,
}

impl PendingRecord {
    fn finish(&mut self, outcome: &str) {
        if let Some(mut r) = self.record.take() {
            r.outcome = outcome.to_owned();
            r.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            self.audit.record(r);
        }
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        self.finish("abandoned");
    }
}

/// `{namespace}_sign_in`: the link that signs the caller in to `upstream`
/// (or, for token exchange, the caller's token exchanged now, and the
/// upstream listed with it).
fn sign_in_tool(name: &str, up: Arc<Upstream>, sign_ins: Arc<crate::vault::SignIns>) -> ToolSpec {
    let upstream = up.name().to_owned();
    ToolSpec::new(name)
        .title(format!("Sign in to {upstream}"))
        .description(
            if sign_ins.grant(&upstream) == Some(crate::oauth::Grant::TokenExchange) {
                format!("Use this before using {upstream}'s tools: it connects you to {upstream} with your own identity and lists its tools.")
            } else {
                format!("Use this before using {upstream}'s tools: it gives the link where the user connects their {upstream} account to this gateway. Show the link to the user.")
            },
        )
        .read_only()
        .handler(move |ctx: CallContext, _args: rmcp::model::JsonObject| {
            let (sign_ins, upstream, up) = (sign_ins.clone(), upstream.clone(), up.clone());
            async move {
                if sign_ins.grant(&upstream) == Some(crate::oauth::Grant::TokenExchange) {
                    let who = ctx.principal().map(|p| p.subject.clone());
                    return match sign_ins
                        .token_for(&upstream, who.as_deref(), ctx.caller_token())
                        .await
                    {
                        Ok(_) => {
                            // Listed again, with this token (the watch re-lists on an announcement).
                            up.changes().announce(None);
                            Ok(wharf_core::text_result(format!(
                                "Connected to {upstream} with your own identity; its tools are being listed (list the tools again in a moment)."
                            )))
                        }
                        Err(
                            crate::vault::NoToken::Failed(why) | crate::vault::NoToken::SignIn(why),
                        ) => Err(ToolError::Upstream(why)),
                    };
                }
                let Some(who) = ctx.principal() else {
                    return Err(ToolError::Failed(format!(
                        "{upstream} needs each user's own sign-in, and this gateway does not know who you are: call it with an API key or an OAuth token"
                    )));
                };
                let link = sign_ins.link(&upstream, &who.subject);
                Ok(wharf_core::text_result(format!(
                    "Open this link to connect your {upstream} account (valid for 10 minutes): {link}"
                )))
            }
        })
}

/// Not a key: an unguessable secret for a vault whose tokens die with the process.
fn uuid_like_secret() -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    bytes
}

/// What a call to an OAuth upstream can go on with.
enum Credentials {
    /// `ctx` as the call continues with it.
    Ready(CallContext),
    /// Answer this instead: an input round asking the caller to sign in.
    Ask(CallToolResponse),
}

/// How long a legacy caller who accepted to sign in is waited for.
const SIGN_IN_WAIT: Duration = Duration::from_secs(180);

/// The caller's credentials for an OAuth upstream: `ctx` carrying their own
/// token (sign-in), or the shared connection given the gateway's (client
/// credentials). No token yet: a client that opens URLs (URL-mode
/// elicitation) is asked to sign in (a 2025-x session with `elicitation/create`,
/// the call going on once the user has; a 2026-07-28 caller with an input
/// round, the retry going on); any other gets a tool error with the link.
async fn with_credentials(
    up: &Upstream,
    published: &str,
    sign_ins: &crate::vault::SignIns,
    ctx: CallContext,
) -> Result<Credentials, ToolError> {
    use crate::vault::NoToken;
    let subject = ctx.principal().map(|p| p.subject.clone());
    let token = sign_ins
        .token_for(up.name(), subject.as_deref(), ctx.caller_token())
        .await;
    let token = match token {
        Ok(t) => t,
        Err(NoToken::SignIn(link)) => {
            let message = format!(
                "Connect your {} account to use `{published}` (the page says which gateway user it links).",
                up.name()
            );
            let opens_urls = ctx
                .client_capabilities()
                .and_then(|c| c.elicitation)
                .is_some_and(|e| e.url.is_some());
            if opens_urls {
                match crate::relay::legacy_client(&ctx) {
                    None => return Ok(Credentials::Ask(sign_in_round(&message, &link))),
                    Some(peer) => {
                        if let Some(token) = ask_to_sign_in(
                            peer,
                            sign_ins,
                            up.name(),
                            subject.as_deref(),
                            &message,
                            &link,
                        )
                        .await
                        {
                            return Ok(Credentials::Ready(
                                user_context(sign_ins, up, ctx, subject, token).await,
                            ));
                        }
                    }
                }
            }
            return Err(ToolError::Failed(format!(
                "To use `{published}`, the user must first connect their {} account: show them this link (valid for 10 minutes): {link} , then call the tool again.",
                up.name()
            )));
        }
        Err(NoToken::Failed(why)) => return Err(ToolError::Upstream(why)),
    };
    // The answer to the gateway's own sign-in round is the gateway's, not the
    // upstream's: it is not passed on with the retry.
    let ctx = match ctx.input_responses() {
        Some(r) if r.contains_key(SIGN_IN_ROUND) => {
            let mut responses = r.clone();
            responses.remove(SIGN_IN_ROUND);
            let state = ctx.request_state().map(String::from);
            ctx.with_retry(Some(responses).filter(|r| !r.is_empty()), state)
        }
        _ => ctx,
    };
    Ok(Credentials::Ready(
        user_context(sign_ins, up, ctx, subject, token).await,
    ))
}

/// The key of the gateway's own sign-in request in an input round.
const SIGN_IN_ROUND: &str = "sign_in";

/// A 2026-07-28 input round: open `link` (URL-mode elicitation); the retry
/// finds the token kept.
fn sign_in_round(message: &str, link: &str) -> CallToolResponse {
    let round = serde_json::json!({
        "resultType": "input_required",
        "inputRequests": {
            SIGN_IN_ROUND: {
                "method": "elicitation/create",
                "params": {"mode": "url", "message": message, "url": link}
            }
        }
    });
    match serde_json::from_value(round) {
        Ok(r) => CallToolResponse::InputRequired(r),
        // Not expected (the shape is fixed): the link as text, still usable.
        Err(e) => {
            let mut r = wharf_core::text_result(format!("{message} {link} ({e})"));
            r.is_error = Some(true);
            CallToolResponse::Complete(r)
        }
    }
}

/// Ask a legacy caller to open `link`; if they accept, wait (up to
/// [`SIGN_IN_WAIT`]) for the sign-in to finish: the token, once kept.
async fn ask_to_sign_in(
    peer: &rmcp::Peer<rmcp::RoleServer>,
    sign_ins: &crate::vault::SignIns,
    upstream: &str,
    subject: Option<&str>,
    message: &str,
    link: &str,
) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    let id = format!("sign-in-{upstream}-{}", wharf_core::now_ms());
    let answer = peer
        .elicit_url_with_timeout(message.to_owned(), url, id, Some(SIGN_IN_WAIT))
        .await;
    if !matches!(answer, Ok(rmcp::model::ElicitationAction::Accept)) {
        return None;
    }
    let until = tokio::time::Instant::now() + SIGN_IN_WAIT;
    while tokio::time::Instant::now() < until {
        if let Ok(token) = sign_ins.token_for(upstream, subject, None).await {
            return Some(token);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// `ctx` with the caller's token for `up` (or, for client credentials, the
/// shared connection given the gateway's).
async fn user_context(
    sign_ins: &crate::vault::SignIns,
    up: &Upstream,
    ctx: CallContext,
    subject: Option<String>,
    token: String,
) -> CallContext {
    match sign_ins.grant(up.name()) {
        Some(crate::oauth::Grant::ClientCredentials) => {
            up.set_bearer(Some(token)).await;
            ctx
        }
        _ => ctx.with_extension(crate::upstream::UserBearer {
            subject: subject.unwrap_or_default(),
            token,
        }),
    }
}

/// A tool of `upstream`, published as `name`. Its schema is checked here so one
/// upstream's bad tool is skipped instead of refusing the whole offer.
fn forward_tool(
    upstream: &Arc<Upstream>,
    tool: &Tool,
    name: String,
    audit: Option<Arc<dyn AuditSink>>,
    auth: Option<Arc<crate::vault::SignIns>>,
    args_key: Option<Arc<ring::hmac::Key>>,
) -> Result<ToolSpec, wharf_core::Problem> {
    ArgumentValidator::new(&tool.input_schema)?;
    let idempotent = crate::error::safe_to_repeat(tool);
    let original = tool.name.clone();
    let mut renamed = tool.clone();
    let published: Arc<str> = Arc::from(name.as_str());
    renamed.name = name.into();
    let up = upstream.clone();
    Ok(
        ToolSpec::from_definition(renamed).handler(move |ctx: CallContext, args| {
            let (up, audit, published) = (up.clone(), audit.clone(), published.clone());
            let auth = auth.clone();
            let args_key = args_key.clone();
            let args_hash = audit.as_ref().map(|_| {
                crate::pinning::keyed_hash(
                    args_key.as_deref(),
                    &serde_json::Value::Object(args.clone()),
                )
            });
            let params = CallToolRequestParams::new(original.clone()).with_arguments(args);
            async move {
                let relay = async |ctx: CallContext| {
                    let ctx = match &auth {
                        Some(auth) => match with_credentials(&up, &published, auth, ctx).await? {
                            Credentials::Ready(ctx) => ctx,
                            Credentials::Ask(round) => return Ok(round),
                        },
                        None => ctx,
                    };
                    call_tool(up.clone(), ctx, idempotent, params).await
                };
                let Some((audit, args_hash)) = audit.zip(args_hash) else {
                    return relay(ctx).await;
                };
                // Recorded when the call ends, or, if its future is dropped (the
                // tool timeout, the caller gone), as `abandoned` then.
                let mut pending = PendingRecord {
                    audit,
                    started: tokio::time::Instant::now(),
                    record: Some(wharf_core::AuditRecord {
                        at_ms: wharf_core::now_ms(),
                        call_id: ctx.call_id().to_owned(),
                        subject: ctx
                            .principal()
                            .map(|p| p.subject.clone())
                            .unwrap_or_default(),
                        tool: published.to_string(),
                        upstream: up.name().to_owned(),
                        outcome: String::new(),
                        latency_ms: 0.0,
                        args_hash,
                        endpoint: ctx.endpoint().map(String::from),
                    }),
                };
                let outcome = relay(ctx).await;
                pending.finish(match &outcome {
                    Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "tool_error",
                    Ok(CallToolResponse::Complete(_)) => "ok",
                    Ok(CallToolResponse::InputRequired(_)) => "input_required",
                    Ok(_) => "task",
                    Err(e) => e.class(),
                });
                outcome
            }
        }),
    )
}

#[cfg(test)]
mod pending_tests {
    use super::*;

    #[derive(Default)]
    struct Kept(std::sync::Mutex<Vec<wharf_core::AuditRecord>>);

    impl AuditSink for Kept {
        fn record(&self, record: wharf_core::AuditRecord) {
            wharf_core::sync::lock(&self.0).push(record);
        }
    }

    fn pending(kept: &Arc<Kept>) -> PendingRecord {
        PendingRecord {
            audit: kept.clone(),
            started: tokio::time::Instant::now(),
            record: Some(wharf_core::AuditRecord {
                at_ms: 1,
                call_id: "c".into(),
                subject: "key:ci".into(),
                tool: "a_add".into(),
                upstream: "a".into(),
                outcome: String::new(),
                latency_ms: 0.0,
                args_hash: "sha256:00".into(),
                endpoint: None,
            }),
        }
    }

    #[tokio::test]
    async fn a_call_ended_is_recorded_once_and_one_dropped_is_recorded_abandoned() {
        let kept = Arc::new(Kept::default());
        let mut p = pending(&kept);
        p.finish("ok");
        drop(p);
        // A call whose future is dropped mid-way (the tool timeout, the caller gone).
        let call = async {
            let _p = pending(&kept);
            std::future::pending::<()>().await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), call).await;
        let outcomes: Vec<String> = wharf_core::sync::lock(&kept.0)
            .iter()
            .map(|r| r.outcome.clone())
            .collect();
        assert_eq!(outcomes, ["ok", "abandoned"]);
    }
}
