//! What can go wrong talking to an upstream, classified once: the class decides
//! whether a call may be retried, whether it counts against the circuit breaker,
//! and which metric label it gets.

use std::time::Duration;

use rmcp::{
    ErrorData, service::ServiceError, transport::streamable_http_client::StreamableHttpError,
};

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
    /// The upstream answered 429 or 503 without running the request: it asks
    /// to be called again later, perhaps after `retry_after`.
    #[error("upstream `{upstream}` is busy (HTTP {status}{}){}", busy_reason(*.status), retry_hint(*.retry_after))]
    Busy {
        upstream: String,
        status: u16,
        retry_after: Option<Duration>,
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
            Self::Busy { .. } => "busy",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    /// May the call be sent again? Only when it certainly did not run, or when
    /// running it twice is harmless (`idempotent`: the tool says it is read-only
    /// or idempotent, or the method is a read).
    pub fn retryable(&self, idempotent: bool) -> bool {
        match self {
            Self::Connect { .. } => true,
            // A 429 says the request was not run; a 503 only when the server
            // says when to come back (a proxy's 503 may follow a run).
            Self::Busy {
                status,
                retry_after,
                ..
            } => *status == 429 || retry_after.is_some() || idempotent,
            Self::Timeout { .. } | Self::Transport { .. } => idempotent,
            Self::Remote { .. } | Self::CircuitOpen { .. } | Self::Unavailable { .. } => false,
        }
    }

    /// Does the failure say the upstream is unwell (and so count against its
    /// breaker)? A JSON-RPC error is the upstream working as designed, and so
    /// is its rate limit (429); an overloaded 503 is not.
    pub fn is_upstream_fault(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Busy { status, .. } => *status != 429,
            _ => false,
        }
    }

    /// How long the upstream asked to be left alone (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Busy { retry_after, .. } => *retry_after,
            _ => None,
        }
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
            // A request rmcp could not hand to the transport was not sent,
            // or was refused unrun with 429/503.
            ServiceError::TransportSend(e) => match busy(&e) {
                Some((status, retry_after)) => Self::Busy {
                    upstream,
                    status,
                    retry_after,
                },
                None => Self::Connect {
                    upstream,
                    message: tidy(e.to_string()),
                },
            },
            other => Self::Transport {
                upstream,
                message: tidy(other.to_string()),
            },
        }
    }
}

/// The status and `Retry-After` of an HTTP answer that refused the request
/// unrun (429 Too Many Requests, 503 Service Unavailable), found anywhere in
/// the error's chain.
fn busy(error: &(dyn std::error::Error + 'static)) -> Option<(u16, Option<Duration>)> {
    type HttpError = StreamableHttpError<reqwest::Error>;
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(HttpError::HttpStatus(s)) = e.downcast_ref::<HttpError>()
            && matches!(s.status, 429 | 503)
        {
            return Some((
                s.status,
                s.retry_after.as_deref().and_then(parse_retry_after),
            ));
        }
        next = e.source();
    }
    None
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn busy_reason(status: u16) -> &'static str {
    if status == 429 {
        ", the server's rate limit"
    } else {
        ", overloaded or draining"
    }
}

fn retry_hint(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!("; it asks to retry after {}s", d.as_secs().max(1)),
        None => String::new(),
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
    use std::time::{Duration, SystemTime};

    #[test]
    fn retry_after_reads_seconds_and_dates_and_nothing_else() {
        use super::parse_retry_after as parse;
        assert_eq!(parse(" 7 "), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(90);
        let asked = parse(&httpdate::fmt_http_date(later)).unwrap();
        assert!(asked > Duration::from_secs(80) && asked <= Duration::from_secs(90));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        assert_eq!(parse(&past), Some(Duration::ZERO));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
    }

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
