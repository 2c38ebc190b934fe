//! OAuth clients: registered by RFC 7591 (kept in the store, forgotten when
//! unused) or identified by a Client ID Metadata Document (an https
//! `client_id` whose document is fetched, checked and cached).
//!
//! Both become a [`Client`]: its redirect URIs (matched exactly), how it
//! authenticates at `token`, and the name the consent page shows.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::{
    error::OAuthError,
    metadata_fetch::{FetchError, Fetcher},
};

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthMethod {
    /// A public client (PKCE is its proof).
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// A client as the flows use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Client {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub auth_method: AuthMethod,
    /// SHA-256 of the secret (confidential clients).
    pub secret_hash: Option<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    /// Whether it came from a metadata document (shown on the consent page).
    #[serde(default)]
    pub metadata_document: bool,
}

impl Client {
    /// The name to show: its own, else the host of its URL or redirect URI.
    pub(crate) fn display_name(&self) -> String {
        if let Some(n) = self.client_name.as_deref().filter(|n| !n.trim().is_empty()) {
            return n.chars().take(80).collect();
        }
        self.redirect_uris
            .first()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "an unnamed client".to_owned())
    }
}

/// The fields of RFC 7591 §2 Wharf reads (in a registration or a document).
#[derive(Debug, Deserialize)]
struct ClientMetadata {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
}

/// A redirect URI a client may register: absolute, no fragment; `https`, or
/// `http` on a loopback host (RFC 8252 §7.3), or a private-use scheme with a
/// dot (RFC 8252 §7.1, `com.example.app:/cb`).
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URL ({e})"))?;
    if parsed.fragment().is_some() {
        return Err(format!(
            "`{uri}` has a fragment, which a redirect URI may not (RFC 6749 §3.1.2)"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(format!(
                "`{uri}` uses http on a host that is not loopback; use https"
            )),
        },
        "javascript" | "data" | "file" | "vbscript" => {
            Err(format!("`{uri}` is not a redirect URI"))
        }
        s if s.contains('.') => Ok(()),
        s => Err(format!(
            "`{uri}`: a private-use scheme must be a reversed domain name with a dot (RFC 8252 §7.1), not `{s}`"
        )),
    }
}

/// Validate what a registration or a metadata document says.
/// The error is the RFC 7591 §3.2.2 code and what is wrong.
fn validate(meta: &ClientMetadata) -> Result<AuthMethod, (&'static str, String)> {
    let redirect = |m: String| ("invalid_redirect_uri", m);
    let metadata = |m: String| ("invalid_client_metadata", m);
    if meta.redirect_uris.is_empty() {
        return Err(redirect(
            "redirect_uris is required and may not be empty".into(),
        ));
    }
    for uri in &meta.redirect_uris {
        check_redirect_uri(uri).map_err(redirect)?;
    }
    let method = match meta.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            metadata(format!("token_endpoint_auth_method `{m}` is not supported; use none, client_secret_post or client_secret_basic"))
        })?,
    };
    if let Some(grants) = &meta.grant_types
        && let Some(g) = grants
            .iter()
            .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(metadata(format!(
            "grant type `{g}` is not supported; use authorization_code and refresh_token"
        )));
    }
    if let Some(types) = &meta.response_types
        && let Some(t) = types.iter().find(|t| *t != "code")
    {
        return Err(metadata(format!(
            "response type `{t}` is not supported; OAuth 2.1 has only `code`"
        )));
    }
    Ok(method)
}

/// A client registered now: its record and the answer (RFC 7591 §3.2.1).
pub(crate) fn register(
    body: &Value,
    now_s: i64,
) -> Result<(Client, Value, Option<String>), OAuthError> {
    let meta: ClientMetadata = serde_json::from_value(body.clone()).map_err(|e| {
        OAuthError::new(
            "invalid_client_metadata",
            format!("the registration is not client metadata: {e}"),
        )
    })?;
    let method = validate(&meta).map_err(|(code, m)| OAuthError::new(code, m))?;
    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = (method != AuthMethod::None).then(wharf_core::seal::random_token);
    let client = Client {
        client_id: client_id.clone(),
        redirect_uris: meta.redirect_uris.clone(),
        auth_method: method,
        secret_hash: secret.as_deref().map(wharf_core::seal::sha256_base64url),
        client_name: meta.client_name.clone(),
        client_uri: meta.client_uri.clone(),
        metadata_document: false,
    };
    let mut answer = body.as_object().cloned().unwrap_or_default();
    answer.insert("client_id".into(), client_id.into());
    answer.insert("client_id_issued_at".into(), now_s.into());
    answer.insert("token_endpoint_auth_method".into(), method.as_str().into());
    answer.insert(
        "grant_types".into(),
        serde_json::json!(["authorization_code", "refresh_token"]),
    );
    answer.insert("response_types".into(), serde_json::json!(["code"]));
    if let Some(s) = &secret {
        answer.insert("client_secret".into(), s.clone().into());
        answer.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok((client, Value::Object(answer), secret))
}

/// Whether `client_id` names a metadata document rather than a registration.
pub(crate) fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Metadata documents fetched, by URL; a failure is remembered for
/// [`FAILURE_CACHED_FOR`], so repeating a bad `client_id` does not make Wharf
/// fetch again and again.
pub(crate) struct Documents {
    fetcher: Fetcher,
    cache_for: Duration,
    cache: Mutex<HashMap<String, Fetched>>,
}

/// A document's client (or why there is none), and when it was fetched.
type Fetched = (Instant, Result<Client, String>);

/// Why a client could not be found.
#[derive(Debug, Clone)]
pub(crate) struct LookupError {
    pub message: String,
    /// The store or the client's site did not answer: try again; nothing is
    /// wrong with the client.
    pub transient: bool,
}

impl LookupError {
    pub(crate) fn definite(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

/// How long a failed fetch is remembered.
const FAILURE_CACHED_FOR: Duration = Duration::from_secs(60);

/// Documents remembered at most (each is a few KB).
const MAX_CACHED_DOCUMENTS: usize = 1024;

impl Documents {
    pub(crate) fn new(limits: crate::settings::MetadataFetchLimits) -> Self {
        Self {
            cache_for: limits.cache_for,
            fetcher: Fetcher::new(limits),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client a metadata document at `url` describes.
    pub(crate) async fn client(&self, url: &str) -> Result<Client, LookupError> {
        if let Some((at, c)) = wharf_core::sync::lock(&self.cache).get(url) {
            let fresh_for = if c.is_ok() {
                self.cache_for
            } else {
                FAILURE_CACHED_FOR
            };
            if at.elapsed() < fresh_for {
                return c.clone().map_err(LookupError::definite);
            }
        }
        let result = match self.fetch(url).await {
            Ok(c) => Ok(c),
            // A site that did not answer is not remembered: the next request tries again.
            Err(e) if e.transient => return Err(e),
            Err(e) => Err(e.message),
        };
        let mut cache = wharf_core::sync::lock(&self.cache);
        if cache.len() >= MAX_CACHED_DOCUMENTS {
            cache.retain(|_, (at, _)| at.elapsed() < self.cache_for);
            if cache.len() >= MAX_CACHED_DOCUMENTS {
                cache.clear();
            }
        }
        cache.insert(url.to_owned(), (Instant::now(), result.clone()));
        result.map_err(LookupError::definite)
    }

    async fn fetch(&self, url: &str) -> Result<Client, LookupError> {
        let doc = self
            .fetcher
            .fetch(url)
            .await
            .map_err(|e: FetchError| LookupError {
                transient: matches!(e, FetchError::Unreachable(_) | FetchError::TooSlow(_))
                    || matches!(e, FetchError::Status(s) if s >= 500),
                message: e.to_string(),
            })?;
        let definite = LookupError::definite;
        let meta: ClientMetadata = serde_json::from_value(doc).map_err(|e| {
            definite(format!(
                "the client's metadata document is not client metadata: {e}"
            ))
        })?;
        if meta.client_id.as_deref() != Some(url) {
            return Err(definite(format!(
                "the client's metadata document says client_id {}, not the URL it was fetched from ({url})",
                meta.client_id
                    .as_deref()
                    .map_or("nothing".to_owned(), |c| format!("`{c}`"))
            )));
        }
        // A document cannot hold a shared secret: unsaid, the method is `none`
        // (RFC 7591's default, client_secret_basic, cannot apply).
        let mut meta = meta;
        meta.token_endpoint_auth_method
            .get_or_insert_with(|| "none".to_owned());
        let method = validate(&meta)
            .map_err(|(_, m)| definite(format!("the client's metadata document: {m}")))?;
        if method != AuthMethod::None {
            return Err(definite(format!(
                "the client's metadata document asks for token_endpoint_auth_method `{}`; a client identified by a metadata document must be public (`none`) here",
                method.as_str()
            )));
        }
        Ok(Client {
            client_id: url.to_owned(),
            redirect_uris: meta.redirect_uris,
            auth_method: AuthMethod::None,
            secret_hash: None,
            client_name: meta.client_name,
            client_uri: meta.client_uri,
            metadata_document: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_a_private_scheme() {
        for ok in [
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "javascript:alert(1)",
            "myapp:/cb",
            "/relative",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_registration_gets_an_id_and_a_secret_unless_public() {
        let (c, answer, secret) = register(
            &json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none", "client_name": "Inspector"}),
            1,
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::None);
        assert!(secret.is_none() && answer.get("client_secret").is_none());
        assert_eq!(answer["client_name"], "Inspector");
        let (c, answer, secret) =
            register(&json!({"redirect_uris": ["https://a.example/cb"]}), 1).unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(answer["client_secret"], secret.unwrap().as_str());
        let e = register(&json!({"redirect_uris": ["http://evil.example/cb"]}), 1).unwrap_err();
        assert_eq!(e.error, "invalid_redirect_uri");
        let e = register(&json!({"redirect_uris": []}), 1).unwrap_err();
        assert_eq!(e.error, "invalid_redirect_uri");
        let e = register(
            &json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            1,
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_client_metadata");
    }
}
