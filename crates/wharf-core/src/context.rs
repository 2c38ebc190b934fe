//! What a handler knows about the call it is serving.
//!
//! Over MCP the context carries rmcp's `RequestContext` (the peer, for progress,
//! logging, sampling and elicitation; the request `_meta`; cancellation). Over the
//! JSON action API there is no MCP peer, so those parts are absent and handlers
//! that need them must say so with a clear tool error.

// A legacy session's log level: logging is deprecated in 2026-07-28.
#![allow(deprecated)]

use rmcp::{
    RoleServer,
    model::{
        ClientCapabilities, Extensions, InputResponses, LoggingLevel, ProgressToken, RequestId,
        RequestMetaObject,
    },
    service::{Peer, RequestContext},
};
use tokio_util::sync::CancellationToken;

/// The context of one tool call, resource read or prompt request.
pub struct CallContext {
    call_id: String,
    request: Option<RequestContext<RoleServer>>,
    /// A stateless request answered without rmcp's service (the HTTP fast path):
    /// its JSON-RPC id and `_meta`, and no peer.
    direct: Option<Direct>,
    extensions: Extensions,
    cancel: CancellationToken,
    input_responses: Option<InputResponses>,
    request_state: Option<String>,
    session: Option<Session>,
    /// Seals `requestState` with the app's key (set by the app for every call).
    seal: Option<crate::request_state::StateSeal>,
}

#[derive(Debug)]
struct Direct {
    id: RequestId,
    meta: RequestMetaObject,
}

/// The MCP session a call belongs to, as the server that received it knows it.
#[derive(Debug, Clone, Copy)]
struct Session {
    id: SessionId,
    log_level: Option<LoggingLevel>,
}

/// Names one session of one server process (one `WharfServer`); unique for the
/// life of the process, never sent anywhere. A gateway keys its per-session
/// upstream connections by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    /// A new id, never handed out before in this process.
    pub fn next() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("call_id", &self.call_id)
            .field("mcp", &self.request.is_some())
            .field("direct", &self.direct.is_some())
            .finish()
    }
}

impl CallContext {
    /// A context for a call arriving over MCP.
    pub fn from_mcp(mut request: RequestContext<RoleServer>) -> Self {
        let extensions = std::mem::take(&mut request.extensions);
        let cancel = request.ct.clone();
        let call_id = call_id_of(&extensions);
        Self {
            call_id,
            request: Some(request),
            direct: None,
            extensions,
            cancel,
            input_responses: None,
            request_state: None,
            session: None,
            seal: None,
        }
    }

    /// A context for a call that did not arrive over MCP (the JSON action API,
    /// tests, the gateway's own probes). `extensions` carries what the transport
    /// knows, such as the HTTP request parts.
    pub fn detached(extensions: Extensions) -> Self {
        let call_id = call_id_of(&extensions);
        Self {
            call_id,
            request: None,
            direct: None,
            extensions,
            cancel: CancellationToken::new(),
            input_responses: None,
            request_state: None,
            session: None,
            seal: None,
        }
    }

    /// A context for a stateless (2026-07-28) request that the transport
    /// answers without rmcp's service loop. There is no peer: the transport takes
    /// this path only when the request asks for nothing a peer would carry
    /// (no progress token, no log level), so a handler sees the same request.
    pub fn direct(
        id: RequestId,
        meta: RequestMetaObject,
        extensions: Extensions,
        cancel: CancellationToken,
    ) -> Self {
        let call_id = call_id_of(&extensions);
        Self {
            call_id,
            request: None,
            direct: Some(Direct { id, meta }),
            extensions,
            cancel,
            input_responses: None,
            request_state: None,
            session: None,
            seal: None,
        }
    }

    /// Attach what a client sent back after an `InputRequiredResult` (2026-07-28
    /// multi round-trip requests).
    pub fn with_retry(
        mut self,
        input_responses: Option<InputResponses>,
        request_state: Option<String>,
    ) -> Self {
        self.input_responses = input_responses;
        self.request_state = request_state;
        self
    }

    /// Seal `requestState` with `seal` (the app's key).
    pub(crate) fn with_seal(mut self, seal: crate::request_state::StateSeal) -> Self {
        self.seal = Some(seal);
        self
    }

    /// `value` sealed as a `requestState` to hand the client with an
    /// `InputRequiredResult`: only this server (or a replica with the same
    /// `server.state_key`) can open it.
    pub fn seal_state<T: serde::Serialize>(&self, value: &T) -> Result<String, crate::ToolError> {
        self.seal
            .as_ref()
            .ok_or_else(|| crate::ToolError::internal("no requestState key for this call"))?
            .seal(value)
    }

    /// The `requestState` the client sent back, opened; `None` on a first
    /// round. One that fails its integrity check is an invalid-params error.
    pub fn open_state<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<Option<T>, crate::ToolError> {
        let Some(sealed) = self.request_state() else {
            return Ok(None);
        };
        self.seal
            .as_ref()
            .ok_or_else(|| crate::ToolError::internal("no requestState key for this call"))?
            .open(sealed)
            .map(Some)
    }

    /// Say which session the call belongs to and the log level it asked for.
    pub fn with_session(mut self, id: SessionId, log_level: Option<LoggingLevel>) -> Self {
        self.session = Some(Session { id, log_level });
        self
    }

    /// The session the call belongs to, when the server keeps sessions for
    /// this transport.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session.map(|s| s.id)
    }

    /// The level the session asked for with `logging/setLevel`, if it did.
    pub fn session_log_level(&self) -> Option<LoggingLevel> {
        self.session.and_then(|s| s.log_level)
    }

    /// The client's answers to the input requests of a previous round, by key.
    pub fn input_responses(&self) -> Option<&InputResponses> {
        self.input_responses.as_ref()
    }

    /// The opaque state echoed back from a previous round. Untrusted: verify it.
    pub fn request_state(&self) -> Option<&str> {
        self.request_state.as_deref()
    }

    /// A unique id for this call, also written to the log line for it.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The MCP peer, when the call came over MCP.
    pub fn peer(&self) -> Option<&Peer<RoleServer>> {
        self.request.as_ref().map(|r| &r.peer)
    }

    /// rmcp's request context, when the call came over MCP.
    pub fn mcp(&self) -> Option<&RequestContext<RoleServer>> {
        self.request.as_ref()
    }

    /// The request's `_meta`, when the call came over MCP.
    pub fn meta(&self) -> Option<&RequestMetaObject> {
        match (&self.request, &self.direct) {
            (Some(r), _) => Some(&r.meta),
            (None, Some(d)) => Some(&d.meta),
            (None, None) => None,
        }
    }

    pub fn progress_token(&self) -> Option<ProgressToken> {
        self.meta().and_then(RequestMetaObject::get_progress_token)
    }

    /// What the client can do: from the request's `_meta` (2026-07-28) or the
    /// session's `initialize` (legacy).
    pub fn client_capabilities(&self) -> Option<ClientCapabilities> {
        match (&self.request, &self.direct) {
            (Some(r), _) => r.client_capabilities(),
            (None, Some(d)) => d.meta.client_capabilities(),
            (None, None) => None,
        }
    }

    /// What the transport attached: `http::request::Parts` over HTTP, and
    /// whatever the HTTP layers inserted into it (the authenticated identity).
    /// The caller the transport authenticated, if any. The HTTP layer puts it in the
    /// request's extensions; rmcp hands tools the HTTP request parts.
    pub fn principal(&self) -> Option<&crate::Principal> {
        self.transport_extension::<crate::Principal>()
    }

    /// The OAuth access token the caller presented (not an API key's), if any.
    pub fn caller_token(&self) -> Option<&str> {
        self.transport_extension::<crate::CallerToken>()
            .map(|t| &*t.0)
    }

    /// How to challenge this caller for credentials, when the transport knows.
    pub fn auth_challenge(&self) -> Option<&crate::AuthChallenge> {
        self.transport_extension::<crate::AuthChallenge>()
    }

    /// The client's address as the transport saw it (behind trusted proxies, the
    /// forwarded one); `None` over stdio.
    pub fn client(&self) -> Option<std::net::IpAddr> {
        self.transport_extension::<ClientAddr>().map(|c| c.0)
    }

    /// The named endpoint the request arrived at (`/mcp/{name}`), if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.transport_extension::<Endpoint>().map(|e| &*e.0)
    }

    /// The JSON-RPC id of the request, when the call came over MCP.
    pub fn rpc_id(&self) -> Option<&RequestId> {
        match (&self.request, &self.direct) {
            (Some(r), _) => Some(&r.id),
            (None, Some(d)) => Some(&d.id),
            (None, None) => None,
        }
    }

    /// The span the transport opened for this request, when it traces requests
    /// (a tool call's span then joins the caller's trace).
    pub fn trace_parent(&self) -> Option<&tracing::Span> {
        self.transport_extension::<ParentSpan>().map(|s| &s.0)
    }

    fn transport_extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        transport_extension(&self.extensions)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// `value` attached for whoever handles the call next (a gateway attaches
    /// the upstream credentials it chose for the caller).
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Cancelled when the client cancels the request or the server shuts down.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// A call id chosen by the transport (so the HTTP layer can return it in a
/// header and log it); when absent, the context mints one.
#[derive(Debug, Clone)]
pub struct CallId(pub String);

/// The client's IP address, as the transport determined it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The transport's span for the request carrying a call (its trace context came
/// from the HTTP headers or the request `_meta`).
#[derive(Debug, Clone)]
pub struct ParentSpan(pub tracing::Span);

/// The named endpoint a request arrived at (`/mcp/{name}`: a gateway's virtual
/// server); absent at `/mcp` and over stdio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(pub std::sync::Arc<str>);

/// `T` from the extensions, or from the HTTP request parts inside them (rmcp
/// hands handlers the parts, with whatever the HTTP layers inserted).
fn transport_extension<T: Send + Sync + 'static>(extensions: &Extensions) -> Option<&T> {
    extensions.get::<T>().or_else(|| {
        extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<T>())
    })
}

fn call_id_of(extensions: &Extensions) -> String {
    transport_extension::<CallId>(extensions).map_or_else(new_call_id, |c| c.0.clone())
}

fn new_call_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
