//! `wharf stdio`: the app on stdin and stdout, one JSON-RPC message per line
//! (log lines go to stderr). rmcp serves the session; the lines are read here,
//! by the rules every transport follows (`wharf_core::jsonrpc`), so a line that
//! is not a message gets the JSON-RPC error a client can read (rmcp's own
//! stdio transport skipped it without a word, and the client waited), and no
//! line can be longer than `server.max_body_bytes`.

use std::sync::Arc;

use anyhow::Context;
use futures::SinkExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;
use wharf_core::{
    App, WharfServer,
    jsonrpc::{Malformed, Shape},
};

use crate::config::{Config, SessionStoreKind};

/// Messages queued each way before the other side waits.
const QUEUE: usize = 32;

pub(crate) async fn stdio(mut config: Config, app: Option<Arc<App>>) -> anyhow::Result<()> {
    // stdio has no HTTP sessions to store.
    config.session_store = SessionStoreKind::Memory;
    // The gateway (its health checks) and the audit writer live as long as the session.
    let built = crate::apps::build(&config, app, true).await?;
    let app = built.app.clone();
    tracing::info!(tools = app.offer().tools().count(), "serving MCP on stdio");
    let (transport, written) = transport(
        tokio::io::stdin(),
        tokio::io::stdout(),
        config.http.max_body_bytes,
    );
    let running = rmcp::service::serve_server(WharfServer::new(app), transport)
        .await
        .context("the client did not complete the MCP handshake on stdio")?;
    running.waiting().await.context("stdio session failed")?;
    // Every answer out before the process ends.
    let _ = written.await;
    if let Some(audit) = &built.audit {
        audit.flush(crate::serve::AUDIT_FLUSH).await;
    }
    Ok(())
}

/// A transport over `input` and `output`, and the writer's task (done once
/// everything queued is written).
fn transport<R, W>(
    input: R,
    output: W,
    max_line: usize,
) -> (
    (
        impl futures::Sink<ServerJsonRpcMessage, Error = std::io::Error> + Send + Unpin + 'static,
        ReceiverStream<ClientJsonRpcMessage>,
    ),
    tokio::task::JoinHandle<()>,
)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(QUEUE);
    // Serialized lines: rmcp's messages, and the errors of lines that never
    // reached rmcp.
    let (to_client, mut outgoing) = mpsc::channel::<Vec<u8>>(QUEUE);
    let refusals = to_client.clone();
    tokio::spawn(read_lines(
        BufReader::new(input),
        max_line,
        to_server,
        refusals,
    ));
    let written = tokio::spawn(async move {
        let mut output = output;
        while let Some(mut line) = outgoing.recv().await {
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                return;
            }
        }
    });
    let sink = PollSender::new(to_client)
        .sink_map_err(|_| std::io::Error::other("stdout closed"))
        .with(|m: ServerJsonRpcMessage| {
            futures::future::ready(serde_json::to_vec(&m).map_err(std::io::Error::other))
        });
    ((Box::pin(sink), ReceiverStream::new(from_client)), written)
}

/// Read lines until the input ends: each message to rmcp, each refusal to the
/// client.
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut input: R,
    max_line: usize,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    refusals: mpsc::Sender<Vec<u8>>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let refusal = match read_line(&mut input, &mut line, max_line).await {
            Ok(Read::End) | Err(_) => return,
            Ok(Read::TooLong) => Some(Malformed {
                code: -32600,
                message: format!("a line longer than {max_line} bytes (server.max_body_bytes)"),
                id: None,
            }),
            Ok(Read::Line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Read::Line) => match take(&line) {
                Ok(message) => {
                    if to_server.send(message).await.is_err() {
                        return;
                    }
                    None
                }
                Err(refused) => Some(refused),
            },
        };
        if let Some(m) = refusal
            && let Ok(line) = serde_json::to_vec(&m.to_response())
            && refusals.send(line).await.is_err()
        {
            return;
        }
    }
}

/// One line as a message rmcp takes, or the error to answer.
fn take(line: &[u8]) -> Result<ClientJsonRpcMessage, Malformed> {
    match wharf_core::jsonrpc::read(line)? {
        Shape::Message(m) => serde_json::from_slice(line).map_err(|e| Malformed {
            code: -32602,
            message: format!(
                "invalid params: {}",
                wharf_core::untrusted::abridged(&e.to_string())
            ),
            id: m.id,
        }),
        Shape::Batch(_) => Err(Malformed {
            code: -32600,
            message: "send one message per line: batches are not taken on stdio".into(),
            id: None,
        }),
        Shape::NotJsonRpc(_) => Err(Malformed {
            code: -32600,
            message: "not a JSON-RPC message: `jsonrpc` must be \"2.0\"".into(),
            id: None,
        }),
    }
}

enum Read {
    Line,
    TooLong,
    End,
}

/// One line into `buf` (without its newline), at most `max` bytes; a longer
/// one is read to its end and dropped.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                Read::End
            } else if too_long {
                Read::TooLong
            } else {
                Read::Line
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long && buf.len() + chunk.len() <= max {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
            buf.clear();
        }
        let used = done.unwrap_or(available.len());
        input.consume(used);
        if done.is_some() {
            return Ok(if too_long { Read::TooLong } else { Read::Line });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::Value;

    #[tokio::test]
    async fn a_line_that_is_not_a_message_gets_a_json_rpc_error() {
        let input: &[u8] = b"{\n\n[]\n{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}\n{\"hello\":1}\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n";
        let (client_end, mut answers) = tokio::io::duplex(64 * 1024);
        let ((_sink, mut messages), written) = transport(input, client_end, 1024);
        // The one good message reaches the server.
        let m = messages.next().await.expect("the ping");
        assert!(matches!(m, ClientJsonRpcMessage::Request(_)));
        assert!(messages.next().await.is_none(), "the input ended");
        drop(messages);
        drop(_sink);
        written.await.unwrap();
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut answers, &mut text)
            .await
            .unwrap();
        let codes: Vec<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["error"]["code"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(codes, [-32700, -32600, -32600, -32600], "{text}");
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_refused_and_the_next_one_read() {
        let long = format!(
            "{}\n{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n",
            "x".repeat(5000)
        );
        let mut input = BufReader::new(long.as_bytes());
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut input, &mut buf, 1024).await.unwrap(),
            Read::TooLong
        ));
        buf.clear();
        assert!(matches!(
            read_line(&mut input, &mut buf, 1024).await.unwrap(),
            Read::Line
        ));
        assert!(take(&buf).is_ok());
        buf.clear();
        assert!(matches!(
            read_line(&mut input, &mut buf, 1024).await.unwrap(),
            Read::End
        ));
    }
}
