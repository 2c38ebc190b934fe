//! The client side of the 2024-11-05 HTTP+SSE transport: GET a stream whose first
//! event (`endpoint`) names where to POST; every answer comes back on the stream.
//!
//! rmcp removed this transport (0.11) on both sides; Wharf serves it
//! (`wharf-http/src/legacy_sse.rs`) and speaks it here, as a Sink/Stream pair that
//! rmcp accepts as a transport. See docs/design/gateway.md.

use std::time::Duration;

use futures::{Stream, StreamExt};
use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
};
use sse_stream::SseStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;

/// Messages queued each way before the sender waits: the POST side is bounded by
/// the upstream's concurrency limit anyway; the stream side by the reader.
const QUEUE: usize = 64;

/// How long the server has to send its `endpoint` event.
const ENDPOINT_WAIT: Duration = Duration::from_secs(10);

/// Why the stream did not give a place to POST to. The URL is shown without
/// its query or credentials ([`crate::redact::shown_url`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SseConnectError {
    #[error("GET {url}: {source}")]
    Get { url: String, source: reqwest::Error },
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("reading {url}: {message}")]
    Read { url: String, message: String },
    #[error("{url}: the endpoint event has no data")]
    EmptyEndpoint { url: String },
    #[error("{url}: the stream ended before an endpoint event")]
    Ended { url: String },
    #[error("{url}: no endpoint event within {}s", ENDPOINT_WAIT.as_secs())]
    NoEndpoint { url: String },
    #[error("{url}: bad endpoint `{endpoint}`: {source}")]
    BadEndpoint {
        url: String,
        endpoint: String,
        source: url::ParseError,
    },
}

/// Open the stream, wait for the endpoint, and return the pair rmcp serves.
pub(crate) async fn connect(
    http: &reqwest::Client,
    url: &str,
    headers: &http::HeaderMap,
) -> Result<
    (
        PollSender<TxJsonRpcMessage<RoleClient>>,
        impl Stream<Item = RxJsonRpcMessage<RoleClient>> + Send + Unpin + 'static,
    ),
    SseConnectError,
> {
    let shown = || crate::redact::shown_url(url);
    let response = http
        .get(url)
        .headers(headers.clone())
        .header(http::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|source| SseConnectError::Get {
            url: shown(),
            source: source.without_url(),
        })?;
    if !response.status().is_success() {
        return Err(SseConnectError::Status {
            url: shown(),
            status: response.status(),
        });
    }
    let mut events = SseStream::from_bytes_stream(response.bytes_stream());
    let endpoint = tokio::time::timeout(ENDPOINT_WAIT, async {
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| SseConnectError::Read {
                url: shown(),
                message: e.to_string(),
            })?;
            if event.event.as_deref() == Some("endpoint") {
                return event
                    .data
                    .ok_or_else(|| SseConnectError::EmptyEndpoint { url: shown() });
            }
        }
        Err(SseConnectError::Ended { url: shown() })
    })
    .await
    .map_err(|_| SseConnectError::NoEndpoint { url: shown() })??;
    let post_to = url::Url::parse(url)
        .and_then(|base| base.join(endpoint.trim()))
        .map_err(|source| SseConnectError::BadEndpoint {
            url: shown(),
            endpoint: crate::redact::shown_url(&endpoint),
            source,
        })?;

    let (in_tx, in_rx) = tokio::sync::mpsc::channel(QUEUE);
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data) {
                Ok(message) => {
                    if in_tx.send(message).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable message on an HTTP+SSE stream"),
            }
        }
        // Dropping the sender ends the stream: rmcp sees the transport close.
    });

    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<TxJsonRpcMessage<RoleClient>>(QUEUE);
    let http = http.clone();
    let headers = headers.clone();
    tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let sent = http
                .post(post_to.clone())
                .headers(headers.clone())
                .json(&message)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "an HTTP+SSE POST was refused");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an HTTP+SSE POST failed");
                    break;
                }
            }
        }
    });
    Ok((PollSender::new(out_tx), ReceiverStream::new(in_rx)))
}
