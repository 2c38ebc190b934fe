//! Sending a downstream client's request upstream *as that client*: its declared
//! capabilities go along (a 2026-07-28 server asks only for the input a client
//! can give), its progress token is mapped so the upstream's progress
//! notifications reach it, and an abandoned request is cancelled upstream.
//!
//! When the downstream client speaks a legacy version and the upstream asks for
//! input (an `input_required` result: elicitation, sampling, roots), the gateway
//! asks the client with the legacy server-to-client request and retries the
//! upstream call with the answers, so old clients get the same tools.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData, RoleClient, RoleServer,
    model::{
        CancelledNotificationParam, ClientRequest, ClientResult, InputRequest, InputRequests,
        InputResponses, ProgressNotificationParam, ProgressToken, RequestMetaObject, ServerRequest,
        ServerResult,
    },
    service::{Peer, PeerRequestOptions, ServiceError},
};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wharf_core::CallContext;

use crate::lane::LaneState;

/// Input rounds a relayed call may take before the gateway gives up (rmcp's
/// client uses the same order of magnitude).
pub(crate) const MAX_INPUT_ROUNDS: usize = 8;

/// Where an upstream's progress notifications go, by the upstream's progress
/// token: to the caller waiting for that request, in the order they came.
#[derive(Clone, Default)]
pub struct ProgressRoutes(Arc<Mutex<Routes>>);

#[derive(Default)]
struct Routes {
    live: HashMap<ProgressToken, mpsc::UnboundedSender<ProgressNotificationParam>>,
    /// Arrived before their request was registered (rmcp names a request's token
    /// only once it is sent, and a quick upstream answers first): held until it is.
    /// Held notifications are dropped after [`EARLY_TTL`]: their request was
    /// not one the gateway relays (a list, a health check).
    early: HashMap<ProgressToken, (Instant, Vec<ProgressNotificationParam>)>,
}

const EARLY_TTL: Duration = Duration::from_secs(10);

/// Notifications held for one token whose request is not registered yet.
const MAX_EARLY: usize = 64;
/// Tokens with notifications held; more come only from an upstream sending
/// progress for requests the gateway never made.
const MAX_EARLY_TOKENS: usize = 1024;

impl ProgressRoutes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take an upstream progress notification, in the order the connection
    /// received it (never waits).
    pub fn forward(&self, params: ProgressNotificationParam) {
        let mut routes = self.lock();
        if let Some(tx) = routes.live.get(&params.progress_token) {
            let _ = tx.send(params);
            return;
        }
        match routes.early.get_mut(&params.progress_token) {
            Some((_, held)) if held.len() < MAX_EARLY => held.push(params),
            Some(_) => {}
            None => {
                routes.early.retain(|_, (at, _)| at.elapsed() < EARLY_TTL);
                if routes.early.len() < MAX_EARLY_TOKENS {
                    let token = params.progress_token.clone();
                    routes.early.insert(token, (Instant::now(), vec![params]));
                }
            }
        }
    }

    /// Route the notifications of upstream `token` (those held first) to
    /// `caller` under its own token, or drop them when it gave none.
    fn open(
        &self,
        token: ProgressToken,
        caller: Option<(Peer<RoleServer>, ProgressToken)>,
    ) -> Flow {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut routes = self.lock();
        for p in routes
            .early
            .remove(&token)
            .map(|(_, held)| held)
            .unwrap_or_default()
        {
            let _ = tx.send(p);
        }
        routes.live.insert(token.clone(), tx);
        drop(routes);
        let task = caller.map(|(peer, theirs)| {
            tokio::spawn(async move {
                while let Some(mut p) = rx.recv().await {
                    p.progress_token = theirs.clone();
                    if peer.notify_progress(p).await.is_err() {
                        return;
                    }
                }
            })
        });
        Flow {
            routes: self.clone(),
            token,
            task,
        }
    }
}

/// One request's progress route. Dropped, it stops routing.
struct Flow {
    routes: ProgressRoutes,
    token: ProgressToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Flow {
    /// Stop routing, and wait until everything that arrived before the answer
    /// has reached the caller: its result must not overtake its progress.
    async fn close(mut self) {
        self.routes.lock().live.remove(&self.token);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        let mut routes = self.routes.lock();
        routes.live.remove(&self.token);
        routes.early.remove(&self.token);
    }
}

/// Cancels the upstream request if the caller goes away before the answer.
struct Pending<'a> {
    cancel: Option<(Peer<RoleClient>, rmcp::model::RequestId)>,
    lane: Option<(&'a LaneState, rmcp::model::RequestId)>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some((lane, id)) = &self.lane {
            lane.untrack(id);
        }
        if let Some((peer, id)) = self.cancel.take() {
            tokio::spawn(async move {
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(
                        Some(id),
                        Some("the gateway's caller went away".into()),
                    ))
                    .await;
            });
        }
    }
}

/// Send `request` on `peer` on behalf of the downstream call in `ctx`; on a
/// caller's lane, remember which of its requests this one relays.
pub(crate) async fn send(
    peer: &Peer<RoleClient>,
    request: ClientRequest,
    ctx: &CallContext,
    routes: &ProgressRoutes,
    lane: Option<&LaneState>,
) -> Result<ServerResult, ServiceError> {
    let mut meta = RequestMetaObject::default();
    if let Some(caps) = ctx.client_capabilities() {
        meta.set_client_capabilities(caps);
    }
    let options = PeerRequestOptions::no_options().with_meta(meta);
    let handle = peer.send_request_with_option(request, options).await?;
    let caller = ctx.peer().cloned().zip(ctx.progress_token());
    let flow = routes.open(handle.progress_token.clone(), caller);
    let lane = lane.zip(ctx.rpc_id()).map(|(lane, down)| {
        lane.track(handle.id.clone(), down.clone());
        (lane, handle.id.clone())
    });
    let mut pending = Pending {
        cancel: Some((peer.clone(), handle.id.clone())),
        lane,
    };
    let result = handle.await_response().await;
    pending.cancel = None;
    flow.close().await;
    result
}

/// The downstream client, when it is a legacy session that can be asked for
/// input with server-to-client requests. A 2026-07-28 client gets the
/// `input_required` result itself and answers on its retry.
pub(crate) fn legacy_client(ctx: &CallContext) -> Option<&Peer<RoleServer>> {
    // A 2026-07-28 request names its version in `_meta`; a legacy one does not.
    let modern = ctx
        .meta()
        .and_then(|m| m.protocol_version())
        .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
    ctx.peer().filter(|_| !modern)
}

/// Ask the legacy client for every input the upstream wants.
pub(crate) async fn fulfil(
    client: &Peer<RoleServer>,
    requests: InputRequests,
) -> Result<InputResponses, ErrorData> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let request = match request {
            InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
            InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
            InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
            _ => {
                return Err(ErrorData::internal_error(
                    "the upstream asked for an input this gateway cannot relay",
                    None,
                ));
            }
        };
        let answer = client.send_request(request).await.map_err(|e| match e {
            ServiceError::McpError(e) => e,
            other => ErrorData::internal_error(format!("the client did not answer: {other}"), None),
        })?;
        let value = match answer {
            ClientResult::CreateMessageResult(r) => serde_json::to_value(r),
            ClientResult::ElicitResult(r) => serde_json::to_value(r),
            ClientResult::ListRootsResult(r) => serde_json::to_value(r),
            other => serde_json::to_value(other),
        }
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        responses.insert(key, value);
    }
    Ok(responses)
}
