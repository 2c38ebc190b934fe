//! HTTPS policy: HSTS on every answer given over HTTPS, and, with
//! `--require-https`, a refusal of plain-HTTP requests. Behind a TLS-terminating
//! proxy the request counts as HTTPS when the proxy is trusted
//! (`server.trusted_proxies`) and says `X-Forwarded-Proto: https`; anyone else's
//! header is ignored.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::client_ip::TrustedProxies;

/// Two years, the value the HSTS preload list asks for.
const HSTS: &str = "max-age=63072000; includeSubDomains";

#[derive(Clone)]
pub(crate) struct HttpsPolicy {
    /// This process terminates TLS itself.
    pub native_tls: bool,
    pub require: bool,
    pub proxies: TrustedProxies,
}

impl HttpsPolicy {
    fn is_https(&self, request: &Request) -> bool {
        if self.native_tls {
            return true;
        }
        let Some(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return false;
        };
        self.proxies.trusts_peer(peer.0)
            && request
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }
}

pub(crate) async fn enforce(
    State(policy): State<HttpsPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let https = policy.is_https(&request);
    if policy.require && !https {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": "HTTPS is required: connect with https:// (a TLS-terminating proxy must be listed in server.trusted_proxies and send X-Forwarded-Proto: https)"}
        });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let mut response = next.run(request).await;
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}
