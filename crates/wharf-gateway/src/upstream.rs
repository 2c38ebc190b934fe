//! One upstream server behind the gateway, and the one stack every call to it
//! takes: breaker → concurrency limit → connection (made again after a crash,
//! with backoff) → per-attempt timeout → retries with full jitter, only for
//! calls that are safe to repeat.

#![allow(deprecated)] // legacy sessions' log level and resource subscriptions

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use rmcp::{
    ErrorData,
    model::{
        ClientRequest, ListToolsRequest, Prompt, Resource, ResourceTemplate, SetLevelRequestParams,
        SubscribeRequestParams, Tool, UnsubscribeRequestParams,
    },
    service::ServiceError,
};
use tokio::{
    sync::{Mutex, Semaphore},
    time::Instant,
};
use wharf_core::{CallContext, SessionRequest, sync::lock};

use crate::{
    backoff::Backoff,
    breaker::{Breaker, BreakerConfig, BreakerState},
    config::{Era, Transport, UpstreamConfig},
    connect::{ConnectError, Connection, UpstreamHandler, connect},
    error::UpstreamError,
    lane::LaneState,
    lanes::{LaneFailure, Lanes},
    metrics::UpstreamMetrics,
    redact::Scrubbed,
};

/// What the last health check (or call) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet.
    Starting,
    Healthy,
    Unhealthy(String),
    /// `enabled: false` in the configuration.
    Disabled,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy(_) => "unhealthy",
            Self::Disabled => "disabled",
        }
    }
}

/// What an upstream offers, as last listed.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
}

struct Slot {
    current: Option<Arc<Connection>>,
    /// Failed connection attempts in a row, for the reconnection backoff.
    failures: u32,
    not_before: Option<Instant>,
    last_error: Option<String>,
    ever_connected: bool,
}

/// One upstream. Share it in an `Arc`.
pub struct Upstream {
    config: UpstreamConfig,
    headers: http::HeaderMap,
    http: reqwest::Client,
    breaker: Breaker,
    retry: Backoff,
    reconnect: Backoff,
    permits: Semaphore,
    slot: Mutex<Slot>,
    changed: Arc<crate::connect::Announced>,
    health: std::sync::Mutex<Health>,
    lists: ArcSwap<Lists>,
    metrics: UpstreamMetrics,
    client_name: String,
    progress: crate::progress::ProgressRoutes,
    /// Legacy callers' own sessions with this upstream.
    lanes: Lanes,
    /// Scrubs this upstream's secrets out of every error it produces.
    redactor: crate::redact::Redactor,
    /// The connection whose list changes are being listened to.
    listening: std::sync::Mutex<std::sync::Weak<Connection>>,
    /// The bearer token of the shared connection, when the gateway gets one
    /// (OAuth upstreams: the gateway's own, or a signed-in user's for listing).
    bearer: arc_swap::ArcSwapOption<String>,
    /// Each signed-in user's connection (OAuth upstreams), with the token it was made with.
    users: Mutex<HashMap<String, (String, Arc<Connection>)>>,
    /// Every caller's request must carry the caller's own token (sign-in or
    /// token exchange): the shared connection, which may carry another user's
    /// token for listing, serves only the gateway's own requests.
    per_user: bool,
}

/// The caller's own upstream token (per-user sign-in): its calls go over a
/// connection of theirs that carries it.
#[derive(Clone)]
pub(crate) struct UserBearer {
    pub(crate) subject: String,
    pub(crate) token: String,
}

/// Users' connections one upstream keeps at most; beyond it, another user's
/// is closed (made again at their next call).
const MAX_USER_CONNECTIONS: usize = 1024;

/// Where one attempt goes: the upstream's shared connection, or the caller's lane.
pub(crate) struct Route {
    pub(crate) conn: Arc<Connection>,
    pub(crate) lane: Option<Arc<LaneState>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.config.name)
            .field("transport", &self.config.transport.kind())
            .finish()
    }
}

/// Upper bound on a connection handshake, whatever the call timeout: a server
/// that takes longer than this to start is reported, not waited for.
const MAX_CONNECT_TIME: Duration = Duration::from_secs(30);

impl Upstream {
    pub fn new(
        config: UpstreamConfig,
        breaker: BreakerConfig,
        retry: Backoff,
        reconnect: Backoff,
        metrics: UpstreamMetrics,
    ) -> Self {
        let mut headers = http::HeaderMap::new();
        for (k, v) in &config.headers {
            // Checked when the configuration was parsed.
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .unwrap_or_default();
        let name = config.name.clone();
        metrics.breaker.with_label_values(&[&name]).set(0);
        metrics.healthy.with_label_values(&[&name]).set(0);
        let changed: Arc<crate::connect::Announced> = Arc::default();
        let redactor = crate::redact::Redactor::for_upstream(&config);
        let client_name = "wharf-gateway";
        let lanes = Lanes::new(
            &name,
            client_name,
            changed.clone(),
            metrics.sessions.with_label_values(&[&name]),
        );
        let per_user = config.oauth.as_ref().is_some_and(|o| {
            matches!(
                o.grant,
                crate::oauth::Grant::AuthorizationCode | crate::oauth::Grant::TokenExchange
            )
        });
        let health = if config.enabled {
            Health::Starting
        } else {
            Health::Disabled
        };
        Self {
            permits: Semaphore::new(config.max_concurrency),
            config,
            headers,
            http,
            breaker: Breaker::new(breaker),
            retry,
            reconnect,
            slot: Mutex::new(Slot {
                current: None,
                failures: 0,
                not_before: None,
                last_error: None,
                ever_connected: false,
            }),
            changed,
            health: std::sync::Mutex::new(health),
            lists: ArcSwap::from_pointee(Lists::default()),
            metrics,
            client_name: client_name.into(),
            progress: Default::default(),
            lanes,
            redactor,
            listening: Default::default(),
            bearer: Default::default(),
            users: Default::default(),
            per_user,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    pub fn health(&self) -> Health {
        lock(&self.health).clone()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// What the upstream offered when last listed.
    pub fn lists(&self) -> Arc<Lists> {
        self.lists.load_full()
    }

    /// The list changes the upstream announced.
    pub fn changes(&self) -> Arc<crate::connect::Announced> {
        self.changed.clone()
    }

    fn set_health(&self, health: Health) {
        let mut current = lock(&self.health);
        if *current != health {
            match &health {
                Health::Healthy => tracing::info!(upstream = self.name(), "upstream healthy"),
                Health::Unhealthy(why) => {
                    tracing::warn!(
                        upstream = self.name(),
                        error = why.as_str(),
                        "upstream unhealthy"
                    )
                }
                _ => {}
            }
        }
        self.metrics
            .healthy
            .with_label_values(&[self.name()])
            .set(i64::from(health == Health::Healthy));
        *current = health;
    }

    /// The live connection, made now if there is none (or it died): a crashed
    /// stdio server is started again, an HTTP upstream reconnected. Attempts
    /// after a failure wait out a growing, jittered backoff.
    async fn connection(&self) -> Result<Arc<Connection>, UpstreamError> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = &slot.current {
            if !c.is_closed() && !c.is_transport_closed() {
                return Ok(c.clone());
            }
            tracing::warn!(
                upstream = self.name(),
                "upstream connection closed; reconnecting"
            );
            slot.current = None;
        }
        if let Some(at) = slot.not_before
            && Instant::now() < at
        {
            return Err(UpstreamError::Connect {
                upstream: self.name().to_owned(),
                message: format!(
                    "{} (next attempt in {} ms)",
                    slot.last_error.as_deref().unwrap_or("not connected"),
                    (at - Instant::now()).as_millis()
                ),
            });
        }
        let handler = UpstreamHandler::new(
            &self.client_name,
            self.changed.clone(),
            self.progress.clone(),
        );
        let made = self.handshake(self.config.era, handler).await;
        match made {
            Ok(c) => {
                let c = Arc::new(c);
                let again = slot.ever_connected;
                if again {
                    self.metrics
                        .reconnects
                        .with_label_values(&[self.name()])
                        .inc();
                }
                tracing::info!(
                    upstream = self.name(),
                    transport = self.config.transport.kind(),
                    protocol = c.peer_info().map(|i| i.protocol_version.to_string()),
                    "upstream connected"
                );
                slot.ever_connected = true;
                slot.failures = 0;
                slot.not_before = None;
                slot.last_error = None;
                slot.current = Some(c.clone());
                // The lists may have changed while it was away (the first
                // connection is listed by whoever made it: `Gateway::start`).
                if again {
                    self.changed.announce(None);
                }
                Ok(c)
            }
            Err(message) => {
                let message = message.into_string();
                let wait = self.reconnect.delay(slot.failures);
                slot.failures = slot.failures.saturating_add(1);
                slot.not_before = Some(Instant::now() + wait);
                slot.last_error = Some(message.clone());
                Err(UpstreamError::Connect {
                    upstream: self.name().to_owned(),
                    message,
                })
            }
        }
    }

    /// Whether every caller's request needs the caller's own token.
    pub(crate) fn per_user(&self) -> bool {
        self.per_user
    }

    /// The shared connection's bearer token from now on; a different one
    /// closes the connection (and the legacy callers' lanes made with the old
    /// one), so the next request connects with it.
    pub(crate) async fn set_bearer(&self, token: Option<String>) {
        if self.bearer.load().as_deref() == token.as_ref() {
            return;
        }
        self.bearer.store(token.map(Arc::new));
        self.lanes.close_all().await;
        // New credentials: connect at once (a wait after failures without them
        // says nothing about the next attempt).
        let mut slot = self.slot.lock().await;
        slot.current = None;
        slot.failures = 0;
        slot.not_before = None;
    }

    /// The headers of a connection: the configured ones, and `bearer`.
    fn headers_with(&self, bearer: Option<&str>) -> http::HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(v) =
            bearer.and_then(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        headers
    }

    /// A new connection to the upstream, its handshake bounded by [`MAX_CONNECT_TIME`].
    async fn handshake(&self, era: Era, handler: UpstreamHandler) -> Result<Connection, Scrubbed> {
        let bearer = self.bearer.load_full();
        self.handshake_with(era, handler, bearer.as_deref().map(String::as_str))
            .await
    }

    async fn handshake_with(
        &self,
        era: Era,
        handler: UpstreamHandler,
        bearer: Option<&str>,
    ) -> Result<Connection, Scrubbed> {
        let headers = self.headers_with(bearer);
        let connecting = connect(
            (self.name(), &self.redactor),
            &self.config.transport,
            era,
            &headers,
            &self.http,
            handler,
            self.config.max_concurrency,
        );
        tokio::time::timeout(MAX_CONNECT_TIME, connecting)
            .await
            .unwrap_or(Err(ConnectError::Timeout(MAX_CONNECT_TIME)))
            .map_err(|e| self.redactor.scrubbed(&e))
    }

    /// A 2026-07-28 server sends list changes only on a `subscriptions/listen`
    /// stream (older ones send them on the session, to [`UpstreamHandler`]).
    /// Opened through the call stack (timeout, breaker, retries), once per
    /// connection; the gateway asks after each health check, so a connection
    /// made again is listened to again.
    pub async fn listen_for_changes(&self) {
        let current = self.slot.lock().await.current.clone();
        let Some(conn) = current.filter(|c| wants_list_changes(c)) else {
            return;
        };
        {
            let mut listening = lock(&self.listening);
            if listening.upgrade().is_some_and(|l| Arc::ptr_eq(&l, &conn)) {
                return;
            }
            *listening = Arc::downgrade(&conn);
        }
        let filter = rmcp::model::SubscriptionFilter::builder()
            .tools_list_changed()
            .prompts_list_changed()
            .resources_list_changed()
            .build();
        let opened = self
            .call("subscriptions/listen", true, |c| {
                let filter = filter.clone();
                async move { c.peer().listen(filter).await }
            })
            .await;
        let mut sub = match opened {
            Ok(s) => s,
            Err(e) => {
                *lock(&self.listening) = std::sync::Weak::new();
                tracing::debug!(upstream = self.name(), error = %e, "no list-change subscription");
                return;
            }
        };
        let changed = self.changed.clone();
        tokio::spawn(async move {
            while let Ok(Some(n)) = sub.next().await {
                use rmcp::model::ServerNotification as N;
                let kind = match n {
                    N::ToolListChangedNotification(_) => Some(crate::connect::ListKind::Tools),
                    N::PromptListChangedNotification(_) => Some(crate::connect::ListKind::Prompts),
                    N::ResourceListChangedNotification(_) => {
                        Some(crate::connect::ListKind::Resources)
                    }
                    _ => None,
                };
                changed.announce(kind);
            }
        });
    }

    async fn drop_connection(&self, broken: &Arc<Connection>) {
        let mut slot = self.slot.lock().await;
        if slot
            .current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, broken))
        {
            slot.current = None;
        }
    }

    /// Run `op` on the upstream through the whole stack. `idempotent` says a
    /// repeat is harmless (a read, or a tool annotated read-only/idempotent):
    /// only then is a call that may have run retried.
    pub async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        idempotent: bool,
        op: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        self.call_via(method, idempotent, None, |r: Route| op(r.conn))
            .await
    }

    /// [`Upstream::call`] on behalf of `caller`: a legacy caller's request goes
    /// over its own lane when the upstream keeps one for it.
    pub(crate) async fn call_via<T, F, Fut>(
        &self,
        method: &'static str,
        idempotent: bool,
        caller: Option<&CallContext>,
        op: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Route) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let name = self.name();
        let started = Instant::now();
        let outcome = self.call_inner(idempotent, caller, op).await;
        self.metrics
            .duration
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.class(),
        };
        self.metrics
            .calls
            .with_label_values(&[name, method, label])
            .inc();
        outcome
    }

    async fn call_inner<T, F, Fut>(
        &self,
        idempotent: bool,
        caller: Option<&CallContext>,
        op: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Route) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let name = self.name();
        if !self.config.enabled {
            return Err(UpstreamError::Unavailable {
                upstream: name.to_owned(),
                reason: "disabled in the gateway configuration (`enabled: false`)".into(),
            });
        }
        let mut attempt: u32 = 0;
        loop {
            let permit = match self.breaker.acquire() {
                Ok(p) => p,
                Err(retry_in) => {
                    let e = UpstreamError::CircuitOpen {
                        upstream: name.to_owned(),
                        retry_in,
                    };
                    self.metrics
                        .errors
                        .with_label_values(&[name, e.class()])
                        .inc();
                    return Err(e);
                }
            };
            let outcome = self
                .attempt(caller, &op)
                .await
                .map_err(|e| e.scrubbed(&self.redactor));
            let fault = matches!(&outcome, Err(e) if e.is_upstream_fault());
            if let Some(state) = self.breaker.record(permit, !fault) {
                self.metrics
                    .breaker
                    .with_label_values(&[name])
                    .set(state as i64);
                match state {
                    BreakerState::Open => {
                        tracing::warn!(upstream = name, "circuit breaker opened")
                    }
                    _ => tracing::info!(upstream = name, state = state.as_str(), "circuit breaker"),
                }
            }
            let error = match outcome {
                Ok(v) => {
                    if !matches!(self.health(), Health::Healthy) {
                        self.set_health(Health::Healthy);
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            self.metrics
                .errors
                .with_label_values(&[name, error.class()])
                .inc();
            // An upstream that asks for more time than a call may take is not
            // called again in this call: its answer goes back to the caller.
            let asked = error.retry_after();
            let too_long = asked.is_some_and(|after| after > self.config.timeout);
            if attempt >= self.config.max_retries || !error.retryable(idempotent) || too_long {
                tracing::warn!(upstream = name, attempt, class = error.class(), error = %error, "upstream call failed");
                return Err(error);
            }
            let wait = self.retry.delay(attempt).max(asked.unwrap_or_default());
            tracing::info!(
                upstream = name,
                attempt,
                class = error.class(),
                wait_ms = wait.as_millis() as u64,
                "retrying upstream call"
            );
            self.metrics.retries.with_label_values(&[name]).inc();
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: a concurrency slot, the connection, the timeout.
    async fn attempt<T, F, Fut>(
        &self,
        caller: Option<&CallContext>,
        op: &F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Route) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let name = self.name();
        let timeout = self.config.timeout;
        // The wait for a slot counts against the timeout: a caller is not left
        // queueing behind a hung upstream.
        let deadline = Instant::now() + timeout;
        let _slot = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| UpstreamError::Timeout {
                upstream: name.to_owned(),
                after: timeout,
            })?
            .expect("the semaphore is never closed");
        // Not under the call's deadline: cancelling a handshake half-way would kill
        // a slow-starting stdio server on every call. A handshake has its own bound
        // (MAX_CONNECT_TIME).
        let route = self.route(caller, deadline).await?;
        let conn = route.conn.clone();
        match tokio::time::timeout_at(deadline, op(route)).await {
            Err(_) => Err(UpstreamError::Timeout {
                upstream: name.to_owned(),
                after: timeout,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let e = UpstreamError::from_service(name, e);
                if e.breaks_connection() {
                    self.drop_connection(&conn).await;
                }
                Err(e)
            }
        }
    }

    /// The connection an attempt takes: the caller's lane, or the shared one.
    /// A lane is made inside the attempt: its set-up runs before `deadline`.
    async fn route(
        &self,
        caller: Option<&CallContext>,
        deadline: Instant,
    ) -> Result<Route, UpstreamError> {
        // A signed-in user's call goes over their own connection, with their token.
        if let Some(user) = caller.and_then(|c| c.extensions().get::<UserBearer>()) {
            return Ok(Route {
                conn: self.user_connection(user).await?,
                lane: None,
            });
        }
        // Never a caller's request on a connection carrying someone else's token.
        if self.per_user && caller.is_some() {
            return Err(UpstreamError::Unavailable {
                upstream: self.name().to_owned(),
                reason: "it acts as each user: this request carries no credentials of the caller's"
                    .into(),
            });
        }
        // A stdio server is one process with one session: no lanes.
        if let Some(ctx) = caller
            && !matches!(self.config.transport, Transport::Stdio { .. })
        {
            let dial = |handler| self.handshake(Era::Legacy, handler);
            match self
                .lanes
                .lane(ctx, deadline, self.config.timeout, dial)
                .await
            {
                Ok(Some(lane)) => {
                    return Ok(Route {
                        conn: lane.conn.clone(),
                        lane: Some(lane.state.clone()),
                    });
                }
                Ok(None) => {}
                Err(LaneFailure::Replay(e)) => return Err(e),
                Err(LaneFailure::Dial(message)) => {
                    let shared_up = self
                        .slot
                        .lock()
                        .await
                        .current
                        .as_ref()
                        .is_some_and(|c| !c.is_closed() && !c.is_transport_closed());
                    if !shared_up {
                        return Err(UpstreamError::Connect {
                            upstream: self.name().to_owned(),
                            message: message.into_string(),
                        });
                    }
                    // Up, but not speaking a legacy version: its legacy callers
                    // share the connection (and its input requests reach them as
                    // `input_required` rounds).
                    tracing::debug!(upstream = self.name(), error = %message, "lane refused");
                    self.lanes.refused();
                }
            }
        }
        Ok(Route {
            conn: self.connection().await?,
            lane: None,
        })
    }

    /// `user`'s connection, made (again) when there is none, it died, or their
    /// token changed. Its handshake is not under the call's deadline, as the
    /// shared connection's is not.
    async fn user_connection(&self, user: &UserBearer) -> Result<Arc<Connection>, UpstreamError> {
        {
            let users = self.users.lock().await;
            if let Some((token, c)) = users.get(&user.subject)
                && *token == user.token
                && !c.is_closed()
                && !c.is_transport_closed()
            {
                return Ok(c.clone());
            }
        }
        // Connected without the lock: one slow handshake holds up no other user.
        let handler = UpstreamHandler::new(
            &self.client_name,
            self.changed.clone(),
            self.progress.clone(),
        );
        let conn = Arc::new(
            self.handshake_with(self.config.era, handler, Some(&user.token))
                .await
                .map_err(|message| UpstreamError::Connect {
                    upstream: self.name().to_owned(),
                    message: message.into_string(),
                })?,
        );
        let mut users = self.users.lock().await;
        if users.len() >= MAX_USER_CONNECTIONS
            && !users.contains_key(&user.subject)
            && let Some(other) = users.keys().next().cloned()
        {
            users.remove(&other);
        }
        users.insert(user.subject.clone(), (user.token.clone(), conn.clone()));
        Ok(conn)
    }

    /// Close the lanes of callers whose session ended, or that have been idle
    /// for `idle` with nothing subscribed.
    pub(crate) fn sweep_lanes(&self, idle: Duration) {
        self.lanes.sweep(idle);
    }

    /// A legacy session's standing request, on its lane: the log level for
    /// every lane it has, a subscription on the lane to the resource's owner.
    pub(crate) async fn session_request(
        &self,
        request: &SessionRequest,
        ctx: &CallContext,
    ) -> Result<(), UpstreamError> {
        // No lanes to a per-user upstream (its shared connection is not the caller's).
        if self.per_user {
            return Ok(());
        }
        match request {
            SessionRequest::SetLevel(level) => {
                let Some(slot) = ctx.session_id().and_then(|s| self.lanes.slot(s)) else {
                    return Ok(()); // a lane opened later starts at this level
                };
                let mut slot = slot.lock().await;
                slot.log_level = Some(*level);
                let Some(lane) = slot.lane.clone() else {
                    return Ok(());
                };
                drop(slot);
                if lane
                    .conn
                    .peer_info()
                    .is_some_and(|i| i.capabilities.logging.is_some())
                {
                    let level = *level;
                    self.call_via("logging/setLevel", true, Some(ctx), |r| async move {
                        r.conn
                            .peer()
                            .set_level(SetLevelRequestParams::new(level))
                            .await
                    })
                    .await?;
                }
                Ok(())
            }
            SessionRequest::Subscribe(uri) | SessionRequest::Unsubscribe(uri) => {
                let subscribe = matches!(request, SessionRequest::Subscribe(_));
                let method = if subscribe {
                    "resources/subscribe"
                } else {
                    "resources/unsubscribe"
                };
                self.call_via(method, true, Some(ctx), |r| {
                    let uri = uri.clone();
                    async move {
                        if r.lane.is_none() {
                            return Err(ServiceError::McpError(ErrorData::invalid_request(
                                "this upstream keeps no session for this caller, so it cannot hold a subscription for it",
                                None,
                            )));
                        }
                        if subscribe {
                            r.conn.peer().subscribe(SubscribeRequestParams::new(uri)).await
                        } else {
                            r.conn.peer().unsubscribe(UnsubscribeRequestParams::new(uri)).await
                        }
                    }
                })
                .await?;
                if let Some(slot) = ctx.session_id().and_then(|s| self.lanes.slot(s)) {
                    let mut slot = slot.lock().await;
                    if subscribe {
                        slot.subscribed.insert(uri.clone());
                    } else {
                        slot.subscribed.remove(uri);
                    }
                }
                Ok(())
            }
        }
    }

    /// Send a downstream client's request through the stack, on its behalf
    /// (its capabilities, its progress token; see `relay`).
    pub async fn relay(
        &self,
        method: &'static str,
        idempotent: bool,
        request: impl Fn() -> rmcp::model::ClientRequest,
        ctx: &wharf_core::CallContext,
    ) -> Result<rmcp::model::ServerResult, UpstreamError> {
        self.call_via(method, idempotent, Some(ctx), |route| {
            let r = request();
            async move {
                let routes = route.lane.as_ref().map_or(&self.progress, |l| &l.progress);
                crate::relay::send(route.conn.peer(), r, ctx, routes, route.lane.as_deref()).await
            }
        })
        .await
    }

    /// The active health check: reconnect if needed, then an uncached
    /// `tools/list` within the timeout. Not retried and not counted by the
    /// breaker: it measures the upstream, it is not a caller's request.
    pub async fn check_health(&self) -> Health {
        if !self.config.enabled {
            return Health::Disabled;
        }
        let probe = async {
            let conn = self.connection().await?;
            let request = ClientRequest::ListToolsRequest(ListToolsRequest {
                method: Default::default(),
                params: None,
                extensions: Default::default(),
            });
            match tokio::time::timeout(self.config.timeout, conn.send_request(request)).await {
                Err(_) => Err(UpstreamError::Timeout {
                    upstream: self.name().to_owned(),
                    after: self.config.timeout,
                }),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => {
                    let e = UpstreamError::from_service(self.name(), e);
                    if e.breaks_connection() {
                        self.drop_connection(&conn).await;
                    }
                    Err(e)
                }
            }
        };
        let health = match probe.await.map_err(|e| e.scrubbed(&self.redactor)) {
            Ok(()) => Health::Healthy,
            Err(UpstreamError::Remote { .. }) => Health::Healthy,
            Err(e) => Health::Unhealthy(e.to_string()),
        };
        self.set_health(health.clone());
        health
    }

    /// `tools/list`, every page, through the stack.
    pub async fn list_tools(&self) -> Result<Vec<Tool>, UpstreamError> {
        self.call(
            "tools/list",
            true,
            |c| async move { c.list_all_tools().await },
        )
        .await
    }

    /// List everything the upstream offers (through the stack: lists are reads).
    pub async fn refresh_lists(&self) -> Result<Arc<Lists>, UpstreamError> {
        let tools = self.list_tools().await?;
        let caps = self
            .connection()
            .await?
            .peer_info()
            .map(|i| i.capabilities.clone())
            .unwrap_or_default();
        let prompts = if caps.prompts.is_some() {
            self.call("prompts/list", true, |c| async move {
                c.list_all_prompts().await
            })
            .await?
        } else {
            Vec::new()
        };
        let (resources, templates) = if caps.resources.is_some() {
            let r = self
                .call("resources/list", true, |c| async move {
                    c.list_all_resources().await
                })
                .await?;
            let t = self
                .call("resources/templates/list", true, |c| async move {
                    c.list_all_resource_templates().await
                })
                .await?;
            (r, t)
        } else {
            (Vec::new(), Vec::new())
        };
        let lists = Arc::new(Lists {
            tools,
            prompts,
            resources,
            templates,
        });
        self.lists.store(lists.clone());
        Ok(lists)
    }

    /// What the server said about itself when the connection was made: the
    /// protocol version it speaks, its name, capabilities and instructions.
    pub async fn server_info(
        &self,
    ) -> Result<Option<Arc<rmcp::model::ServerPeerInfo>>, UpstreamError> {
        Ok(self.connection().await?.peer_info())
    }

    /// Close the connection (a stdio child is asked to exit, then killed), and
    /// every lane.
    pub async fn shutdown(&self) {
        self.lanes.close_all().await;
        let current = self.slot.lock().await.current.take();
        if let Some(c) = current
            && let Ok(c) = Arc::try_unwrap(c)
        {
            let _ = c.cancel().await;
        }
    }
}

/// Whether the server on `c` speaks 2026-07-28 and announces list changes
/// (which it then sends only on a `subscriptions/listen` stream).
fn wants_list_changes(c: &Connection) -> bool {
    let Some(info) = c.peer_info() else {
        return false;
    };
    if info.protocol_version < rmcp::model::ProtocolVersion::V_2026_07_28 {
        return false;
    }
    let caps = &info.capabilities;
    caps.tools
        .as_ref()
        .is_some_and(|t| t.list_changed == Some(true))
        || caps
            .prompts
            .as_ref()
            .is_some_and(|p| p.list_changed == Some(true))
        || caps
            .resources
            .as_ref()
            .is_some_and(|r| r.list_changed == Some(true))
}
