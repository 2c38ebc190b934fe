//! DNS-rebinding protection: `Host` and `Origin` checked against allow-lists.
//!
//! A web page can make a browser send requests to a server on the user's
//! machine under a hostile name (DNS rebinding). Checking `Host` (and `Origin`,
//! when a browser sends one) against what the operator expects stops that. rmcp has
//! its own check for `/mcp`; Wharf turns it off and checks here instead, so every
//! route (legacy SSE, the action API) is covered by one rule.

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;
use wharf_core::Problem;

/// The compiled allow-lists.
#[derive(Debug, Clone)]
pub struct HostGuard {
    hosts: Vec<(String, Option<u16>)>,
    any_host: bool,
    origins: Vec<OriginRule>,
    any_origin: bool,
}

#[derive(Debug, Clone)]
enum OriginRule {
    Null,
    Exact {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

impl HostGuard {
    /// From `allowed_hosts` and `allowed_origins` entries; a problem names the
    /// entry (`allowed_hosts[1]`).
    pub fn new(hosts: &[String], origins: &[String]) -> Result<Self, Problem> {
        let any_host = hosts.iter().any(|h| h == "*");
        let hosts = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| *h != "*")
            .map(|(i, h)| {
                split_host_port(h).ok_or_else(|| {
                    Problem::new(
                        format!("allowed_hosts[{i}]"),
                        format!("`{h}` is not a host name or host:port"),
                    )
                })
            })
            .map(|r| r.map(|(h, p)| (normalize_host(h), p)))
            .collect::<Result<_, _>>()?;
        let any_origin = origins.iter().any(|o| o == "*");
        let origins = origins
            .iter()
            .enumerate()
            .filter(|(_, o)| *o != "*")
            .map(|(i, o)| {
                parse_origin_rule(o).ok_or_else(|| {
                    Problem::new(
                        format!("allowed_origins[{i}]"),
                        format!("`{o}` is not an origin: write scheme://host, scheme://host:port or scheme://host:*"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            hosts,
            any_host,
            origins,
            any_origin,
        })
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let Some((name, port)) = split_host_port(host) else {
            return false;
        };
        let name = normalize_host(name);
        self.hosts
            .iter()
            .any(|(h, p)| *h == name && (p.is_none() || *p == port))
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        if origin == "null" {
            return self.origins.iter().any(|r| matches!(r, OriginRule::Null));
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        let Some((host, port)) = split_host_port(rest) else {
            return false;
        };
        let port = port.or(default_port(scheme));
        let host = normalize_host(host);
        self.origins.iter().any(|r| match r {
            OriginRule::Null => false,
            OriginRule::Exact {
                scheme: s,
                host: h,
                port: p,
            } => s.eq_ignore_ascii_case(scheme) && *h == host && (p.is_none() || *p == port),
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `name`, `name:port`, `[v6]`, `[v6]:port`. `None` if malformed.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() || s.contains('/') {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let tail = &rest[end + 1..];
        return match tail {
            "" => Some((host, None)),
            t => Some((host, Some(t.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => Some((s, None)), // a bare IPv6 address
        None => Some((s, None)),
    }
}

fn parse_origin_rule(o: &str) -> Option<OriginRule> {
    if o == "null" {
        return Some(OriginRule::Null);
    }
    let (scheme, rest) = o.split_once("://")?;
    let (host, port) = match rest.strip_suffix(":*") {
        Some(host) => (host, None),
        None => {
            let (h, p) = split_host_port(rest)?;
            (h, p.or(default_port(scheme)))
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(OriginRule::Exact {
        scheme: scheme.to_ascii_lowercase(),
        host: normalize_host(host),
        port,
    })
}

/// The middleware: 403 with a plain message when `Host` or `Origin` is not allowed.
pub(crate) async fn check(
    State(guard): State<Arc<HostGuard>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = host_refused(&guard, &request) {
        return refused;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !guard.origin_allowed(origin) {
            return forbidden(&format!(
                "Origin `{origin}` is not allowed; add it to server.allowed_origins (WHARF_ALLOWED_ORIGINS)"
            ));
        }
    }
    next.run(request).await
}

/// The middleware for pages people open in a browser (`HttpConfig::pages`):
/// the `Host` check only. Their own forms post from this server's origin (or
/// `null` under `Referrer-Policy: no-referrer`), their API endpoints are open
/// to any origin by design, and cross-site posts are refused by their sealed,
/// browser-bound tickets rather than by `Origin`.
pub(crate) async fn check_host(
    State(guard): State<Arc<HostGuard>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = host_refused(&guard, &request) {
        return refused;
    }
    next.run(request).await
}

/// The 403 for a `Host` this server does not answer to.
fn host_refused(guard: &HostGuard, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if guard.host_allowed(h) => None,
        Some(h) => {
            let h = wharf_core::untrusted::shown(h);
            Some(forbidden(&format!(
                "Host `{h}` is not allowed; add it to server.allowed_hosts (WHARF_ALLOWED_HOSTS={h}). A name other than this machine's makes the server reachable from elsewhere (a tunnel, a proxy), so Wharf then also asks for an API key (MCP_API_KEY); see docs/deploy.md, \"A tunnel from a laptop\""
            )))
        }
        None => Some(forbidden("the request has no Host header")),
    }
}

fn forbidden(message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32600, "message": format!("Forbidden: {message}")}
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{loopback_hosts, loopback_origins};

    fn default_guard() -> HostGuard {
        HostGuard::new(&loopback_hosts(), &loopback_origins()).unwrap()
    }

    #[test]
    fn loopback_hosts_pass_with_any_port() {
        let g = default_guard();
        for h in [
            "localhost",
            "localhost:8000",
            "127.0.0.1:1",
            "[::1]:8000",
            "LOCALHOST",
        ] {
            assert!(g.host_allowed(h), "{h}");
        }
        for h in [
            "evil.example.com",
            "evil.example.com:8000",
            "127.0.0.1.evil.com",
            "",
            "[::1",
        ] {
            assert!(!g.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let g = HostGuard::new(
            &["a.example".into()],
            &["https://app.example".into(), "http://localhost:*".into()],
        )
        .unwrap();
        assert!(g.origin_allowed("https://app.example"));
        assert!(g.origin_allowed("https://app.example:443"));
        assert!(!g.origin_allowed("https://app.example:8443"));
        assert!(!g.origin_allowed("http://app.example"));
        assert!(g.origin_allowed("http://localhost:5173"));
        assert!(!g.origin_allowed("http://evil.example.com"));
        assert!(!g.origin_allowed("null"));
    }

    #[test]
    fn explicit_ports_are_exact() {
        let g = HostGuard::new(&["api.example:8443".into()], &[]).unwrap();
        assert!(g.host_allowed("api.example:8443"));
        assert!(!g.host_allowed("api.example:9000"));
        assert!(!g.host_allowed("api.example"));
    }

    #[test]
    fn rejects_malformed_rules() {
        assert!(HostGuard::new(&["http://x".into()], &[]).is_err());
        assert!(HostGuard::new(&[], &["x.example".into()]).is_err());
    }
}
