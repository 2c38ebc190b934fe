//! The authorization server's signing keys (JWKS), fetched, cached and refreshed.
//!
//! Keys are looked up by `kid`. An unknown `kid` triggers one refresh (the
//! issuer may have rotated its keys), but refreshes are spaced by
//! [`MIN_REFRESH_INTERVAL`] and, after a failed fetch, by an exponential backoff
//! up to [`MAX_BACKOFF`]: a flood of tokens with made-up `kid`s costs the issuer
//! at most one request per interval. Only asymmetric keys (RSA, EC, OKP) are
//! kept; a JWKS entry with a symmetric key is ignored.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use jsonwebtoken::{
    DecodingKey,
    jwk::{AlgorithmParameters, JwkSet},
};
use tokio::{sync::RwLock, time::Instant};

/// The least time between two fetches of the key set.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The longest wait between fetches after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("GET {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url} is not a JWKS: {source}")]
    NotAKeySet { url: String, source: reqwest::Error },
    #[error("the key set of {0}: {1}")]
    Local(String, String),
    #[error("{0} holds no usable asymmetric key")]
    NoUsableKey(String),
}

/// One usable key.
#[derive(Clone)]
pub struct Key {
    pub decoding: DecodingKey,
    /// The `alg` the JWK pins, if it names one.
    pub alg: Option<jsonwebtoken::Algorithm>,
}

#[derive(Default)]
struct Fetches {
    last: Option<Instant>,
    failures: u32,
}

/// The key set of one issuer.
pub struct Jwks {
    url: String,
    /// Fetched over HTTP, or given by an authorization server in this process.
    local: Option<crate::oauth::KeySetFn>,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Key>>,
    fetches: Mutex<Fetches>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("url", &self.url).finish()
    }
}

impl Jwks {
    /// The key set of an authorization server in this process: read by calling
    /// `keys`, under the same spacing rules; `url` is only for messages.
    pub fn local(url: impl Into<String>, keys: crate::oauth::KeySetFn) -> Self {
        Self {
            local: Some(keys),
            ..Self::new(url)
        }
    }

    pub fn new(url: impl Into<String>) -> Self {
        Self {
            local: None,
            url: url.into(),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .expect("a default HTTP client"),
            keys: RwLock::new(HashMap::new()),
            fetches: Mutex::new(Fetches::default()),
        }
    }

    /// Whether any key is loaded (readiness).
    pub async fn loaded(&self) -> bool {
        !self.keys.read().await.is_empty()
    }

    /// The key named `kid`, fetching the set again if it is unknown and a fetch
    /// is allowed now. `None` when the token names no `kid` and the set has
    /// more than one key.
    pub async fn key(&self, kid: Option<&str>) -> Option<Key> {
        if let Some(k) = self.lookup(kid).await {
            return Some(k);
        }
        if self.may_fetch() {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, url = %self.url, "cannot fetch the JWKS");
            }
            return self.lookup(kid).await;
        }
        None
    }

    async fn lookup(&self, kid: Option<&str>) -> Option<Key> {
        let keys = self.keys.read().await;
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// Whether enough time has passed since the last fetch; claims the slot if so.
    fn may_fetch(&self) -> bool {
        let mut f = wharf_core::sync::lock(&self.fetches);
        let wait = if f.failures == 0 {
            MIN_REFRESH_INTERVAL
        } else {
            (MIN_REFRESH_INTERVAL * 2u32.saturating_pow(f.failures - 1)).min(MAX_BACKOFF)
        };
        match f.last {
            Some(t) if t.elapsed() < wait => false,
            _ => {
                f.last = Some(Instant::now());
                true
            }
        }
    }

    /// Fetch the key set now (at start-up, and when `key` finds an unknown `kid`).
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let result = self.fetch().await;
        let mut f = wharf_core::sync::lock(&self.fetches);
        f.last = Some(Instant::now());
        match &result {
            Ok(_) => f.failures = 0,
            Err(_) => f.failures = f.failures.saturating_add(1),
        }
        result
    }

    async fn fetch(&self) -> Result<usize, JwksError> {
        let set: JwkSet = match &self.local {
            Some(keys) => {
                let value = keys()
                    .await
                    .map_err(|e| JwksError::Local(self.url.clone(), e))?;
                serde_json::from_value(value)
                    .map_err(|e| JwksError::Local(self.url.clone(), e.to_string()))?
            }
            None => self.fetch_remote().await?,
        };
        self.load(set).await
    }

    async fn fetch_remote(&self) -> Result<JwkSet, JwksError> {
        self.http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|source| JwksError::Unreachable {
                url: self.url.clone(),
                source,
            })?
            .json()
            .await
            .map_err(|source| JwksError::NotAKeySet {
                url: self.url.clone(),
                source,
            })
    }

    async fn load(&self, set: JwkSet) -> Result<usize, JwksError> {
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue;
            }
            let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<jsonwebtoken::Algorithm>().ok());
            let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
            keys.insert(kid, Key { decoding, alg });
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(self.url.clone()));
        }
        let n = keys.len();
        *self.keys.write().await = keys;
        tracing::info!(keys = n, url = %self.url, "loaded the JWKS");
        Ok(n)
    }
}
