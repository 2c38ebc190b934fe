//! The gate in front of every MCP route: who is calling (a named API key, an
//! OAuth access token, or nobody), and whether they are over their rate limit.
//!
//! Order matters. Credentials are checked first, so that an authenticated
//! caller is limited by subject (ChatGPT's users arrive from a few shared IPs)
//! and an anonymous one by IP. A refused credential also draws from the IP's
//! bucket, so a flood of bad tokens is throttled like any other flood before it
//! can make the JWKS cache ask the issuer for keys.
//!
//! What passes is recorded in the request's extensions: the [`Principal`] (for
//! tool handlers and per-tool security), the [`AuthChallenge`] (for per-tool
//! challenges) and the [`ClientKey`] (for per-tool rate limits).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;
use wharf_core::{AuthChallenge, Principal};

use crate::{
    client_ip::TrustedProxies,
    metrics::Metrics,
    oauth::{OAuthConfig, Refusal, Verifier},
    rate_limit::{Class, Decision, Limiter},
};

/// Shortest API key accepted outside `--dev`: 32 characters is 190 bits of
/// base64, beyond guessing at any request rate.
pub const MIN_KEY_LEN: usize = 32;

/// Fewest bits a key's characters must carry, estimated from how often each
/// occurs: 32 random hex characters (`openssl rand -hex 16`) carry about 115,
/// `passwordpassword…` about 88, one letter repeated none.
pub const MIN_KEY_BITS: f64 = 96.0;

/// What templates and guides write where a key goes. Such text is public, so
/// a key holding it is no secret, whatever its length.
const PLACEHOLDERS: &[&str] = &[
    "replace",
    "changeme",
    "change-me",
    "change_me",
    "your-",
    "your_",
    "yourkey",
    "example",
    "placeholder",
    "insert",
    "todo",
    "xxxx",
    "<",
    ">",
    "{{",
    "${",
];

/// Why a key must not be used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeakKey {
    /// Template text (`replace-with-…`, `changeme`): refused even with `--dev`.
    Placeholder,
    /// Fewer than [`MIN_KEY_LEN`] characters.
    Short(usize),
    /// Too little variety to be random (its estimated bits).
    Guessable(f64),
}

impl std::fmt::Display for WeakKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Placeholder => {
                f.write_str("is placeholder text from a template, which anyone can read")
            }
            Self::Short(n) => write!(f, "is {n} characters; use at least {MIN_KEY_LEN}"),
            Self::Guessable(bits) => write!(
                f,
                "does not look random (about {bits:.0} bits; at least {MIN_KEY_BITS:.0} are needed)"
            ),
        }
    }
}

/// Why `key` must not be used, if it must not.
pub fn key_weakness(key: &str) -> Option<WeakKey> {
    let lower = key.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
        return Some(WeakKey::Placeholder);
    }
    let n = key.chars().count();
    if n < MIN_KEY_LEN {
        return Some(WeakKey::Short(n));
    }
    let mut counts = std::collections::HashMap::new();
    for c in key.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    let bits = per_char * n as f64;
    (bits < MIN_KEY_BITS).then_some(WeakKey::Guessable(bits))
}

/// A named static bearer key. The name appears in logs and as the subject; the
/// key never does.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    pub key: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// How callers prove who they are.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub api_keys: Vec<ApiKey>,
    pub oauth: Option<OAuthConfig>,
    /// Let requests without credentials through (tools decide with their
    /// security schemes). Invalid credentials are refused either way.
    pub anonymous: bool,
}

impl AuthConfig {
    /// Whether any credential is configured.
    pub fn is_on(&self) -> bool {
        !self.api_keys.is_empty() || self.oauth.is_some()
    }
}

/// The rate-limit bucket a request drew from, for per-tool limits further on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub class: Class,
    pub key: String,
}

/// The state of the gate middleware.
#[derive(Clone)]
pub(crate) struct Gate {
    pub keys: Arc<Vec<ApiKey>>,
    pub verifier: Option<Arc<Verifier>>,
    pub anonymous: bool,
    pub auth_on: bool,
    pub limiter: Arc<Limiter>,
    pub proxies: TrustedProxies,
    pub metrics: Metrics,
    pub inflight: Arc<crate::client_inflight::ClientInflight>,
}

impl Gate {
    /// The API key whose value is `token`. Every configured key is compared, in
    /// constant time, whatever matches first: the answer's timing does not say
    /// which key (or how much of one) was right.
    fn api_key(&self, token: &str) -> Option<&ApiKey> {
        let mut found = None;
        for k in self.keys.iter() {
            if bool::from(k.key.as_bytes().ct_eq(token.as_bytes())) && found.is_none() {
                found = Some(k);
            }
        }
        found
    }

    fn challenge(&self) -> Option<AuthChallenge> {
        self.verifier.as_ref().map(|v| AuthChallenge {
            resource_metadata: v.metadata_url(),
        })
    }

    /// Who the request says it is: `Ok(None)` for no credentials.
    async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Option<Principal>, Refusal> {
        let Some(value) = authorization else {
            return Ok(None);
        };
        let Some(token) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
        else {
            return Err(Refusal {
                error: "invalid_request",
                description: "use `Authorization: Bearer <token>`".into(),
                reason: "bad_scheme",
                scope: None,
            });
        };
        if let Some(k) = self.api_key(token) {
            return Ok(Some(Principal::api_key(k.name.clone())));
        }
        match &self.verifier {
            Some(v) if token.split('.').count() == 3 => v.verify(token).await.map(Some),
            _ => Err(Refusal {
                error: "invalid_token",
                description: "the token is not a valid API key".into(),
                reason: "unknown_key",
                scope: None,
            }),
        }
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer_of(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// The middleware.
pub(crate) async fn gate(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let client = gate.proxies.client(peer, request.headers());
    request
        .extensions_mut()
        .insert(wharf_core::ClientAddr(client));
    let ip = client.to_string();

    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let principal = if gate.auth_on {
        match gate.authenticate(authorization.as_deref()).await {
            Ok(Some(p)) => Some(p),
            Ok(None) if gate.anonymous => None,
            Ok(None) => {
                gate.metrics
                    .auth_failures
                    .with_label_values(&["missing"])
                    .inc();
                if let Some(r) = limit(&gate, Class::Anonymous, &ip).await {
                    return r;
                }
                return unauthorized(&gate, None);
            }
            Err(refusal) => {
                gate.metrics
                    .auth_failures
                    .with_label_values(&[refusal.reason])
                    .inc();
                if let Some(r) = limit(&gate, Class::Anonymous, &ip).await {
                    return r;
                }
                tracing::info!(reason = refusal.reason, client = %ip, "credentials refused");
                return unauthorized(&gate, Some(&refusal));
            }
        }
    } else {
        None
    };

    let key = match &principal {
        Some(p) => ClientKey {
            class: Class::Subject,
            key: p.subject.clone(),
        },
        None => ClientKey {
            class: Class::Anonymous,
            key: ip,
        },
    };
    if let Some(r) = limit(&gate, key.class, &key.key).await {
        return r;
    }
    // Held until the answer's head is ready (open streams are capped apart).
    let Some(_place) = gate.inflight.enter(&key) else {
        gate.metrics.client_inflight_refused.inc();
        return too_many_in_flight(gate.inflight.max());
    };
    if let Some(p) = principal {
        // An OAuth caller's token, for a gateway that exchanges it (RFC 8693).
        let token = bearer_of(request.headers()).map(Arc::<str>::from);
        if matches!(p.method, wharf_core::AuthMethod::OAuth { .. })
            && let Some(token) = token
        {
            request
                .extensions_mut()
                .insert(wharf_core::CallerToken(token));
        }
        request.extensions_mut().insert(p);
    }
    if let Some(c) = gate.challenge() {
        request.extensions_mut().insert(c);
    }
    request.extensions_mut().insert(key);
    next.run(request).await
}

/// `Some(response)` when the caller is over the limit (or the limiter is down
/// and fails closed).
async fn limit(gate: &Gate, class: Class, key: &str) -> Option<Response> {
    match gate.limiter.check(class, key, None).await {
        Decision::Allow => None,
        Decision::Deny { retry_after } => {
            gate.metrics
                .rate_limited
                .with_label_values(&[class.label()])
                .inc();
            Some(too_many(retry_after, class.label()))
        }
        Decision::Unavailable => Some(limiter_unavailable()),
    }
}

/// 429 with `Retry-After` (whole seconds, rounded up) and a JSON-RPC error.
pub(crate) fn too_many(retry_after: Duration, bucket: &str) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let secs = secs.max(1);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32000,
            "message": format!("Too many requests: the {bucket} rate limit is reached; retry after {secs} s"),
            "data": {"retryAfterSeconds": secs, "limit": bucket}
        }
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// 429 for a client with `server.max_requests_per_client` requests in flight.
fn too_many_in_flight(max: usize) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32000,
            "message": format!("Too many requests in flight: this client already has {max} (server.max_requests_per_client); wait for an answer before sending more"),
        }
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn limiter_unavailable() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32000, "message": "The rate limiter is unavailable and set to fail closed; retry shortly"}
    });
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// 401 (or 403 for missing scopes) with the challenge RFC 6750 and RFC 9728 ask for.
fn unauthorized(gate: &Gate, refusal: Option<&Refusal>) -> Response {
    let mut params = Vec::new();
    if let Some(v) = &gate.verifier {
        params.push(format!("resource_metadata=\"{}\"", v.metadata_url()));
    } else {
        params.push("realm=\"wharf\"".to_owned());
    }
    let (status, message) = match refusal {
        None => (
            StatusCode::UNAUTHORIZED,
            "Authentication required: send `Authorization: Bearer <token>`".to_owned(),
        ),
        Some(r) => {
            params.push(format!("error=\"{}\"", r.error));
            params.push(format!(
                "error_description=\"{}\"",
                r.description.replace('"', "'")
            ));
            if let Some(s) = &r.scope {
                params.push(format!("scope=\"{s}\""));
            }
            let status = match r.error {
                "insufficient_scope" => StatusCode::FORBIDDEN,
                "invalid_request" => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            (status, format!("{}: {}", r.error, r.description))
        }
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32001, "message": message}
    });
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid response");
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", params.join(", "))) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// `GET /.well-known/oauth-protected-resource[/path]`: RFC 9728 metadata.
pub(crate) async fn resource_metadata(State(verifier): State<Arc<Verifier>>) -> Response {
    let mut r = axum::Json(verifier.metadata()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_text_and_guessable_keys_are_weak_and_random_ones_are_not() {
        for placeholder in [
            "replace-with-the-output-of-openssl-rand-hex-32",
            "CHANGEME-0123456789abcdef0123456789abcdef",
            "your-api-key-goes-here-0123456789abcdef",
            "<paste the key here, 32 characters at least>",
        ] {
            assert_eq!(
                key_weakness(placeholder),
                Some(WeakKey::Placeholder),
                "{placeholder}"
            );
        }
        assert_eq!(key_weakness("short"), Some(WeakKey::Short(5)));
        for guessable in [&"k".repeat(40), &"password".repeat(4), &"ab".repeat(30)] {
            assert!(
                matches!(key_weakness(guessable), Some(WeakKey::Guessable(_))),
                "{guessable}"
            );
        }
        for random in [
            // openssl rand -hex 32, -hex 16 and -base64 32
            "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef",
            "3b9e1f7c2a6d4e8f0a1b2c3d4e5f6a7b",
            "q8Vt3mZ2xL9pR4sW7yB1nC6dF0gH5jK2lM8oP3rT6uE=",
            // a UUID
            "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        ] {
            assert_eq!(key_weakness(random), None, "{random}");
        }
    }
}
