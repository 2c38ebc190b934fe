//! Per-user sign-in to upstreams, and the vault of their tokens.
//!
//! A call to an upstream that wants each user's own token (`oauth` in its
//! entry) takes the caller's token from the vault: refreshed when it is about
//! to expire, and when it cannot be (revoked, expired) or there is none, the
//! call answers with a link to sign in. The link opens a page on the gateway
//! naming the gateway user being linked (a link sent to someone else shows
//! them whose account they would link), which continues to the upstream's
//! authorization server (authorization code, PKCE); its redirect comes back to
//! the gateway's callback, which keeps the tokens.
//!
//! Tokens are sealed (AES-256-GCM, a key derived from the configured secret)
//! before they reach the store, bound to their upstream and user: a row
//! copied to another user's place does not open. The sign-in state carried
//! through the browser (user, upstream, PKCE verifier) is sealed the same way,
//! so any replica can finish a sign-in another began.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use wharf_core::seal::Sealer;

use crate::oauth::{
    Grant, OAuthClient, OAuthError, OAuthSettings, ServerInfo, TokenSet, base64url,
};

/// Where sealed tokens are kept (the gateway's database); rows are opaque text.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, String>;
    async fn put(&self, upstream: &str, subject: &str, sealed: String) -> Result<(), String>;
    /// Delete `subject`'s tokens (for one upstream, or all); how many.
    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, String>;
    /// The most recently stored token of `upstream`: (subject, sealed).
    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, String>;
}

/// Tokens in memory: lost when the process ends (tests, and a gateway with no database).
#[derive(Default)]
pub struct MemoryTokens(std::sync::Mutex<Vec<(String, String, String)>>);

#[async_trait::async_trait]
impl TokenStore for MemoryTokens {
    async fn get(&self, upstream: &str, subject: &str) -> Result<Option<String>, String> {
        Ok(wharf_core::sync::lock(&self.0)
            .iter()
            .find(|(u, s, _)| u == upstream && s == subject)
            .map(|(_, _, t)| t.clone()))
    }
    async fn put(&self, upstream: &str, subject: &str, sealed: String) -> Result<(), String> {
        let mut rows = wharf_core::sync::lock(&self.0);
        rows.retain(|(u, s, _)| !(u == upstream && s == subject));
        rows.push((upstream.into(), subject.into(), sealed));
        Ok(())
    }
    async fn delete(&self, subject: &str, upstream: Option<&str>) -> Result<usize, String> {
        let mut rows = wharf_core::sync::lock(&self.0);
        let before = rows.len();
        rows.retain(|(u, s, _)| !(s == subject && upstream.is_none_or(|x| x == u)));
        Ok(before - rows.len())
    }
    async fn latest(&self, upstream: &str) -> Result<Option<(String, String)>, String> {
        Ok(wharf_core::sync::lock(&self.0)
            .iter()
            .rev()
            .find(|(u, _, _)| u == upstream)
            .map(|(_, s, t)| (s.clone(), t.clone())))
    }
}

/// How long a sign-in link, and a sign-in begun, stay valid.
const SIGN_IN_VALID: Duration = Duration::from_secs(600);
/// A token is refreshed when it has less than this left.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// What the link given to a user says (sealed): who, for which upstream, until when.
#[derive(Serialize, Deserialize)]
struct Ticket {
    upstream: String,
    subject: String,
    until_ms: i64,
}

/// What travels through the browser as `state` (sealed): the ticket, the
/// PKCE verifier, and the hash of the nonce the start page left in that
/// browser's cookie (an authorization URL forwarded to someone else comes
/// back without it, and is refused).
#[derive(Serialize, Deserialize)]
struct State {
    upstream: String,
    subject: String,
    until_ms: i64,
    verifier: String,
    browser: String,
}

/// The cookie that binds a sign-in to the browser that started it.
pub const SIGN_IN_COOKIE: &str = "wharf_sign_in";

/// Where the vault keeps the gateway's own registration with an upstream's
/// authorization server (sealed, like tokens).
pub(crate) fn registration_key(upstream: &str) -> String {
    format!("{upstream}#client")
}

fn nonce_hash(nonce: &str) -> String {
    base64url(&<sha2::Sha256 as sha2::Digest>::digest(nonce.as_bytes()))
}

/// Why a token for a call could not be had.
#[derive(Debug)]
pub(crate) enum NoToken {
    /// The user must sign in: the link to do it.
    SignIn(String),
    /// Anything else, said plainly.
    Failed(String),
}

/// One upstream's client and what it learnt.
struct Account {
    client: OAuthClient,
    upstream_url: String,
    server: tokio::sync::Mutex<Option<ServerInfo>>,
    /// Client credentials: the gateway's own token.
    shared: tokio::sync::Mutex<Option<TokenSet>>,
    /// Refreshes of this upstream, one at a time (a rotated refresh token
    /// used twice would sign the user out).
    refreshing: tokio::sync::Mutex<()>,
    /// Token exchange: the upstream token got for each caller token (by
    /// user and a hash of their token), kept until it expires; and the last one got.
    exchanged: tokio::sync::Mutex<(HashMap<String, TokenSet>, Option<TokenSet>)>,
}

/// Exchanged tokens kept per upstream; beyond it they are all dropped (and
/// exchanged again as needed).
const MAX_EXCHANGED: usize = 4096;

/// Sign-in and tokens for every upstream with `oauth` (the grants of
/// [`Grant`]: each user's sign-in, the gateway's client credentials, or the
/// caller's token exchanged).
pub struct SignIns {
    public_url: String,
    sealer: Sealer,
    store: arc_swap::ArcSwap<Box<dyn TokenStore>>,
    accounts: HashMap<String, Account>,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns")
            .field("upstreams", &self.accounts.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What the start page needs: who is linked to what, where to continue, and
/// the nonce for the browser's cookie.
#[derive(Debug)]
pub struct SignInStart {
    pub upstream: String,
    pub subject: String,
    pub url: String,
    pub nonce: String,
}

/// The paths the binary serves the sign-in pages at.
pub const SIGN_IN_START: &str = "/oauth/upstream/start";
pub const SIGN_IN_CALLBACK: &str = "/oauth/upstream/callback";

impl SignIns {
    /// For `upstreams` (name, URL, settings); `public_url` is where users reach
    /// the gateway, `secret` the key material of the vault.
    pub(crate) fn new(
        upstreams: Vec<(String, String, OAuthSettings)>,
        public_url: &str,
        secret: &[u8],
    ) -> Self {
        let accounts = upstreams
            .into_iter()
            .map(|(name, url, settings)| {
                (
                    name,
                    Account {
                        client: OAuthClient::new(settings),
                        upstream_url: url,
                        server: Default::default(),
                        shared: Default::default(),
                        refreshing: Default::default(),
                        exchanged: Default::default(),
                    },
                )
            })
            .collect();
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            sealer: Sealer::new(secret, b"wharf gateway", b"token vault v1"),
            store: arc_swap::ArcSwap::from_pointee(Box::new(MemoryTokens::default())),
            accounts,
        }
    }

    pub(crate) fn set_store(&self, store: Box<dyn TokenStore>) {
        self.store.store(Arc::new(store));
    }

    pub(crate) fn knows(&self, upstream: &str) -> bool {
        self.accounts.contains_key(upstream)
    }

    pub(crate) fn grant(&self, upstream: &str) -> Option<Grant> {
        self.accounts.get(upstream).map(|a| a.client.settings.grant)
    }

    fn redirect_uri(&self) -> String {
        format!("{}{SIGN_IN_CALLBACK}", self.public_url)
    }

    async fn server(&self, upstream: &str) -> Result<ServerInfo, NoToken> {
        let account = self
            .accounts
            .get(upstream)
            .ok_or_else(|| NoToken::Failed(format!("upstream `{upstream}` has no sign-in")))?;
        let mut server = account.server.lock().await;
        if let Some(s) = &*server {
            return Ok(s.clone());
        }
        // A registration another replica (or an earlier run) made and kept:
        // the same client, so tokens it issued still refresh.
        let key = registration_key(upstream);
        let dynamic = account.client.settings.client_id.is_none();
        if dynamic
            && let Ok(Some(sealed)) = self.store.load().get(&key, "").await
            && let Some(kept) = self
                .sealer
                .open(&sealed, &key)
                .and_then(|p| serde_json::from_slice::<ServerInfo>(&p).ok())
        {
            *server = Some(kept.clone());
            return Ok(kept);
        }
        let found = account
            .client
            .discover(&account.upstream_url, &self.redirect_uri(), "Wharf gateway")
            .await
            .map_err(|e| NoToken::Failed(format!("upstream `{upstream}`: {e}")))?;
        if dynamic {
            let sealed = self
                .sealer
                .seal(&serde_json::to_vec(&found).unwrap_or_default(), &key);
            if let Err(e) = self.store.load().put(&key, "", sealed).await {
                tracing::warn!(
                    upstream,
                    error = e,
                    "the gateway's registration was not kept; another replica registers its own"
                );
            }
        }
        tracing::info!(
            upstream,
            issuer = found.issuer,
            client_id = found.client_id,
            "upstream authorization server found"
        );
        *server = Some(found.clone());
        Ok(found)
    }

    /// The link that signs `subject` in to `upstream`.
    pub(crate) fn link(&self, upstream: &str, subject: &str) -> String {
        let ticket = Ticket {
            upstream: upstream.into(),
            subject: subject.into(),
            until_ms: wharf_core::now_ms() + SIGN_IN_VALID.as_millis() as i64,
        };
        let sealed = self
            .sealer
            .seal(&serde_json::to_vec(&ticket).unwrap_or_default(), "ticket");
        format!("{}{SIGN_IN_START}?ticket={sealed}", self.public_url)
    }

    /// The access token for a call by `subject` (who presented
    /// `caller_token`, when an OAuth caller) to `upstream`.
    pub(crate) async fn token_for(
        &self,
        upstream: &str,
        subject: Option<&str>,
        caller_token: Option<&str>,
    ) -> Result<String, NoToken> {
        let account = self
            .accounts
            .get(upstream)
            .ok_or_else(|| NoToken::Failed(format!("upstream `{upstream}` has no sign-in")))?;
        match account.client.settings.grant {
            Grant::ClientCredentials => {
                let mut shared = account.shared.lock().await;
                if let Some(t) = &*shared
                    && !t.expires_within(REFRESH_MARGIN)
                {
                    return Ok(t.access_token.clone());
                }
                let server = self.server(upstream).await?;
                let t = account
                    .client
                    .client_credentials(&server)
                    .await
                    .map_err(|e| NoToken::Failed(format!("upstream `{upstream}`: {e}")))?;
                let access = t.access_token.clone();
                *shared = Some(t);
                Ok(access)
            }
            Grant::TokenExchange => {
                let (Some(subject), Some(caller)) = (subject, caller_token) else {
                    return Err(NoToken::Failed(format!(
                        "upstream `{upstream}` takes the caller's own OAuth token, exchanged: call the gateway with an OAuth token (an API key cannot be exchanged)"
                    )));
                };
                let key = format!(
                    "{subject}\n{}",
                    base64url(&<sha2::Sha256 as sha2::Digest>::digest(caller.as_bytes()))
                );
                let mut exchanged = account.exchanged.lock().await;
                if let Some(t) = exchanged.0.get(&key)
                    && !t.expires_within(REFRESH_MARGIN)
                {
                    return Ok(t.access_token.clone());
                }
                let server = self.server(upstream).await?;
                let t = account
                    .client
                    .exchange_token(&server, caller)
                    .await
                    .map_err(|e| {
                        NoToken::Failed(format!(
                            "upstream `{upstream}`: your token was not exchanged: {e}"
                        ))
                    })?;
                if exchanged.0.len() >= MAX_EXCHANGED {
                    exchanged.0.clear();
                }
                exchanged.0.insert(key, t.clone());
                let access = t.access_token.clone();
                exchanged.1 = Some(t);
                Ok(access)
            }
            Grant::AuthorizationCode => {
                let Some(subject) = subject.filter(|s| !s.is_empty()) else {
                    return Err(NoToken::Failed(format!(
                        "upstream `{upstream}` needs each user's own sign-in, and this gateway does not know who you are: call it with an API key or an OAuth token"
                    )));
                };
                let Some(tokens) = self.stored(upstream, subject).await? else {
                    return Err(NoToken::SignIn(self.link(upstream, subject)));
                };
                if !tokens.expires_within(REFRESH_MARGIN) {
                    return Ok(tokens.access_token);
                }
                let _one = account.refreshing.lock().await;
                // Another call may have refreshed it while this one waited.
                let Some(tokens) = self.stored(upstream, subject).await? else {
                    return Err(NoToken::SignIn(self.link(upstream, subject)));
                };
                if !tokens.expires_within(REFRESH_MARGIN) {
                    return Ok(tokens.access_token);
                }
                let Some(refresh) = &tokens.refresh_token else {
                    return Err(NoToken::SignIn(self.link(upstream, subject)));
                };
                let server = self.server(upstream).await?;
                match account.client.refresh(&server, refresh).await {
                    Ok(fresh) => {
                        let access = fresh.access_token.clone();
                        self.keep(upstream, subject, &fresh).await?;
                        tracing::info!(upstream, subject, "upstream token refreshed");
                        Ok(access)
                    }
                    Err(OAuthError::Refused(why)) => {
                        // Another replica may have refreshed it first (a rotated
                        // refresh token then fails here): use what it kept.
                        if let Ok(Some(kept)) = self.stored(upstream, subject).await
                            && kept.refresh_token.as_deref() != Some(refresh.as_str())
                            && !kept.expires_within(REFRESH_MARGIN)
                        {
                            return Ok(kept.access_token);
                        }
                        tracing::warn!(
                            upstream,
                            subject,
                            error = why,
                            "upstream token not refreshed; the user must sign in again"
                        );
                        let _ = self.store.load().delete(subject, Some(upstream)).await;
                        Err(NoToken::SignIn(self.link(upstream, subject)))
                    }
                    Err(e) => Err(NoToken::Failed(format!("upstream `{upstream}`: {e}"))),
                }
            }
        }
    }

    /// The token the gateway lists an upstream's tools with: its own
    /// (client credentials), or the most recently kept user's.
    pub(crate) async fn listing_token(&self, upstream: &str) -> Option<String> {
        match self.grant(upstream)? {
            Grant::ClientCredentials => self.token_for(upstream, None, None).await.ok(),
            Grant::AuthorizationCode => {
                let (subject, _) = self.store.load().latest(upstream).await.ok()??;
                self.token_for(upstream, Some(&subject), None).await.ok()
            }
            // The last caller's exchanged token, while it lasts.
            Grant::TokenExchange => {
                let exchanged = self.accounts.get(upstream)?.exchanged.lock().await;
                exchanged
                    .1
                    .as_ref()
                    .filter(|t| !t.expires_within(REFRESH_MARGIN))
                    .map(|t| t.access_token.clone())
            }
        }
    }

    async fn stored(&self, upstream: &str, subject: &str) -> Result<Option<TokenSet>, NoToken> {
        let row = self
            .store
            .load()
            .get(upstream, subject)
            .await
            .map_err(|e| NoToken::Failed(format!("the token vault cannot be read: {e}")))?;
        Ok(row.and_then(|sealed| {
            let plain = self.sealer.open(&sealed, &format!("{upstream}\n{subject}"));
            if plain.is_none() {
                tracing::warn!(upstream, subject, "a kept token does not open (another key, or moved); the user must sign in again");
            }
            serde_json::from_slice(&plain?).ok()
        }))
    }

    async fn keep(&self, upstream: &str, subject: &str, tokens: &TokenSet) -> Result<(), NoToken> {
        let sealed = self.sealer.seal(
            &serde_json::to_vec(tokens).unwrap_or_default(),
            &format!("{upstream}\n{subject}"),
        );
        self.store
            .load()
            .put(upstream, subject, sealed)
            .await
            .map_err(|e| NoToken::Failed(format!("the token vault cannot be written: {e}")))
    }

    /// Forget `subject`'s tokens (one upstream, or all); how many.
    pub async fn revoke(&self, subject: &str, upstream: Option<&str>) -> Result<usize, String> {
        self.store.load().delete(subject, upstream).await
    }

    /// Whether the pages are reached over HTTPS (their cookie is then `Secure`).
    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `GET /oauth/upstream/start?ticket=…`: the upstream and user the link is
    /// for, where to continue (the authorization request), and the nonce to
    /// leave in the browser's [`SIGN_IN_COOKIE`].
    pub async fn begin(&self, ticket: &str) -> Result<SignInStart, String> {
        let t: Ticket = self
            .sealer
            .open(ticket, "ticket")
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(
                "This sign-in link is not valid. Ask for a new one by calling the tool again.",
            )?;
        if t.until_ms < wharf_core::now_ms() {
            return Err(
                "This sign-in link has expired. Ask for a new one by calling the tool again."
                    .into(),
            );
        }
        let server = self.server(&t.upstream).await.map_err(|e| match e {
            NoToken::Failed(m) | NoToken::SignIn(m) => m,
        })?;
        let account = &self.accounts[&t.upstream];
        let nonce = self.sealer.random_token();
        let state = State {
            upstream: t.upstream.clone(),
            subject: t.subject.clone(),
            until_ms: wharf_core::now_ms() + SIGN_IN_VALID.as_millis() as i64,
            verifier: self.sealer.random_token(),
            browser: nonce_hash(&nonce),
        };
        let sealed = self
            .sealer
            .seal(&serde_json::to_vec(&state).unwrap_or_default(), "state");
        let url =
            account
                .client
                .authorize_url(&server, &self.redirect_uri(), &sealed, &state.verifier);
        Ok(SignInStart {
            upstream: t.upstream,
            subject: t.subject,
            url,
            nonce,
        })
    }

    /// `GET /oauth/upstream/callback?code&state`: the code exchanged and the
    /// tokens kept; the upstream and user signed in. `nonce` is the browser's
    /// [`SIGN_IN_COOKIE`]: the sign-in must end in the browser that began it.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        nonce: Option<&str>,
    ) -> Result<(String, String), String> {
        let s: State = self
            .sealer
            .open(state, "state")
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(
                "This sign-in did not start here, or was tampered with. Start again from the link.",
            )?;
        if nonce.map(nonce_hash).as_deref() != Some(s.browser.as_str()) {
            return Err("This sign-in was started in another browser. Open the sign-in link you were given in this one.".into());
        }
        if s.until_ms < wharf_core::now_ms() {
            return Err("This sign-in took too long. Start again from the link.".into());
        }
        let server = self.server(&s.upstream).await.map_err(|e| match e {
            NoToken::Failed(m) | NoToken::SignIn(m) => m,
        })?;
        let tokens = self.accounts[&s.upstream]
            .client
            .exchange(&server, code, &s.verifier, &self.redirect_uri())
            .await
            .map_err(|e| format!("The sign-in to {} failed: {e}", s.upstream))?;
        self.keep(&s.upstream, &s.subject, &tokens)
            .await
            .map_err(|e| match e {
                NoToken::Failed(m) | NoToken::SignIn(m) => m,
            })?;
        tracing::info!(
            upstream = s.upstream,
            subject = s.subject,
            "user signed in to an upstream"
        );
        Ok((s.upstream, s.subject))
    }
}
