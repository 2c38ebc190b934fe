//! Opening one connection to an upstream, whatever its transport, with rmcp's
//! client: the protocol era is detected as 2026-07-28 says (`server/discover`
//! first, `initialize` when the server turns out to be older).

// A lane relays the legacy sampling, roots and logging messages (deprecated in 2026-07-28).
#![allow(deprecated)]

use std::{process::Stdio, sync::Arc};

use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        ClientConfig, ClientJsonRpcMessage, ClientResult, CreateMessageRequest,
        CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
        ElicitResult, Implementation, ListRootsRequest, ListRootsResult,
        LoggingMessageNotificationParam, ProtocolVersion, ResourceUpdatedNotificationParam,
        ServerJsonRpcMessage, ServerNotification, ServerRequest,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
    },
    transport::{
        IntoTransport, StreamableHttpClientTransport, TokioChildProcess,
        Transport as RmcpTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Notify;

use crate::{
    config::{Era, Transport},
    lane::LaneState,
    progress::ProgressRoutes,
};

/// Why a connection to an upstream could not be made. Its text may still hold
/// a secret (a token in a command's arguments, say): the upstream scrubs it
/// ([`crate::redact`]) before anyone sees it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sse(#[from] crate::sse_client::SseConnectError),
    /// The peer was reached but did not complete the MCP handshake.
    #[error("{peer} did not complete the MCP handshake: {}", crate::error::tidy(source.to_string()))]
    Handshake {
        peer: String,
        source: Box<rmcp::service::ClientInitializeError>,
    },
    #[error("no handshake within {}s", .0.as_secs())]
    Timeout(std::time::Duration),
}

/// One live connection.
pub(crate) type Connection = RunningService<RoleClient, UpstreamHandler>;

/// List changes an upstream announced and the gateway has not relayed yet.
#[derive(Debug, Default)]
pub struct Announced {
    wake: Notify,
    kinds: std::sync::atomic::AtomicU8,
}

const TOOLS: u8 = 1;
const PROMPTS: u8 = 2;
const RESOURCES: u8 = 4;

impl Announced {
    /// Record an announcement (`None`: re-list without announcing, e.g. after a reconnection).
    pub fn announce(&self, kind: Option<ListKind>) {
        let bit = match kind {
            Some(ListKind::Tools) => TOOLS,
            Some(ListKind::Prompts) => PROMPTS,
            Some(ListKind::Resources) => RESOURCES,
            None => 0,
        };
        self.kinds
            .fetch_or(bit, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// The kinds announced since the last call: (tools, prompts, resources).
    pub fn take(&self) -> (bool, bool, bool) {
        let k = self.kinds.swap(0, std::sync::atomic::Ordering::SeqCst);
        (k & TOOLS != 0, k & PROMPTS != 0, k & RESOURCES != 0)
    }
}

/// Which list an upstream said changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
}

/// The client side of a connection: who we say we are, and where list-changed
/// notifications go. On a caller's lane, also where the upstream's requests for
/// input, log messages and resource updates go (to that caller).
#[derive(Clone)]
pub struct UpstreamHandler {
    info: Implementation,
    changed: Arc<Announced>,
    progress: ProgressRoutes,
    lane: Option<Arc<LaneState>>,
}

impl UpstreamHandler {
    pub fn new(client_name: &str, changed: Arc<Announced>, progress: ProgressRoutes) -> Self {
        Self {
            info: Implementation::new(client_name.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            changed,
            progress,
            lane: None,
        }
    }

    /// The handler of a caller's lane: it declares the caller's capabilities
    /// and passes the upstream's requests and notifications to it.
    pub(crate) fn for_lane(
        client_name: &str,
        changed: Arc<Announced>,
        lane: Arc<LaneState>,
    ) -> Self {
        Self {
            progress: lane.progress.clone(),
            lane: Some(lane),
            ..Self::new(client_name, changed, ProgressRoutes::default())
        }
    }

    /// Ask the lane's caller; on the shared connection there is nobody to ask.
    async fn ask(
        &self,
        request: ServerRequest,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        match &self.lane {
            Some(lane) => lane.ask(request, &ctx.extensions).await,
            None => Err(ErrorData::method_not_found::<
                rmcp::model::CreateMessageRequestMethod,
            >()),
        }
    }
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        let capabilities = self
            .lane
            .as_ref()
            .map(|l| l.capabilities.clone())
            .unwrap_or_default();
        // Only `initialize` reads this version: the newest that has it.
        ClientConfig::new(capabilities, self.info.clone())
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.ask(request, ctx).await? {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(unexpected_answer()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if self.lane.is_none() {
            return Err(ErrorData::method_not_found::<
                rmcp::model::ElicitationCreateRequestMethod,
            >());
        }
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.ask(request, ctx).await? {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(unexpected_answer()),
        }
    }

    async fn list_roots(
        &self,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        if self.lane.is_none() {
            return Ok(ListRootsResult::default());
        }
        let request = ServerRequest::ListRootsRequest(ListRootsRequest::default());
        match self.ask(request, ctx).await? {
            ClientResult::ListRootsResult(r) => Ok(r),
            _ => Err(unexpected_answer()),
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        if let Some(lane) = &self.lane {
            lane.log(params).await;
        }
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        if let Some(lane) = &self.lane {
            lane.resource_updated(params).await;
        }
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.changed.announce(Some(ListKind::Tools));
    }

    async fn on_prompt_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.changed.announce(Some(ListKind::Prompts));
    }

    async fn on_resource_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.changed.announce(Some(ListKind::Resources));
    }
}

fn unexpected_answer() -> ErrorData {
    ErrorData::internal_error(
        "the gateway's caller answered with another result type",
        None,
    )
}

/// A connection's transport, with progress notifications passed on to the
/// caller waiting for them as they arrive, in order, before rmcp sees them:
/// rmcp gives each notification to the handler on a task of its own, so a
/// call's last progress notification could otherwise reach the caller after
/// the call's result (and be dropped by a client that has stopped listening).
struct ProgressTap<T> {
    inner: T,
    routes: ProgressRoutes,
}

impl<T: RmcpTransport<RoleClient>> RmcpTransport<RoleClient> for ProgressTap<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        let message = self.inner.receive().await;
        if let Some(ServerJsonRpcMessage::Notification(n)) = &message
            && let ServerNotification::ProgressNotification(p) = &n.notification
        {
            self.routes.forward(p.params.clone());
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

fn tap<E, A>(
    transport: impl IntoTransport<RoleClient, E, A>,
    routes: ProgressRoutes,
) -> ProgressTap<impl RmcpTransport<RoleClient, Error = E>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    ProgressTap {
        inner: transport.into_transport(),
        routes,
    }
}

/// Newest first; the `initialize` fallback asks for the newest legacy version.
fn lifecycle(era: Era) -> ClientLifecycleMode {
    match era {
        Era::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        Era::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Era::Legacy => ClientLifecycleMode::Initialize,
    }
}

/// Did the server answer `initialize` and refuse it (a 2026-07-28-only
/// server), rather than fail to answer at all?
fn refuses_initialize(e: &rmcp::service::ClientInitializeError) -> bool {
    use rmcp::service::ClientInitializeError as E;
    match e {
        // Method not found, invalid params, unsupported protocol version: the
        // method itself is refused. Any other error (a missing API key, say)
        // is the server's answer and is reported as it is.
        E::JsonRpcError(error) => matches!(error.code.0, -32601 | -32602 | -32022),
        E::NoCompatibleProtocolVersion { .. } | E::ExpectedInitResponse(_) => true,
        _ => false,
    }
}

/// Longest stderr line of a stdio upstream kept in a log line; the rest is cut,
/// after secrets are scrubbed from twice as much (so none straddles the cut).
const MAX_STDERR_LINE: usize = 2048;

/// Each line a stdio upstream writes to stderr becomes a log line naming the
/// upstream (scrubbed of its secrets, cut at [`MAX_STDERR_LINE`]), so several
/// servers' output can be told apart and reaches the log file. The pipe is
/// read to its end, so a chatty server never blocks on it.
fn relay_stderr(
    stderr: tokio::process::ChildStderr,
    upstream: String,
    redactor: crate::redact::Redactor,
) {
    use tokio::io::AsyncBufReadExt;
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(stderr);
        let mut line = Vec::with_capacity(256);
        loop {
            // A line is kept up to the cap and the rest of it is skipped: a
            // server that never writes a newline costs no more than the cap.
            let (used, ended) = match reader.fill_buf().await {
                Ok([]) | Err(_) => break,
                Ok(chunk) => match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        take(&mut line, &chunk[..i]);
                        (i + 1, true)
                    }
                    None => {
                        take(&mut line, chunk);
                        (chunk.len(), false)
                    }
                },
            };
            reader.consume(used);
            if ended {
                let mut text = redactor.scrub(String::from_utf8_lossy(&line).trim_end());
                if text.len() > MAX_STDERR_LINE {
                    let mut cut = MAX_STDERR_LINE;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                if !text.is_empty() {
                    tracing::info!(target: "wharf::upstream_stderr", upstream = %upstream, "{text}");
                }
                line.clear();
            }
        }
    });

    fn take(line: &mut Vec<u8>, bytes: &[u8]) {
        let room = (2 * MAX_STDERR_LINE).saturating_sub(line.len());
        line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Connect and complete the handshake. `http` is the upstream's own client, so
/// its keep-alive pool is reused across reconnections.
pub(crate) async fn connect(
    upstream: (&str, &crate::redact::Redactor),
    transport: &Transport,
    era: Era,
    headers: &http::HeaderMap,
    http: &reqwest::Client,
    handler: UpstreamHandler,
    max_in_flight: usize,
) -> Result<Connection, ConnectError> {
    match transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let progress = handler.progress.clone();
            let spawn = || {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).envs(env).kill_on_drop(true);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                let (child, stderr) = TokioChildProcess::builder(cmd)
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|source| ConnectError::Spawn {
                        command: command.clone(),
                        source,
                    })?;
                if let Some(stderr) = stderr {
                    relay_stderr(stderr, upstream.0.to_owned(), upstream.1.clone());
                }
                Ok::<_, ConnectError>(tap(child, progress.clone()))
            };
            // A stdio server on an older SDK prints pages of validation errors
            // at a `server/discover` it does not know, so over stdio the era is
            // found the other way round: `initialize` first (every server that
            // is not 2026-07-28-only answers it; a stdio process is one
            // session, so nothing is lost), and `server/discover` in a fresh
            // process only when the server refuses `initialize`.
            let first = match era {
                Era::Auto => ClientLifecycleMode::Initialize,
                other => lifecycle(other),
            };
            let outcome = match handler.clone().serve_with_lifecycle(spawn()?, first).await {
                Err(e) if matches!(era, Era::Auto) && refuses_initialize(&e) => {
                    tracing::debug!(error = %e, "initialize refused; trying server/discover");
                    let discovered = handler
                        .serve_with_lifecycle(spawn()?, lifecycle(Era::Modern))
                        .await;
                    if let Err(d) = &discovered {
                        tracing::warn!(upstream = upstream.0, initialize = %e, discover = %d, "neither initialize nor server/discover was accepted");
                    }
                    discovered
                }
                other => other,
            };
            outcome.map_err(|source| ConnectError::Handshake {
                peer: format!("`{command}`"),
                source: Box::new(source),
            })
        }
        Transport::Http { url } => {
            let mut custom = std::collections::HashMap::new();
            for (k, v) in headers {
                if k == http::header::AUTHORIZATION {
                    continue;
                }
                custom.insert(k.clone(), v.clone());
            }
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(custom)
                // The upstream's own concurrency limit bounds POSTs in flight, not rmcp's default of 16.
                .max_concurrent_requests(max_in_flight)
                .reinit_on_expired_session(true);
            if let Some(auth) = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
            {
                config = config.auth_header(auth.strip_prefix("Bearer ").unwrap_or(auth));
            }
            let transport = tap(
                StreamableHttpClientTransport::with_client(http.clone(), config),
                handler.progress.clone(),
            );
            handler
                .serve_with_lifecycle(transport, lifecycle(era))
                .await
                .map_err(|source| ConnectError::Handshake {
                    peer: crate::redact::shown_url(url),
                    source: Box::new(source),
                })
        }
        Transport::InProcess(server) => {
            let transport = tap(server.connect(), handler.progress.clone());
            handler
                .serve_with_lifecycle(transport, lifecycle(era))
                .await
                .map_err(|source| ConnectError::Handshake {
                    peer: "the in-process server".to_owned(),
                    source: Box::new(source),
                })
        }
        Transport::Sse { url } => {
            let (tx, rx) = crate::sse_client::connect(http, url, headers).await?;
            let transport = tap((tx, rx), handler.progress.clone());
            // HTTP+SSE servers predate `server/discover`: go straight to initialize.
            handler
                .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
                .await
                .map_err(|source| ConnectError::Handshake {
                    peer: crate::redact::shown_url(url),
                    source: Box::new(source),
                })
        }
    }
}
