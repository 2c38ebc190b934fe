//! The gateway as an OAuth 2.1 client of an upstream that wants each user's own
//! token: the upstream's authorization server discovered (RFC 9728 protected-
//! resource metadata, then RFC 8414 or OpenID Connect discovery), the gateway
//! registered with it (configured credentials, or RFC 7591 dynamic
//! registration), and the token requests: authorization code with PKCE (S256)
//! and the resource indicator (RFC 8707), refresh, client credentials.
//!
//! Written here rather than taken from a crate: the `oauth2` crate covers the
//! token requests but none of the discovery the MCP authorization spec asks
//! for, and rmcp's client-side auth keeps one token per connection, where the
//! gateway keeps one per user.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Per-upstream OAuth settings (`oauth` in the upstream's entry).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub grant: Grant,
    pub scopes: Vec<String>,
    /// Registered by hand; otherwise the gateway registers itself (RFC 7591).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The authorization server, when the upstream does not publish its
    /// protected-resource metadata.
    pub issuer: Option<String>,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("grant", &self.grant)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// How the gateway gets a token for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Each user signs in (authorization code + PKCE); the gateway keeps their tokens.
    AuthorizationCode,
    /// One token for the gateway itself (client credentials), shared by every caller.
    ClientCredentials,
    /// The caller's own OAuth token exchanged for one for the upstream (RFC
    /// 8693), where the upstream trusts the same issuer: no sign-in.
    TokenExchange,
}

/// A token response, with its expiry as a time.
#[derive(Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Milliseconds since the Unix epoch; `None`: the server did not say.
    pub expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Whether it expires within `margin` (refreshed before it does).
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at_ms.is_some_and(|at| {
            at <= wharf_core::now_ms() + i64::try_from(margin.as_millis()).unwrap_or(i64::MAX)
        })
    }
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthError {
    #[error("cannot discover the upstream's authorization server: {0}")]
    Discovery(String),
    #[error("cannot register with the authorization server: {0}")]
    Registration(String),
    /// The authorization server refused the grant (`invalid_grant`: a refresh
    /// token revoked or expired): the user must sign in again.
    #[error("the authorization server refused: {0}")]
    Refused(String),
    #[error("the authorization server cannot be reached: {0}")]
    Unreachable(String),
}

/// What the gateway knows of an upstream's authorization server, once discovered.
#[derive(Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub(crate) struct ServerInfo {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The resource the tokens are for (RFC 8707): the upstream's, from its metadata.
    pub resource: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInfo")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
}

#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

/// An OAuth client of one upstream's authorization server.
pub(crate) struct OAuthClient {
    pub(crate) settings: OAuthSettings,
    http: reqwest::Client,
}

/// How long a request to the authorization server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl OAuthClient {
    pub(crate) fn new(settings: OAuthSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A redirect from a metadata URL is followed; one from the token
            // endpoint would carry the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { settings, http }
    }

    /// Find the upstream's authorization server and register with it:
    /// `upstream_url`'s protected-resource metadata (path-suffixed form first,
    /// then the root), the server's metadata (RFC 8414, then OpenID Connect),
    /// and the client (configured, or registered now with `redirect_uri`).
    pub(crate) async fn discover(
        &self,
        upstream_url: &str,
        redirect_uri: &str,
        client_name: &str,
    ) -> Result<ServerInfo, OAuthError> {
        let url = url::Url::parse(upstream_url)
            .map_err(|e| OAuthError::Discovery(format!("{upstream_url}: {e}")))?;
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        let mut resource = upstream_url.to_owned();
        let mut issuer = self.settings.issuer.clone();
        if issuer.is_none() {
            let candidates = [
                format!("{origin}/.well-known/oauth-protected-resource{path}"),
                format!("{origin}/.well-known/oauth-protected-resource"),
            ];
            let mut found = None;
            for c in candidates.iter().filter(|c| !c.is_empty()) {
                if let Ok(m) = self.get_json::<ResourceMetadata>(c).await {
                    found = Some(m);
                    break;
                }
            }
            let m = found.ok_or_else(|| {
                OAuthError::Discovery(format!(
                    "no protected-resource metadata at {} (set `oauth.issuer` for an upstream that publishes none)",
                    candidates[0]
                ))
            })?;
            if let Some(r) = m.resource {
                // RFC 9728 §3.3: the metadata is for this server, or it is not
                // believed (tokens would be issued for another service).
                if !same_resource(&r, upstream_url) {
                    return Err(OAuthError::Discovery(format!(
                        "the upstream's metadata is for the resource {r}, not {upstream_url}"
                    )));
                }
                resource = r;
            }
            issuer = m.authorization_servers.into_iter().next();
        }
        let issuer = issuer.ok_or_else(|| {
            OAuthError::Discovery("the upstream's metadata names no authorization server".into())
        })?;
        let server = self.server_metadata(&issuer).await?;
        // RFC 8414 §3.3: the metadata names the issuer it was asked for.
        if server.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(OAuthError::Discovery(format!(
                "the metadata of {issuer} names another issuer ({})",
                server.issuer
            )));
        }
        for (what, url) in [
            ("authorization_endpoint", &server.authorization_endpoint),
            ("token_endpoint", &server.token_endpoint),
        ] {
            if !web_url(url) {
                return Err(OAuthError::Discovery(format!(
                    "{issuer}'s {what} is not an https URL (http only on loopback): {url}"
                )));
            }
        }
        let (client_id, client_secret) = match &self.settings.client_id {
            Some(id) => (id.clone(), self.settings.client_secret.clone()),
            None => {
                let endpoint = server.registration_endpoint.as_deref().ok_or_else(|| {
                    OAuthError::Registration(format!(
                        "{issuer} offers no dynamic registration; register the gateway there (redirect URI {redirect_uri}) and set `oauth.client_id`"
                    ))
                })?;
                self.register(endpoint, redirect_uri, client_name).await?
            }
        };
        Ok(ServerInfo {
            issuer: server.issuer,
            authorization_endpoint: server.authorization_endpoint,
            token_endpoint: server.token_endpoint,
            resource,
            client_id,
            client_secret,
        })
    }

    async fn server_metadata(&self, issuer: &str) -> Result<ServerMetadata, OAuthError> {
        let u = url::Url::parse(issuer)
            .map_err(|e| OAuthError::Discovery(format!("issuer {issuer}: {e}")))?;
        let origin = u.origin().ascii_serialization();
        let path = u.path().trim_end_matches('/');
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
        ];
        let mut last = String::new();
        for c in &candidates {
            match self.get_json::<ServerMetadata>(c).await {
                Ok(m) => return Ok(m),
                Err(e) => last = e,
            }
        }
        Err(OAuthError::Discovery(format!(
            "no authorization server metadata for {issuer} ({last})"
        )))
    }

    async fn register(
        &self,
        endpoint: &str,
        redirect_uri: &str,
        client_name: &str,
    ) -> Result<(String, Option<String>), OAuthError> {
        let mut body = serde_json::json!({
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        // An empty `scope` is refused by some servers (oidc-provider): left out.
        if !self.settings.scopes.is_empty() {
            body["scope"] = self.settings.scopes.join(" ").into();
        }
        let r = self
            .http
            .post(endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(e.to_string()))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OAuthError::Registration(format!(
                "{endpoint} answered {status}: {v}"
            )));
        }
        let id = v["client_id"]
            .as_str()
            .ok_or_else(|| OAuthError::Registration(format!("{endpoint} gave no client_id")))?;
        Ok((id.to_owned(), v["client_secret"].as_str().map(String::from)))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let r = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status()));
        }
        r.json::<T>().await.map_err(|e| format!("{url}: {e}"))
    }

    /// Where to send the user: the authorization request (PKCE S256, resource indicator).
    pub(crate) fn authorize_url(
        &self,
        server: &ServerInfo,
        redirect_uri: &str,
        state: &str,
        verifier: &str,
    ) -> String {
        let challenge = base64url(&Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&server.authorization_endpoint)
            .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("a valid URL"));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &server.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &server.resource);
        if !self.settings.scopes.is_empty() {
            url.query_pairs_mut()
                .append_pair("scope", &self.settings.scopes.join(" "));
        }
        url.into()
    }

    /// The code from the redirect, exchanged for tokens.
    pub(crate) async fn exchange(
        &self,
        server: &ServerInfo,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError> {
        self.token(
            server,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await
    }

    /// A new access token from a refresh token (which may be rotated).
    pub(crate) async fn refresh(
        &self,
        server: &ServerInfo,
        refresh_token: &str,
    ) -> Result<TokenSet, OAuthError> {
        let mut t = self
            .token(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        if t.refresh_token.is_none() {
            t.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(t)
    }

    /// The gateway's own token (client credentials).
    pub(crate) async fn client_credentials(
        &self,
        server: &ServerInfo,
    ) -> Result<TokenSet, OAuthError> {
        let scope = self.settings.scopes.join(" ");
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        self.token(server, &form).await
    }

    /// The caller's token exchanged for one for the upstream (RFC 8693).
    pub(crate) async fn exchange_token(
        &self,
        server: &ServerInfo,
        subject_token: &str,
    ) -> Result<TokenSet, OAuthError> {
        const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
        let scope = self.settings.scopes.join(" ");
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("requested_token_type", ACCESS_TOKEN),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        self.token(server, &form).await
    }

    async fn token(
        &self,
        server: &ServerInfo,
        form: &[(&str, &str)],
    ) -> Result<TokenSet, OAuthError> {
        let body = {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            body.append_pair("resource", &server.resource);
            body.append_pair("client_id", &server.client_id);
            if let Some(secret) = &server.client_secret {
                body.append_pair("client_secret", secret);
            }
            body.finish()
        };
        let r = self
            .http
            .post(&server.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(e.to_string()))?;
        let status = r.status();
        if status.is_server_error() {
            return Err(OAuthError::Unreachable(format!(
                "token endpoint answered {status}"
            )));
        }
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            let error = v["error"].as_str().unwrap_or("an error");
            let detail = v["error_description"].as_str().unwrap_or("");
            return Err(OAuthError::Refused(
                format!("{error} {detail}").trim().to_owned(),
            ));
        }
        let t: TokenResponse = serde_json::from_str(&text)
            .map_err(|e| OAuthError::Refused(format!("not a token response: {e}")))?;
        Ok(TokenSet {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at_ms: t
                .expires_in
                .map(|s| wharf_core::now_ms() + i64::try_from(s).unwrap_or(0) * 1000),
        })
    }
}

/// Whether the protected-resource metadata's `resource` names `upstream`:
/// the same origin, and a path that is the upstream's or a prefix of it.
fn same_resource(resource: &str, upstream: &str) -> bool {
    let (Ok(r), Ok(u)) = (url::Url::parse(resource), url::Url::parse(upstream)) else {
        return false;
    };
    let (rp, up) = (
        r.path().trim_end_matches('/'),
        u.path().trim_end_matches('/'),
    );
    r.origin() == u.origin() && (up == rp || up.starts_with(&format!("{rp}/")) || rp.is_empty())
}

/// An https URL, or http on a loopback host (development and tests).
fn web_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| match u.scheme() {
        "https" => true,
        "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    })
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_believed_only_for_this_server_and_web_urls() {
        assert!(same_resource(
            "https://a.example/mcp",
            "https://a.example/mcp"
        ));
        assert!(same_resource("https://a.example/", "https://a.example/mcp"));
        assert!(!same_resource(
            "https://b.example/mcp",
            "https://a.example/mcp"
        ));
        assert!(!same_resource(
            "https://a.example/other",
            "https://a.example/mcp"
        ));
        assert!(web_url("https://as.example/authorize"));
        assert!(web_url("http://127.0.0.1:9/authorize"));
        assert!(!web_url("http://as.example/authorize"));
        assert!(!web_url("javascript://%0aalert(1)"));
    }

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = base64url(&Sha256::digest(verifier.as_bytes()));
        assert_eq!(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
