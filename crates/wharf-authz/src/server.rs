//! `AuthServer`: the authorization server's parts joined (settings, store,
//! keys, provider, client documents, the sealer for browser state), its
//! metadata documents, readiness, and what the resource-server side asks of it
//! (the key set, whether a token family was revoked).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::time::Instant;
use wharf_core::seal::Sealer;

use crate::{
    clients::Documents,
    error::StoreError,
    keys::Keys,
    provider::Provider,
    settings::Settings,
    store::{Store, kind},
};

/// How long a "not revoked" answer is trusted before the store is asked again:
/// a revocation reaches every replica's resource server within this.
pub(crate) const REVOCATION_CHECK_TTL: Duration = Duration::from_secs(5);
/// Families remembered by the revocation cache at most.
const MAX_CACHED_FAMILIES: usize = 65_536;

type RegistrationLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// The authorization server.
pub struct AuthServer {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Keys,
    pub(crate) provider: Provider,
    pub(crate) documents: Documents,
    pub(crate) sealer: Sealer,
    pub(crate) registrations: RegistrationLimiter,
    pub(crate) metrics: crate::metrics::Metrics,
    revocations: Mutex<HashMap<String, (Instant, bool)>>,
    /// The last word on the provider: `None` until checked, then why it failed, if it did.
    provider_status: Mutex<Option<Result<(), String>>>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// The key registrations are counted by: an IPv4 address, or an IPv6 /64
/// (what one host is usually given; counting each address would let one host
/// register without limit).
pub(crate) fn rate_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            std::net::IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        std::net::IpAddr::V6(v6) => std::net::IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

/// The wall clock in Unix milliseconds: what records expire by (shared by
/// every replica, unlike a monotonic clock).
pub(crate) fn now_ms() -> i64 {
    wharf_core::now_ms()
}

impl AuthServer {
    /// The server on `store`, its series registered in `registry` (the app's).
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        registry: &prometheus::Registry,
    ) -> Arc<Self> {
        let secret = settings.secret.0.as_bytes().to_vec();
        let per_minute =
            NonZeroU32::new(settings.registrations_per_minute.max(1)).expect("at least 1");
        Arc::new(Self {
            keys: Keys::new(
                store.clone(),
                &secret,
                settings.key_rotation,
                settings.access_token_ttl,
            ),
            provider: Provider::new(settings.provider.clone()),
            documents: Documents::new(settings.metadata_fetch.clone()),
            sealer: Sealer::new(&secret, b"wharf authorization server", b"browser state v1"),
            registrations: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            metrics: crate::metrics::Metrics::new(registry),
            revocations: Mutex::new(HashMap::new()),
            provider_status: Mutex::new(None),
            settings,
            store,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.settings.issuer.trim_end_matches('/'))
    }

    /// RFC 8414 metadata (also served as the OpenID discovery document, which
    /// some clients probe first).
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.settings.issuer,
            "authorization_endpoint": self.endpoint("/oauth/authorize"),
            "token_endpoint": self.endpoint("/oauth/token"),
            "registration_endpoint": self.endpoint("/oauth/register"),
            "revocation_endpoint": self.endpoint("/oauth/revoke"),
            "jwks_uri": self.endpoint("/oauth/jwks.json"),
            "scopes_supported": self.settings.scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
            "service_documentation": self.endpoint("/oauth/account"),
        })
    }

    /// The OpenID discovery document: the same, with what OIDC requires of it.
    pub fn openid_configuration(&self) -> Value {
        let mut m = self.metadata();
        m["subject_types_supported"] = json!(["public"]);
        m["id_token_signing_alg_values_supported"] = json!(["ES256"]);
        m
    }

    /// The published key set, as `/oauth/jwks.json` serves it (read from the
    /// store at most once a minute, so the public endpoint costs no query).
    pub async fn published_keys(&self) -> Result<Value, StoreError> {
        self.keys.jwks(now_ms()).await
    }

    /// The published keys, read from the store now: for the resource server
    /// beside it (no HTTP round trip), which asks when a token names a key it
    /// does not know (another replica rotated), at most every 30 seconds.
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        let now = now_ms();
        self.keys.reload(now).await?;
        self.keys.jwks(now).await
    }

    /// Whether the provider answers, asked now (its discovery document read
    /// again); the answer is also what [`AuthServer::provider_status`] shows.
    pub async fn check_provider(&self) -> Result<(), String> {
        let verdict = self.provider.check().await.map_err(|e| e.to_string());
        self.note_provider(verdict.clone());
        verdict
    }

    /// Remember how the provider last answered (a check, or a sign-in).
    pub(crate) fn note_provider(&self, verdict: Result<(), String>) {
        *wharf_core::sync::lock(&self.provider_status) = Some(verdict);
    }

    /// For `/ready`: `{"reachable": true}`, `{"reachable": false, "error": ...}`,
    /// or `{"reachable": null}` before the first check.
    pub fn provider_status(&self) -> Value {
        match &*wharf_core::sync::lock(&self.provider_status) {
            None => json!({"reachable": null}),
            Some(Ok(())) => json!({"reachable": true}),
            Some(Err(e)) => json!({"reachable": false, "error": e}),
        }
    }

    /// Whether the token family `sid` was revoked (a refresh token replayed, a
    /// client unlinked, a token revoked). Cached for [`REVOCATION_CHECK_TTL`];
    /// a store failure counts as not revoked (tokens are short-lived, and a
    /// database blip must not log every user out).
    pub async fn is_revoked(&self, sid: &str) -> bool {
        if let Some((at, revoked)) = wharf_core::sync::lock(&self.revocations).get(sid)
            && (*revoked || at.elapsed() < REVOCATION_CHECK_TTL)
        {
            return *revoked;
        }
        let revoked = match self.store.get(kind::REVOKED, sid, now_ms()).await {
            Ok(r) => r.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check a token family's revocation");
                false
            }
        };
        let mut cache = wharf_core::sync::lock(&self.revocations);
        if cache.len() >= MAX_CACHED_FAMILIES {
            cache.clear();
        }
        cache.insert(sid.to_owned(), (Instant::now(), revoked));
        revoked
    }

    /// Forget what has expired (run periodically by the binary), and the
    /// registration limiter's addresses that have been quiet.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.registrations.retain_recent();
        self.registrations.shrink_to_fit();
        self.store.prune(now_ms()).await
    }
}
