//! `WharfServer`: rmcp's `ServerHandler` over an [`App`].
//!
//! This is where MCP requests meet the tool model: list and call tools, read
//! resources (fixed and templated), render prompts, complete arguments. Errors
//! become MCP errors here and only here (through the `into_mcp` of each error).

// Logging and resource subscriptions are deprecated in 2026-07-28; legacy clients still use them.
#![allow(deprecated)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        CompletionInfo, Cursor, GetPromptRequestParams, GetPromptResponse, InitializeResult,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        LoggingLevel, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ResourceUpdatedNotificationParam, ServerConfig, SetLevelRequestParams,
        SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError},
};

use crate::{
    app::{App, ListChange, ResolvedTool, SessionRequest},
    context::{CallContext, SessionId},
    error::PromptError,
};

/// Items per page of `tools/list`, `resources/list` and `prompts/list`. Large
/// enough that ordinary servers answer in one page; small enough that a server
/// generating thousands of config tools does not send megabytes at once.
const PAGE_SIZE: usize = 200;

/// How often a legacy session's change forwarder checks that its session is
/// still open, so that forwarders of closed sessions do not pile up.
const SESSION_LIVENESS_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// rmcp's handler for one [`App`]. Clone it freely: the state is shared.
#[derive(Clone)]
pub struct WharfServer {
    app: Arc<App>,
    state: Arc<SessionState>,
    session: SessionId,
}

#[derive(Default)]
struct SessionState {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for WharfServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WharfServer")
            .field("app", &self.app)
            .finish()
    }
}

impl WharfServer {
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            state: Arc::default(),
            session: SessionId::next(),
        }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The minimum level the client asked for with `logging/setLevel`, if any.
    pub fn log_level(&self) -> Option<LoggingLevel> {
        *crate::sync::lock(&self.state.log_level)
    }

    /// The context of a call in this session.
    fn context(&self, ctx: RequestContext<RoleServer>) -> CallContext {
        CallContext::from_mcp(ctx).with_session(self.session, self.log_level())
    }

    /// Let the app see a session request first (see [`App`]'s `on_session_request`).
    async fn pass_on(
        &self,
        request: SessionRequest,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match &self.app.session_requests {
            Some(f) => f(request, self.context(ctx)).await,
            None => Ok(()),
        }
    }
}

fn page<T: Clone>(
    items: impl Iterator<Item = T>,
    cursor: Option<&Cursor>,
) -> Result<(Vec<T>, Option<Cursor>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            ErrorData::invalid_params(
                "invalid cursor: pass back the nextCursor of a previous page",
                None,
            )
        })?,
    };
    let mut out: Vec<T> = items.skip(start).take(PAGE_SIZE + 1).collect();
    let next = (out.len() > PAGE_SIZE).then(|| {
        out.truncate(PAGE_SIZE);
        (start + PAGE_SIZE).to_string()
    });
    Ok((out, next))
}

fn cursor_of(request: &Option<PaginatedRequestParams>) -> Option<&Cursor> {
    request.as_ref().and_then(|r| r.cursor.as_ref())
}

impl ServerHandler for WharfServer {
    fn get_info(&self) -> ServerConfig {
        let mut info =
            InitializeResult::new(self.app.capabilities()).with_server_info(self.app.info.clone());
        if let Some(instructions) = &self.app.instructions {
            info = info.with_instructions(instructions.clone());
        }
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let ctx = self.context(ctx);
        let (tools, next) = page(self.app.listed_tools(&ctx).into_iter(), cursor_of(&request))?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.app.offer().tool(name).map(|t| t.definition().clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        answer_tool_call(&self.app, request, self.context(ctx)).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (resources, next) = page(
            self.app.offer().resources().map(|r| r.definition().clone()),
            cursor_of(&request),
        )?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let (templates, next) = page(
            self.app.offer().templates().map(|t| t.definition().clone()),
            cursor_of(&request),
        )?;
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        let ctx = self
            .context(ctx)
            .with_retry(request.input_responses, request.request_state)
            .with_seal(self.app.state_seal());
        let offer = self.app.offer();
        let outcome = if let Some(resource) = offer.resource(&uri) {
            (resource.read)(ctx, uri.clone(), Default::default()).await
        } else if let Some((template, vars)) = offer
            .templates
            .iter()
            .find_map(|(t, compiled)| compiled.matches(&uri).map(|vars| (t, vars)))
        {
            (template.read)(ctx, uri.clone(), vars).await
        } else {
            Err(crate::error::ResourceError::NotFound(uri.clone()))
        };
        outcome.map_err(|e| {
            if let crate::error::ResourceError::Internal(cause) = &e {
                tracing::error!(uri = %crate::untrusted::shown(&uri), error = %cause, "resource read failed");
            }
            e.into_mcp(&uri)
        })
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (prompts, next) = page(
            self.app.offer().prompts().map(|p| p.definition().clone()),
            cursor_of(&request),
        )?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let offer = self.app.offer();
        let Some(prompt) = offer.prompt(&request.name) else {
            return Err(PromptError::UnknownPrompt(
                crate::untrusted::shown(&request.name).into_owned(),
            )
            .into_mcp());
        };
        let args = request.arguments.unwrap_or_default();
        prompt
            .check_arguments(&args)
            .map_err(PromptError::into_mcp)?;
        let ctx = self
            .context(ctx)
            .with_retry(request.input_responses, request.request_state)
            .with_seal(self.app.state_seal());
        (prompt.render)(ctx, args).await.map_err(|e| {
            if let PromptError::Internal(cause) = &e {
                tracing::error!(prompt = request.name, error = %cause, "prompt failed");
            }
            e.into_mcp()
        })
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let Some(complete) = &self.app.completion else {
            return Err(ErrorData::method_not_found::<
                rmcp::model::CompleteRequestMethod,
            >());
        };
        let mut values = complete(request).await?;
        let total = values.len();
        values.truncate(CompletionInfo::MAX_VALUES);
        let mut info =
            CompletionInfo::new(values).map_err(|e| ErrorData::internal_error(e, None))?;
        info.total = u32::try_from(total).ok();
        info.has_more = Some(total > CompletionInfo::MAX_VALUES);
        Ok(CompleteResult::new(info))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if !self.app.logging {
            return Err(ErrorData::method_not_found::<
                rmcp::model::SetLevelRequestMethod,
            >());
        }
        self.pass_on(SessionRequest::SetLevel(request.level), ctx)
            .await?;
        *crate::sync::lock(&self.state.log_level) = Some(request.level);
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if !self.app.subscriptions {
            return Err(ErrorData::method_not_found::<
                rmcp::model::SubscribeRequestMethod,
            >());
        }
        self.pass_on(SessionRequest::Subscribe(request.uri.clone()), ctx)
            .await?;
        crate::sync::lock(&self.state.subscriptions).insert(request.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if !self.app.subscriptions {
            return Err(ErrorData::method_not_found::<
                rmcp::model::UnsubscribeRequestMethod,
            >());
        }
        self.pass_on(SessionRequest::Unsubscribe(request.uri.clone()), ctx)
            .await?;
        crate::sync::lock(&self.state.subscriptions).remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp narrows this to what the capabilities advertise; an app that never
        // announces changes advertises none, and the method answers -32601.
        if !self.app.list_changed && !self.app.subscriptions {
            return None;
        }
        Some(requested.clone())
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.app.subscribe_changes();
        loop {
            let change = tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                change = changes.recv() => change,
            };
            let sink = subscription.sink();
            let sent = match change {
                Ok(ListChange::Tools) => sink.notify_tool_list_changed().await,
                Ok(ListChange::Prompts) => sink.notify_prompt_list_changed().await,
                Ok(ListChange::Resources) => sink.notify_resource_list_changed().await,
                Ok(ListChange::ResourceUpdated(uri)) => sink.notify_resource_updated(uri).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            };
            match sent {
                Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                Err(_) => return Ok(()),
            }
        }
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        // A legacy session hears about changes on its own stream for as long as
        // the peer is connected: list changes when the app announces them, and
        // updates of the resources it subscribed to.
        let lists = self.app.list_changed;
        if !lists && !self.app.subscriptions {
            return;
        }
        let mut changes = self.app.subscribe_changes();
        let peer = ctx.peer;
        let state = self.state.clone();
        let subscribed = move |uri: &str| crate::sync::lock(&state.subscriptions).contains(uri);
        tokio::spawn(async move {
            let mut check = tokio::time::interval(SESSION_LIVENESS_CHECK);
            loop {
                let change = tokio::select! {
                    change = changes.recv() => change,
                    _ = check.tick() => {
                        if peer.is_transport_closed() {
                            return;
                        }
                        continue;
                    }
                };
                let sent = match change {
                    Ok(ListChange::Tools) if lists => peer.notify_tool_list_changed().await,
                    Ok(ListChange::Prompts) if lists => peer.notify_prompt_list_changed().await,
                    Ok(ListChange::Resources) if lists => peer.notify_resource_list_changed().await,
                    Ok(ListChange::ResourceUpdated(uri)) if subscribed(&uri) => {
                        peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                            .await
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if sent.is_err() {
                    return;
                }
            }
        });
    }
}

/// Answer a `tools/call`: run the tool and turn its outcome into what MCP
/// returns. The one path for both rmcp's service (`WharfServer`) and the HTTP
/// fast path that answers stateless requests without it.
pub async fn answer_tool_call(
    app: &App,
    request: CallToolRequestParams,
    ctx: CallContext,
) -> Result<CallToolResponse, ErrorData> {
    let tool = app.resolve(&request.name);
    answer_call(app, tool, request, ctx).await
}

/// [`answer_tool_call`] of a tool the transport resolved already (`None`: the
/// request names no tool the app has).
pub async fn answer_call(
    app: &App,
    tool: Option<ResolvedTool>,
    request: CallToolRequestParams,
    ctx: CallContext,
) -> Result<CallToolResponse, ErrorData> {
    let ctx = ctx.with_retry(request.input_responses, request.request_state);
    let call_id = ctx.call_id().to_owned();
    let arguments = request.arguments.unwrap_or_default();
    let outcome = match tool {
        Some(tool) => app.call(tool, arguments, ctx).await,
        None => app.call_tool(&request.name, arguments, ctx).await,
    };
    let response = match outcome {
        Ok(response) => response,
        Err(e) => e.into_mcp(&call_id)?.into(),
    };
    Ok(with_call_id(response, call_id))
}

/// Where a result names its call id, so a user's report can be matched to the
/// server's log line (the HTTP response also carries it as `X-Request-Id`).
pub const CALL_ID_META: &str = "wharf/callId";

fn with_call_id(response: CallToolResponse, call_id: String) -> CallToolResponse {
    match response {
        CallToolResponse::Complete(mut r) => {
            r.meta
                .get_or_insert_with(Default::default)
                .0
                .insert(CALL_ID_META.into(), call_id.into());
            CallToolResponse::Complete(r)
        }
        other => other,
    }
}
