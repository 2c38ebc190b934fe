//! A lane's caller: what one downstream legacy session's own upstream session
//! (its lane, kept in `lanes`) knows about the caller it serves.
//!
//! A legacy (2025-x) session carries state its server keeps for it alone: the
//! server may ask the client for input in the middle of a call (sampling,
//! elicitation, roots), send it log messages at the level it set, and tell it
//! about the resources it subscribed to. On one connection shared by every
//! caller none of that can be told apart, so a legacy caller's requests to an
//! HTTP upstream go over an upstream session of its own (its lane), opened with
//! `initialize` at its first request, declaring the caller's own capabilities,
//! and closed when the caller's session ends.
//!
//! A server-to-client request arriving on a lane is asked of that caller. On
//! Streamable HTTP it arrives on the response stream of the request it belongs
//! to (rmcp marks it with that request's id), so it is asked on the response
//! stream of the caller's matching request, as the caller would see it from the
//! upstream itself.

#![allow(deprecated)] // logging and resource subscriptions are deprecated in 2026-07-28

use std::{collections::HashMap, sync::Mutex};

use rmcp::{
    ErrorData, RoleServer,
    model::{
        ClientCapabilities, ClientResult, Extensions, GetExtensions,
        LoggingMessageNotificationParam, RequestId, ResourceUpdatedNotificationParam,
        ServerRequest,
    },
    service::{InboundStreamOrigin, OriginatingRequestId, Peer, ServiceError},
};

use wharf_core::sync::lock;

use crate::progress::ProgressRoutes;

/// What a lane knows about its caller.
pub(crate) struct LaneState {
    /// The caller's session. Replaced at each request: a session resumed after
    /// a restart (or on another replica) has a new peer.
    caller: Mutex<Peer<RoleServer>>,
    /// Upstream request id → the caller's request it relays.
    calls: Mutex<HashMap<RequestId, RequestId>>,
    pub(crate) progress: ProgressRoutes,
    pub(crate) capabilities: ClientCapabilities,
}

impl LaneState {
    pub(crate) fn new(caller: Peer<RoleServer>) -> Self {
        let capabilities = caller
            .peer_info()
            .map(|i| i.capabilities.clone())
            .unwrap_or_default();
        Self {
            caller: Mutex::new(caller),
            calls: Mutex::default(),
            progress: ProgressRoutes::default(),
            capabilities,
        }
    }

    pub(crate) fn caller(&self) -> Peer<RoleServer> {
        lock(&self.caller).clone()
    }

    pub(crate) fn set_caller(&self, caller: &Peer<RoleServer>) {
        *lock(&self.caller) = caller.clone();
    }

    /// Remember that upstream request `up` relays the caller's request `down`.
    pub(crate) fn track(&self, up: RequestId, down: RequestId) {
        lock(&self.calls).insert(up, down);
    }

    pub(crate) fn untrack(&self, up: &RequestId) {
        lock(&self.calls).remove(up);
    }

    /// Ask the caller what the upstream asked the gateway.
    pub(crate) async fn ask(
        &self,
        mut request: ServerRequest,
        origin: &Extensions,
    ) -> Result<ClientResult, ErrorData> {
        if let Some(InboundStreamOrigin::OutboundRequest(up)) = origin.get::<InboundStreamOrigin>()
            && let Some(down) = lock(&self.calls).get(up).cloned()
        {
            request.extensions_mut().insert(OriginatingRequestId(down));
        }
        let caller = self.caller();
        // On a task of its own: this handler runs in rmcp's scope of the
        // upstream's request id, which would be taken for one of the caller's.
        tokio::spawn(async move { caller.send_request(request).await })
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| match e {
                ServiceError::McpError(e) => e,
                other => ErrorData::internal_error(
                    format!("the gateway's caller did not answer: {other}"),
                    None,
                ),
            })
    }

    pub(crate) async fn log(&self, params: LoggingMessageNotificationParam) {
        let _ = self.caller().notify_logging_message(params).await;
    }

    pub(crate) async fn resource_updated(&self, params: ResourceUpdatedNotificationParam) {
        let _ = self.caller().notify_resource_updated(params).await;
    }
}
