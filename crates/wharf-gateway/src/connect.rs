//! Opening one connection to an upstream, whatever its transport, with rmcp's
//! client: the protocol era is detected as 2026-07-28 says (`server/discover`
//! first, `initialize` when the server turns out to be older).

use std::{process::Stdio, sync::Arc};

use rmcp::{
    ClientHandler, RoleClient,
    model::{ClientConfig, Implementation, ProtocolVersion},
    service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Notify;

use crate::{
    config::{Era, Transport},
    relay::ProgressRoutes,
};

/// One live connection.
pub type Connection = RunningService<RoleClient, UpstreamHandler>;

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
/// notifications go.
#[derive(Clone)]
pub struct UpstreamHandler {
    info: Implementation,
    changed: Arc<Announced>,
    progress: ProgressRoutes,
}

impl UpstreamHandler {
    pub fn new(client_name: &str, changed: Arc<Announced>, progress: ProgressRoutes) -> Self {
        Self {
            info: Implementation::new(client_name.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            changed,
            progress,
        }
    }
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(Default::default(), self.info.clone())
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.progress.forward(params).await;
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

/// rmcp's handshake errors name every transport type they pass through; keep
/// what a person can act on (the request error and the step it happened in).
fn tidy(message: String) -> String {
    let Some(start) = message.find("Client error: ") else {
        return message;
    };
    let rest = &message[start + "Client error: ".len()..];
    match rest.find(", when ") {
        Some(i) => format!(
            "{} (during the {})",
            &rest[..i],
            rest[i + 7..].trim_start_matches("send ")
        ),
        None => rest.to_owned(),
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

/// Connect and complete the handshake. `http` is the upstream's own client, so
/// its keep-alive pool is reused across reconnections.
pub async fn connect(
    transport: &Transport,
    era: Era,
    headers: &http::HeaderMap,
    http: &reqwest::Client,
    handler: UpstreamHandler,
    max_in_flight: usize,
) -> Result<Connection, String> {
    match transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env).kill_on_drop(true);
            if let Some(dir) = cwd {
                cmd.current_dir(dir);
            }
            let (child, _) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start `{command}`: {e}"))?;
            handler
                .serve_with_lifecycle(child, lifecycle(era))
                .await
                .map_err(|e| format!("`{command}` did not complete the MCP handshake: {e}"))
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
            let transport = StreamableHttpClientTransport::with_client(http.clone(), config);
            handler
                .serve_with_lifecycle(transport, lifecycle(era))
                .await
                .map_err(|e| tidy(format!("{url}: {e}")))
        }
        Transport::Sse { url } => {
            let (tx, rx) = crate::sse_client::connect(http, url, headers).await?;
            // HTTP+SSE servers predate `server/discover`: go straight to initialize.
            handler
                .serve_with_lifecycle((tx, rx), ClientLifecycleMode::Initialize)
                .await
                .map_err(|e| format!("{url}: {e}"))
        }
    }
}
