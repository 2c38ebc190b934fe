//! What can go wrong talking to an upstream, classified once: the class decides
//! whether a call may be retried, whether it counts against the circuit breaker,
//! and which metric label it gets.

use std::time::Duration;

use rmcp::{ErrorData, service::ServiceError};

/// A failed call to an upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Nothing was sent: the server could not be reached or started. Safe to retry.
    #[error("cannot connect to upstream `{upstream}`: {message}")]
    Connect { upstream: String, message: String },
    /// The request was sent and no answer came in time. It may have run.
    #[error("upstream `{upstream}` did not answer within {}", humantime::format_duration(*.after))]
    Timeout { upstream: String, after: Duration },
    /// The connection broke after the request was sent. It may have run.
    #[error("upstream `{upstream}` failed mid-request: {message}")]
    Transport { upstream: String, message: String },
    /// The upstream answered with a JSON-RPC error: it is up, the request was refused.
    #[error("upstream `{upstream}` refused the request: {}", .error.message)]
    Remote { upstream: String, error: ErrorData },
    /// The circuit breaker is open: the call was not attempted.
    #[error(
        "upstream `{upstream}` is unavailable (circuit open after repeated failures; next try in {}s)",
        .retry_in.as_secs().max(1)
    )]
    CircuitOpen {
        upstream: String,
        retry_in: Duration,
    },
    /// The upstream is disabled in the configuration or not connected yet.
    #[error("upstream `{upstream}` is unavailable: {reason}")]
    Unavailable { upstream: String, reason: String },
}

impl UpstreamError {
    /// The metric label of the error.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Remote { .. } => "remote",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    /// May the call be sent again? Only when it certainly did not run, or when
    /// running it twice is harmless (`idempotent`: the tool says it is read-only
    /// or idempotent, or the method is a read).
    pub fn retryable(&self, idempotent: bool) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Timeout { .. } | Self::Transport { .. } => idempotent,
            Self::Remote { .. } | Self::CircuitOpen { .. } | Self::Unavailable { .. } => false,
        }
    }

    /// Does the failure say the upstream is unwell (and so count against its
    /// breaker)? A JSON-RPC error is the upstream working as designed.
    pub fn is_upstream_fault(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    /// Has the connection to be thrown away and made again?
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Transport { .. })
    }

    /// The same error with every secret of its upstream scrubbed out of its
    /// text (see `redact`).
    pub(crate) fn scrubbed(self, redactor: &crate::redact::Redactor) -> Self {
        match self {
            Self::Connect { upstream, message } => Self::Connect {
                upstream,
                message: redactor.scrub(&message),
            },
            Self::Transport { upstream, message } => Self::Transport {
                upstream,
                message: redactor.scrub(&message),
            },
            Self::Unavailable { upstream, reason } => Self::Unavailable {
                upstream,
                reason: redactor.scrub(&reason),
            },
            Self::Remote {
                upstream,
                mut error,
            } => {
                error.message = redactor.scrub(&error.message).into();
                Self::Remote { upstream, error }
            }
            other => other,
        }
    }

    pub(crate) fn from_service(upstream: &str, error: ServiceError) -> Self {
        let upstream = upstream.to_owned();
        match error {
            ServiceError::McpError(error) => Self::Remote { upstream, error },
            ServiceError::Timeout { timeout } => Self::Timeout {
                upstream,
                after: timeout,
            },
            // A request rmcp could not hand to the transport was not sent.
            ServiceError::TransportSend(e) => Self::Connect {
                upstream,
                message: tidy(e.to_string()),
            },
            other => Self::Transport {
                upstream,
                message: tidy(other.to_string()),
            },
        }
    }
}

/// rmcp's transport errors name every transport type they pass through; keep
/// what a person (or a model) can act on: the request error and the step it
/// happened in.
pub(crate) fn tidy(message: String) -> String {
    // "Send message error Transport [a::B<c::D<…>>] error: HTTP 429, when send
    // discover request": the type names say nothing to a person.
    let message = match message.find("Transport [") {
        Some(open) => {
            let mut depth = 0usize;
            let close = message[open..].char_indices().find_map(|(i, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(open + i);
                        }
                    }
                    _ => {}
                }
                None
            });
            match close {
                Some(close) => {
                    let rest = message[close + 1..].trim_start();
                    rest.strip_prefix("error:")
                        .unwrap_or(rest)
                        .trim_start()
                        .to_owned()
                }
                None => message,
            }
        }
        None => message,
    };
    let rest = match message.find("Client error: ") {
        Some(start) => &message[start + "Client error: ".len()..],
        None => message.as_str(),
    };
    let rest = rest.replace("HTTP 429", "HTTP 429 (the server's rate limit)");
    match rest.find(", when ") {
        Some(i) => format!(
            "{} (during the {})",
            &rest[..i],
            rest[i + 7..].trim_start_matches("send ")
        ),
        None => rest,
    }
}

/// A tool that says running it twice is harmless: read-only or idempotent.
/// Only such a call is repeated after a failure that may have let it run.
pub fn safe_to_repeat(tool: &rmcp::model::Tool) -> bool {
    tool.annotations
        .as_ref()
        .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true))
}

#[cfg(test)]
mod tidy_tests {
    #[test]
    fn type_names_and_transport_plumbing_leave_the_message() {
        assert_eq!(
            super::tidy("Send message error Transport [wharf_gateway::connect::ProgressTap<rmcp::transport::worker::WorkerTransport<rmcp::X<reqwest::Client>>>] error: HTTP 429, when send discover request".into()),
            "HTTP 429 (the server's rate limit) (during the discover request)"
        );
        assert_eq!(
            super::tidy("Transport error: Client error: error sending request for url (http://h/mcp), when send initialize request".into()),
            "error sending request for url (http://h/mcp) (during the initialize request)"
        );
        assert_eq!(super::tidy("plain".into()), "plain");
    }
}
