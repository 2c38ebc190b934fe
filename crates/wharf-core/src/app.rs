//! The registry of what a server offers, and the one path every tool call takes.
//!
//! `App::call_tool` is shared by every transport: it finds the tool, validates the
//! arguments against the published schema, runs the handler under its timeout and
//! writes one log line with the call id, tool, outcome and latency.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;

use futures::FutureExt;
use rmcp::model::{
    CallToolResponse, CompleteRequestParams, Implementation, JsonObject, ServerCapabilities,
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    context::CallContext,
    error::{AppError, ToolError},
    offer::{Changed, Offer, Offering},
    prompt::PromptSpec,
    resource::{ResourceSpec, TemplateSpec},
    tool::ToolSpec,
};

/// Suggests values for a prompt or resource-template argument (`completion/complete`).
/// Asynchronous, so a gateway can ask its upstream.
pub type CompletionFn = Arc<
    dyn Fn(
            CompleteRequestParams,
        ) -> futures::future::BoxFuture<'static, Result<Vec<String>, rmcp::ErrorData>>
        + Send
        + Sync,
>;

/// What a legacy session asks once and the server keeps for the rest of it:
/// `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`.
#[allow(deprecated)] // logging is deprecated in 2026-07-28; legacy sessions still set a level
#[derive(Debug, Clone, PartialEq)]
pub enum SessionRequest {
    SetLevel(rmcp::model::LoggingLevel),
    Subscribe(String),
    Unsubscribe(String),
}

/// Sees every [`SessionRequest`] before it is accepted (a gateway passes them
/// on to the server that owns the resource); an error refuses the request.
pub type SessionRequestFn = Arc<
    dyn Fn(
            SessionRequest,
            CallContext,
        ) -> futures::future::BoxFuture<'static, Result<(), rmcp::ErrorData>>
        + Send
        + Sync,
>;

/// Whether the caller of `ctx` may see `tool` in `tools/list` ([`Seen::Listed`])
/// or call it ([`Seen::Called`]): a gateway's tool views, by caller and by
/// endpoint. A call to a tool the caller may not call is answered as an
/// unknown tool; a tool may be callable and still left out of the list (tool
/// search publishes only its own tools and finds the rest).
pub type ToolViewFn = Arc<dyn Fn(&ToolSpec, &CallContext, Seen) -> bool + Send + Sync>;

/// What a [`ToolViewFn`] is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Listed,
    Called,
}

/// A change that clients listening for notifications should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    Tools,
    Prompts,
    Resources,
    ResourceUpdated(String),
}

/// Announces list changes to every listening client. Cloned out of the builder
/// ([`AppBuilder::notifier`]) so that tools can announce changes to their own app.
#[derive(Debug, Clone)]
pub struct Notifier(tokio::sync::broadcast::Sender<ListChange>);

impl Notifier {
    pub fn notify(&self, change: ListChange) {
        // An error only means nobody is listening.
        let _ = self.0.send(change);
    }
}

/// Changes buffered per listener before a slow one starts missing some; a missed
/// list change only means the client lists again a little later.
const CHANGE_BUFFER: usize = 64;

/// Everything a server offers. Cheap to share: wrap it in an `Arc`.
pub struct App {
    pub(crate) info: Implementation,
    pub(crate) instructions: Option<String>,
    offer: ArcSwap<Offer>,
    pub(crate) completion: Option<CompletionFn>,
    pub(crate) session_requests: Option<SessionRequestFn>,
    view: Option<ToolViewFn>,
    pub(crate) logging: bool,
    pub(crate) subscriptions: bool,
    pub(crate) list_changed: bool,
    default_timeout: Option<Duration>,
    max_result_bytes: Option<usize>,
    changes: Notifier,
    registry: prometheus::Registry,
    metrics: crate::metrics::ToolMetrics,
    /// Seals `requestState`: `server.state_key`, or a random key of this process's.
    state_seal: ArcSwap<crate::request_state::StateSeal>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.info.name)
            .field("offer", &*self.offer.load())
            .finish()
    }
}

impl App {
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> AppBuilder {
        AppBuilder {
            info: Implementation::new(name.into(), version.into()),
            instructions: None,
            tools: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            completion: None,
            session_requests: None,
            view: None,
            logging: false,
            subscriptions: false,
            list_changed: false,
            default_timeout: None,
            max_result_bytes: Some(DEFAULT_MAX_RESULT_BYTES),
            changes: Notifier(tokio::sync::broadcast::channel(CHANGE_BUFFER).0),
            errors: Vec::new(),
            collectors: Vec::new(),
        }
    }

    /// The app's metrics (tool calls, and what was added with
    /// [`AppBuilder::collector`]), named `wharf_*`; the HTTP side serves them.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Seal `requestState` with `key` (at least 32 bytes), so a multi-round
    /// call may continue on any replica that has the same key.
    pub fn use_state_key(&self, key: &[u8]) -> Result<(), crate::StateKeyError> {
        let seal = crate::request_state::StateSeal::with_key(key)?;
        self.state_seal.store(Arc::new(seal));
        Ok(())
    }

    /// The seal handlers' `requestState` goes through.
    pub(crate) fn state_seal(&self) -> crate::request_state::StateSeal {
        (**self.state_seal.load()).clone()
    }

    /// Tell every listening client (2026-07-28 `subscriptions/listen` streams and
    /// legacy sessions) that something changed.
    pub fn notify(&self, change: ListChange) {
        self.changes.notify(change);
    }

    /// Receive changes as [`App::notify`] announces them.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<ListChange> {
        self.changes.0.subscribe()
    }

    pub fn info(&self) -> &Implementation {
        &self.info
    }

    /// What the app offers now. Hold it for the span of one request: a later
    /// [`App::replace_offer`] does not change it under you.
    pub fn offer(&self) -> Arc<Offer> {
        self.offer.load_full()
    }

    /// Swap in a new offer (a gateway whose upstreams changed) and announce the
    /// lists that differ. Calls in flight finish on the offer they started with.
    /// The app must have been built with [`AppBuilder::list_changed`] for clients
    /// to hear about it.
    pub fn replace_offer(&self, parts: Offering) -> Result<Changed, AppError> {
        let next = Arc::new(Offer::check(parts, false)?);
        let before = self.offer.swap(next.clone());
        let changed = next.changed_from(&before);
        if changed.tools {
            self.notify(ListChange::Tools);
        }
        if changed.resources {
            self.notify(ListChange::Resources);
        }
        if changed.prompts {
            self.notify(ListChange::Prompts);
        }
        Ok(changed)
    }

    /// The capabilities this app's contents call for.
    pub fn capabilities(&self) -> ServerCapabilities {
        let mut caps = ServerCapabilities::default();
        let offer = self.offer.load();
        let list_changed = self.list_changed.then_some(true);
        if !offer.tools.is_empty() || self.list_changed {
            let mut t: rmcp::model::ToolsCapability = Default::default();
            t.list_changed = list_changed;
            caps.tools = Some(t);
        }
        if !offer.is_empty_of_resources() || self.list_changed {
            let mut r: rmcp::model::ResourcesCapability = Default::default();
            if self.subscriptions {
                r.subscribe = Some(true);
            }
            r.list_changed = list_changed;
            caps.resources = Some(r);
        }
        if offer.prompts().next().is_some() || self.list_changed {
            let mut p: rmcp::model::PromptsCapability = Default::default();
            p.list_changed = list_changed;
            caps.prompts = Some(p);
        }
        if self.completion.is_some() {
            caps.completions = Some(JsonObject::new());
        }
        if self.logging {
            caps.logging = Some(JsonObject::new());
        }
        caps
    }

    /// The tool named `name` in the offer current now, looked up once: a
    /// transport that must know the tool before the call (for its log line, its
    /// rate limit, its headers) resolves it here and hands it to [`App::call`].
    pub fn resolve(&self, name: &str) -> Option<ResolvedTool> {
        let offer = self.offer.load_full();
        let index = offer.index_of(name)?;
        Some(ResolvedTool { offer, index })
    }

    /// Whether the caller of `ctx` may call `tool` (always, without a view).
    pub fn sees(&self, tool: &ToolSpec, ctx: &CallContext) -> bool {
        self.view
            .as_ref()
            .is_none_or(|view| view(tool, ctx, Seen::Called))
    }

    /// The definitions of the tools listed to the caller of `ctx`, in order.
    pub fn listed_tools(&self, ctx: &CallContext) -> Vec<rmcp::model::Tool> {
        self.offer()
            .tools()
            .filter(|t| {
                self.view
                    .as_ref()
                    .is_none_or(|view| view(t, ctx, Seen::Listed))
            })
            .map(|t| t.definition().clone())
            .collect()
    }

    /// Validate and run one tool call by name. Every transport calls this, or
    /// [`App::call`] with a tool it resolved.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: CallContext,
    ) -> Result<CallToolResponse, ToolError> {
        match self.resolve(name) {
            Some(tool) => self.call(tool, arguments, ctx).await,
            None => {
                let outcome = Err(ToolError::UnknownTool(
                    crate::untrusted::shown(name).into_owned(),
                ));
                let facts = CallFacts::of(&ctx);
                let none = tracing::Span::none();
                self.log_call(None, &facts, 0, Instant::now(), &none, &outcome);
                outcome
            }
        }
    }

    /// Validate and run a call of `tool`: check the caller's credentials
    /// against the tool's security, validate the arguments against its schema,
    /// run the handler under its timeout (a panic in it is an internal error,
    /// not the end of the process), cap the result's size, and write one log line.
    pub async fn call(
        &self,
        tool: ResolvedTool,
        arguments: JsonObject,
        ctx: CallContext,
    ) -> Result<CallToolResponse, ToolError> {
        let started = Instant::now();
        let arg_bytes = serialized_len(&arguments);
        // A span only when the transport traces this request: none is made otherwise.
        let span = match ctx.trace_parent() {
            Some(parent) => tracing::info_span!(
                parent: parent,
                "tool call",
                otel.name = format!("tools/call {}", tool.name()),
                mcp.tool.name = tool.name(),
                mcp.call_id = ctx.call_id(),
                otel.status_code = tracing::field::Empty,
            ),
            None => tracing::Span::none(),
        };
        let facts = CallFacts::of(&ctx);
        let outcome = self
            .run_tool(&tool, arguments, ctx)
            .instrument(span.clone())
            .await
            .and_then(|r| self.within_size(r));
        self.log_call(
            Some(tool.name()),
            &facts,
            arg_bytes,
            started,
            &span,
            &outcome,
        );
        outcome
    }

    /// One metric observation and one log line per call. `tool` is `None` for
    /// an unknown tool: metric labels and log fields only ever carry a
    /// registered tool's name (an unknown one is in the error, bounded).
    fn log_call(
        &self,
        tool: Option<&str>,
        facts: &CallFacts,
        arg_bytes: usize,
        started: Instant,
        span: &tracing::Span,
        outcome: &Result<CallToolResponse, ToolError>,
    ) {
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let tool = tool.unwrap_or("-");
        let label = match outcome {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "tool_error",
            Ok(_) => "ok",
            Err(e) => e.class(),
        };
        self.metrics.observe(tool, label, elapsed.as_secs_f64());
        if label != "ok" {
            span.record("otel.status_code", "ERROR");
        }
        let CallFacts {
            call_id,
            subject,
            client,
            rpc_id,
        } = facts;
        let (call_id, subject, client, rpc_id) = (
            call_id.as_str(),
            subject.as_deref().unwrap_or("-"),
            client.as_deref().unwrap_or("-"),
            rpc_id.as_deref().unwrap_or("-"),
        );
        macro_rules! line {
            ($level:ident, $($extra:tt)*) => {
                tracing::$level!(
                    parent: span,
                    call_id, rpc_id, tool, subject, client, arg_bytes,
                    outcome = label, elapsed_ms, $($extra)*
                )
            };
        }
        match outcome {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                line!(warn, error = error_text(r), "tool call")
            }
            Ok(r) => {
                line!(info, "tool call");
                if let CallToolResponse::Complete(r) = r
                    && let Some(sc) = &r.structured_content
                {
                    let bytes = serialized_len(sc);
                    if bytes > crate::submission::STRUCTURED_CONTENT_BUDGET {
                        tracing::warn!(
                            call_id,
                            tool,
                            bytes,
                            budget = crate::submission::STRUCTURED_CONTENT_BUDGET,
                            "structured content over budget: the model and the widget receive all of it; page it or move bulk data to _meta"
                        );
                    }
                }
            }
            Err(ToolError::Internal(e)) => line!(error, error = %e, "tool call failed"),
            Err(e) => line!(warn, error = %e, "tool call"),
        }
    }

    /// A result larger than `max_result_bytes` becomes a tool error the model can
    /// act on: it never reaches the client, whose context it would flood.
    fn within_size(&self, response: CallToolResponse) -> Result<CallToolResponse, ToolError> {
        let (Some(limit), CallToolResponse::Complete(r)) = (self.max_result_bytes, &response)
        else {
            return Ok(response);
        };
        let content: usize = r.content.iter().map(serialized_len).sum();
        let bytes = content + r.structured_content.as_ref().map_or(0, serialized_len);
        if bytes > limit {
            return Err(ToolError::Failed(format!(
                "the result is {bytes} bytes, above this server's limit of {limit} (server.max_result_bytes); ask for less: a smaller limit, a narrower query, or the next page"
            )));
        }
        Ok(response)
    }

    async fn run_tool(
        &self,
        resolved: &ResolvedTool,
        arguments: JsonObject,
        ctx: CallContext,
    ) -> Result<CallToolResponse, ToolError> {
        let tool = resolved.registered();
        let name = tool.spec.name();
        if !self.sees(&tool.spec, &ctx) {
            return Err(ToolError::UnknownTool(name.to_owned()));
        }
        if let Err(scopes) = crate::principal::check(&tool.spec.security, ctx.principal()) {
            let who = ctx.principal();
            return Err(ToolError::AuthRequired {
                message: match who {
                    Some(_) => format!(
                        "`{name}` needs the scope(s) {}; sign in again granting them",
                        scopes.join(" ")
                    ),
                    None => format!("`{name}` needs you to sign in first"),
                },
                www_authenticate: crate::principal::www_authenticate(
                    ctx.auth_challenge(),
                    who,
                    &scopes,
                ),
            });
        }
        tool.validator
            .validate(&arguments)
            .map_err(ToolError::InvalidArguments)?;
        // A panic in a handler ends its call, not the process: it is caught
        // here, on the one path every call takes, and answered as internal.
        let ctx = ctx.with_seal(self.state_seal());
        let run = std::panic::AssertUnwindSafe((tool.spec.handler)(ctx, arguments))
            .catch_unwind()
            .map(|outcome| {
                outcome.unwrap_or_else(|panic| Err(ToolError::internal(Panicked::from(panic))))
            });
        match tool.spec.timeout.or(self.default_timeout) {
            Some(limit) => tokio::time::timeout(limit, run)
                .await
                .unwrap_or(Err(ToolError::Timeout(limit))),
            None => run.await,
        }
    }
}

/// A tool handler panicked; the panic's message, for the log line.
#[derive(Debug, thiserror::Error)]
#[error("the tool's handler panicked: {0}")]
struct Panicked(String);

impl From<Box<dyn std::any::Any + Send>> for Panicked {
    fn from(panic: Box<dyn std::any::Any + Send>) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        Self(message)
    }
}

/// Who called, from where, and the call's ids: what the log line says about
/// the caller (the subject, never a credential).
struct CallFacts {
    call_id: String,
    subject: Option<String>,
    client: Option<String>,
    rpc_id: Option<String>,
}

impl CallFacts {
    fn of(ctx: &CallContext) -> Self {
        Self {
            call_id: ctx.call_id().to_owned(),
            subject: ctx.principal().map(|p| p.subject.clone()),
            client: ctx.client().map(|c| c.to_string()),
            rpc_id: ctx
                .rpc_id()
                .map(|id| crate::untrusted::shown(&id.to_string()).into_owned()),
        }
    }
}

/// A tool looked up once, in the offer current when it was: the call runs on
/// that offer even if the app's offer is replaced meanwhile.
#[derive(Clone)]
pub struct ResolvedTool {
    offer: Arc<Offer>,
    index: usize,
}

impl std::fmt::Debug for ResolvedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResolvedTool").field(&self.name()).finish()
    }
}

impl ResolvedTool {
    pub fn name(&self) -> &str {
        self.spec().name()
    }

    pub fn spec(&self) -> &ToolSpec {
        &self.registered().spec
    }

    /// Whether its schema asks clients to mirror arguments in `Mcp-Param-*`
    /// headers (which the server must then check against the body).
    pub fn mirrors_arguments_in_headers(&self) -> bool {
        self.registered().param_headers
    }

    fn registered(&self) -> &crate::offer::RegisteredTool {
        self.offer.registered_at(self.index)
    }
}

/// The default cap on one tool result: far above any answer a model can use,
/// low enough that a runaway handler cannot flood a client.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Collects tools, resources and prompts; `build` checks them.
pub struct AppBuilder {
    info: Implementation,
    instructions: Option<String>,
    tools: Vec<ToolSpec>,
    resources: Vec<ResourceSpec>,
    templates: Vec<TemplateSpec>,
    prompts: Vec<PromptSpec>,
    completion: Option<CompletionFn>,
    session_requests: Option<SessionRequestFn>,
    view: Option<ToolViewFn>,
    logging: bool,
    subscriptions: bool,
    list_changed: bool,
    default_timeout: Option<Duration>,
    max_result_bytes: Option<usize>,
    changes: Notifier,
    /// Problems found while adding parts; `build` reports the first.
    errors: Vec<AppError>,
    collectors: Vec<Box<dyn prometheus::core::Collector>>,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("name", &self.info.name)
            .finish()
    }
}

impl AppBuilder {
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = Some(title.into());
        self
    }

    /// Text a client may show the model about how to use this server.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    pub fn tool(mut self, tool: ToolSpec) -> Self {
        self.tools.push(tool);
        self
    }

    pub fn tools(mut self, tools: impl IntoIterator<Item = ToolSpec>) -> Self {
        self.tools.extend(tools);
        self
    }

    pub fn resource(mut self, resource: ResourceSpec) -> Self {
        self.resources.push(resource);
        self
    }

    /// Publish a widget: its MCP Apps resource and its skybridge twin.
    pub fn widget(mut self, widget: &crate::Widget) -> Self {
        if !widget.uri().starts_with("ui://") {
            self.errors
                .push(AppError::BadWidgetUri(widget.uri().to_owned()));
        }
        self.resources.extend(widget.resources());
        self
    }

    pub fn template(mut self, template: TemplateSpec) -> Self {
        self.templates.push(template);
        self
    }

    pub fn prompt(mut self, prompt: PromptSpec) -> Self {
        self.prompts.push(prompt);
        self
    }

    pub fn completion(mut self, completion: CompletionFn) -> Self {
        self.completion = Some(completion);
        self
    }

    /// Pass each session's `logging/setLevel` and `resources/(un)subscribe` to
    /// `f` before accepting it.
    pub fn on_session_request(mut self, f: SessionRequestFn) -> Self {
        self.session_requests = Some(f);
        self
    }

    /// Show each caller only the tools `view` admits for them.
    pub fn tool_view(mut self, view: ToolViewFn) -> Self {
        self.view = Some(view);
        self
    }

    /// Advertise the (legacy) logging capability so clients may `logging/setLevel`.
    pub fn logging(mut self) -> Self {
        self.logging = true;
        self
    }

    /// Advertise `resources/subscribe` (legacy sessions).
    pub fn resource_subscriptions(mut self) -> Self {
        self.subscriptions = true;
        self
    }

    /// Advertise `listChanged` for tools, prompts and resources: this app will call
    /// [`App::notify`] when its lists change.
    pub fn list_changed(mut self) -> Self {
        self.list_changed = true;
        self
    }

    /// The handle that announces this app's list changes (see [`App::notify`]).
    pub fn notifier(&self) -> Notifier {
        self.changes.clone()
    }

    /// The timeout of tools that set none of their own.
    pub fn default_tool_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// The largest result (content plus structured content, as JSON) a tool may
    /// return; a larger one is answered with a tool error instead.
    pub fn max_result_bytes(mut self, bytes: usize) -> Self {
        self.max_result_bytes = Some(bytes);
        self
    }

    /// Serve `collector`'s metrics with the app's (a database pool's gauges, say);
    /// names get the `wharf_` prefix.
    pub fn collector(mut self, collector: Box<dyn prometheus::core::Collector>) -> Self {
        self.collectors.push(collector);
        self
    }

    pub fn build(mut self) -> Result<App, AppError> {
        if !self.errors.is_empty() {
            return Err(self.errors.swap_remove(0));
        }
        let registry = prometheus::Registry::new_custom(Some("wharf".into()), None)?;
        let metrics = crate::metrics::ToolMetrics::register(&registry)?;
        for c in self.collectors {
            registry.register(c)?;
        }
        let offer = Offer::check(
            Offering {
                tools: self.tools,
                resources: self.resources,
                templates: self.templates,
                prompts: self.prompts,
                aliases: Vec::new(),
            },
            true,
        )?;
        Ok(App {
            info: self.info,
            instructions: self.instructions,
            offer: ArcSwap::from_pointee(offer),
            completion: self.completion,
            session_requests: self.session_requests,
            view: self.view,
            logging: self.logging,
            subscriptions: self.subscriptions,
            list_changed: self.list_changed,
            default_timeout: self.default_timeout,
            max_result_bytes: self.max_result_bytes,
            changes: self.changes,
            registry,
            metrics,
            state_seal: ArcSwap::from_pointee(crate::request_state::StateSeal::random()),
        })
    }
}

/// The first text of an error result, cut to a log line's worth.
fn error_text(r: &rmcp::model::CallToolResult) -> String {
    const MAX: usize = 512;
    let text = r
        .content
        .iter()
        .find_map(|c| c.as_text().map(|t| t.text.as_str()))
        .unwrap_or("");
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The length of `value` as JSON, counted without building the string.
fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn a_result_over_the_size_cap_becomes_a_tool_error() {
        let app =
            App::builder("t", "1")
                .max_result_bytes(100)
                .tool(ToolSpec::new("big").handler(|_, _| async {
                    Ok::<_, ToolError>(crate::text_result("x".repeat(200)))
                }))
                .tool(
                    ToolSpec::new("small")
                        .handler(|_, _| async { Ok::<_, ToolError>(crate::text_result("ok")) }),
                )
                .build()
                .unwrap();
        let ctx = || CallContext::detached(Default::default());
        let err = app
            .call_tool("big", Default::default(), ctx())
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("the result is 2"), "{err}");
        assert!(
            err.to_string()
                .contains("limit of 100 (server.max_result_bytes)"),
            "{err}"
        );
        assert!(
            app.call_tool("small", Default::default(), ctx())
                .await
                .is_ok()
        );
    }

    use super::*;
    use crate::tool::text_result;
    use rmcp::model::Extensions;
    use serde_json::json;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Add {
        a: i64,
        b: i64,
    }

    fn app() -> App {
        App::builder("t", "1")
            .tool(ToolSpec::typed("add", |_, x: Add| async move {
                Ok::<_, ToolError>(text_result((x.a + x.b).to_string()))
            }))
            .tool(
                ToolSpec::new("slow")
                    .timeout(Duration::from_millis(20))
                    .handler(|_, _| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok::<_, ToolError>(text_result("late"))
                    }),
            )
            .build()
            .unwrap()
    }

    fn ctx() -> CallContext {
        CallContext::detached(Extensions::new())
    }

    #[tokio::test]
    async fn validates_before_the_handler_runs() {
        let args = json!({"a": 1, "b": "two"}).as_object().cloned().unwrap();
        let err = app().call_tool("add", args, ctx()).await.unwrap_err();
        match err {
            ToolError::InvalidArguments(e) => assert_eq!(e[0].field(), "b"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn runs_a_typed_tool() {
        let args = json!({"a": 1, "b": 2}).as_object().cloned().unwrap();
        let CallToolResponse::Complete(r) = app().call_tool("add", args, ctx()).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(r.content[0].as_text().unwrap().text, "3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_tool_times_out() {
        let err = app()
            .call_tool("slow", JsonObject::new(), ctx())
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Timeout(_)), "{err:?}");
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        let bad = App::builder("t", "1")
            .tool(ToolSpec::new("has space"))
            .build();
        assert!(matches!(bad, Err(AppError::BadToolName(_))));
        let dup = App::builder("t", "1")
            .tool(ToolSpec::new("a"))
            .tool(ToolSpec::new("a"))
            .build();
        assert!(matches!(dup, Err(AppError::DuplicateTool(_))));
    }

    #[tokio::test]
    async fn replacing_the_offer_announces_only_what_changed() {
        let app = App::builder("t", "1").list_changed().build().unwrap();
        let mut changes = app.subscribe_changes();
        let echo = || {
            ToolSpec::new("echo").handler(|_, _| async { Ok::<_, ToolError>(text_result("hi")) })
        };
        let changed = app
            .replace_offer(Offering {
                tools: vec![echo()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            changed,
            Changed {
                tools: true,
                ..Default::default()
            }
        );
        assert_eq!(changes.try_recv().unwrap(), ListChange::Tools);
        assert!(
            changes.try_recv().is_err(),
            "resources and prompts did not change"
        );
        assert!(
            app.call_tool("echo", JsonObject::new(), ctx())
                .await
                .is_ok()
        );

        // The same definitions again: nothing to announce.
        let same = app
            .replace_offer(Offering {
                tools: vec![echo()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(same, Changed::default());
        assert!(changes.try_recv().is_err());

        // A bad offering is refused and the current one stays.
        let bad = app.replace_offer(Offering {
            tools: vec![echo(), echo()],
            ..Default::default()
        });
        assert!(matches!(bad, Err(AppError::DuplicateTool(_))));
        assert!(app.offer().tool("echo").is_some());
    }
}
