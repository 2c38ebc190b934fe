//! The 2024-11-05 HTTP+SSE transport, for clients that predate Streamable HTTP.
//!
//! `GET /sse` opens a stream whose first event (`endpoint`) names the URL to POST
//! to; each `POST /messages?sessionId=...` is answered `202 Accepted` and its
//! result arrives on the stream as a `message` event. rmcp removed this transport
//! (0.11), so it is written here: a pair of channels per connection, handed to
//! rmcp as a sink/stream transport, so the same `WharfServer` serves it.

use std::{collections::HashMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{Query, Request, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response, sse},
};
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions};
use serde::Deserialize;
use tokio::sync::{RwLock, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};
use wharf_core::WharfServer;

use crate::intake::{Intake, Posted, Refusal};

/// Messages queued per connection in each direction before a sender waits.
/// Small: a client that stops reading its stream should feel back-pressure,
/// not make the server buffer without bound.
const CHANNEL_CAPACITY: usize = 32;

/// Live HTTP+SSE connections.
#[derive(Clone)]
pub(crate) struct LegacySse {
    intake: Arc<Intake>,
    sessions: Arc<RwLock<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    max_sessions: usize,
    keep_alive: Duration,
    shutdown: CancellationToken,
}

impl LegacySse {
    pub(crate) fn new(
        intake: Arc<Intake>,
        max_sessions: usize,
        keep_alive: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            intake,
            sessions: Arc::default(),
            max_sessions,
            keep_alive,
            shutdown,
        }
    }

    pub(crate) async fn live(&self) -> usize {
        self.sessions.read().await.len()
    }
}

/// Removes the connection from the table when its stream ends, however it ends.
struct SessionGuard {
    id: String,
    table: Arc<RwLock<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    stop: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        let (id, table) = (self.id.clone(), self.table.clone());
        tokio::spawn(async move {
            table.write().await.remove(&id);
        });
    }
}

/// `GET /sse`.
pub(crate) async fn connect(State(state): State<LegacySse>, request: Request) -> Response {
    if state.live().await >= state.max_sessions {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            "the server holds its maximum number of sessions; retry later",
        )
            .into_response();
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel(CHANNEL_CAPACITY);
    state.sessions.write().await.insert(id.clone(), to_server);

    let stop = state.shutdown.child_token();
    let sink =
        PollSender::new(to_client).sink_map_err(|_| std::io::Error::other("SSE stream closed"));
    let transport = (sink, ReceiverStream::new(from_client));
    let server = WharfServer::new(state.intake.app.clone());
    let service_stop = stop.clone();
    tokio::spawn(async move {
        match rmcp::service::serve_server_with_ct(server, transport, service_stop).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!(error = %e, "legacy SSE session ended before initialize"),
        }
    });

    // The endpoint is relative, so it works behind any proxy prefix the client used.
    let base = request.uri().path().trim_end_matches("/sse");
    let endpoint = format!("{base}/messages?sessionId={id}");
    let guard = SessionGuard {
        id,
        table: state.sessions.clone(),
        stop: stop.clone(),
    };
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(sse::Event::default().event("endpoint").data(endpoint))
    });
    let messages = ReceiverStream::new(from_server)
        .map(move |message: rmcp::model::ServerJsonRpcMessage| {
            let _held = &guard;
            let data = serde_json::to_string(&message).unwrap_or_default();
            Ok(sse::Event::default().event("message").data(data))
        })
        .take_until(stop.cancelled_owned());
    let stream = first.chain(messages);
    let mut response = sse::Sse::new(stream)
        .keep_alive(sse::KeepAlive::new().interval(state.keep_alive))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=...`.
pub(crate) async fn post(
    State(state): State<LegacySse>,
    Query(query): Query<SessionQuery>,
    request: Request,
) -> Response {
    let Some(id) = query.session_id else {
        return plain(
            StatusCode::BAD_REQUEST,
            "missing `sessionId` query parameter: use the URL from the `endpoint` event of GET /sse",
        );
    };
    let Some(sender) = state.sessions.read().await.get(&id).cloned() else {
        return plain(
            StatusCode::NOT_FOUND,
            "unknown or closed session: open a new stream with GET /sse",
        );
    };
    let (parts, body) = request.into_parts();
    let bytes = match state.intake.read(&parts.headers, body).await {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    let message = match crate::intake::parse(&bytes) {
        Ok(Posted::Message(m)) => m,
        Ok(_) => {
            return Refusal::invalid("the HTTP+SSE transport takes one JSON-RPC message per POST")
                .into_response();
        }
        Err(refusal) => return refusal.into_response(),
    };
    let tool = state.intake.resolve(&message);
    let info = crate::intake::info(&message, tool.as_ref());
    if let Some(t) = &tool
        && let Err(mut r) = state.intake.admit_tool(&parts, t.name()).await
    {
        r.extensions_mut().insert(info);
        return r;
    }
    let mut message: ClientJsonRpcMessage = match serde_json::from_str(message.raw.get()) {
        Ok(m) => m,
        Err(e) => {
            let mut r = Refusal::new(
                StatusCode::BAD_REQUEST,
                -32602,
                format!(
                    "invalid params: {}",
                    wharf_core::untrusted::abridged(&e.to_string())
                ),
            )
            .with_id(message.id.clone())
            .into_response();
            r.extensions_mut().insert(info);
            return r;
        }
    };
    if let ClientJsonRpcMessage::Request(request) = &mut message {
        request.request.extensions_mut().insert(parts);
    }
    if sender.send(message).await.is_err() {
        return plain(
            StatusCode::NOT_FOUND,
            "the session has closed: open a new stream with GET /sse",
        );
    }
    let mut accepted = StatusCode::ACCEPTED.into_response();
    accepted.extensions_mut().insert(info);
    accepted
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}
