//! Sending a downstream client's request upstream *as that client*: its declared
//! capabilities go along (a 2026-07-28 server asks only for the input a client
//! can give), its progress token is mapped so the upstream's progress
//! notifications reach it, and an abandoned request is cancelled upstream.
//!
//! When the downstream client speaks a legacy version and the upstream asks for
//! input (an `input_required` result: elicitation, sampling, roots), the gateway
//! asks the client with the legacy server-to-client request and retries the
//! upstream call with the answers, so old clients get the same tools.

use rmcp::{
    ErrorData, RoleClient, RoleServer,
    model::{
        CancelledNotificationParam, ClientRequest, ClientResult, InputRequest, InputRequests,
        InputResponses, RequestMetaObject, ServerRequest, ServerResult,
    },
    service::{Peer, PeerRequestOptions, ServiceError},
};
use wharf_core::CallContext;

use crate::{lane::LaneState, progress::ProgressRoutes};

/// Input rounds a relayed call may take before the gateway gives up (rmcp's
/// client uses the same order of magnitude).
pub(crate) const MAX_INPUT_ROUNDS: usize = 8;

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
