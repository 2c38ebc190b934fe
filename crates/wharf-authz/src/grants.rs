//! The life of a grant: an authorization request checked, the user's scopes
//! worked out, consent remembered, a code issued and redeemed once, access
//! tokens signed, refresh tokens rotated (a replay revokes the family), and
//! revocation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wharf_core::seal::{random_token, sha256_base64url};

use crate::{
    clients::{AuthMethod, Client, LookupError, is_metadata_url},
    error::OAuthError,
    provider::Identity,
    server::{AuthServer, now_ms},
    settings::{CODE_TTL, CONSENT_TTL},
    store::{Consumed, Record, kind},
};

/// Scopes a client may ask for that Wharf ignores rather than refuses (clients
/// add them out of OIDC habit).
const IGNORED_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// An authorization request, checked; it travels sealed until a code is issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// What the client asked for (empty: whatever the user may have).
    pub scopes: Vec<String>,
    pub resource: String,
    /// Whether the client named `redirect_uri` (then `token` must name it too).
    #[serde(default)]
    pub redirect_uri_given: bool,
}

/// What a code, and then each refresh token, stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GrantData {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub identity: Identity,
    pub family: String,
    #[serde(default)]
    pub redirect_uri_given: bool,
    /// When the user signed in: a grant older than `grant_lifetime` cannot be
    /// refreshed (the allow-list is applied again at the next sign-in).
    #[serde(default)]
    pub since_ms: i64,
}

/// A remembered consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Consent {
    pub scopes: Vec<String>,
    pub client_name: String,
    pub granted_ms: i64,
}

fn consent_id(subject: &str, client_id: &str) -> String {
    format!("{subject}\n{client_id}")
}

/// Compare resource identifiers as RFC 8707 URIs: scheme and host case, a
/// default port and a trailing slash do not matter.
pub(crate) fn same_resource(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        url::Url::parse(s).map_or_else(
            |_| s.trim_end_matches('/').to_owned(),
            |u| u.as_str().trim_end_matches('/').to_owned(),
        )
    };
    norm(a) == norm(b)
}

impl AuthServer {
    /// The client `client_id` names: a registration, or a metadata document.
    pub(crate) async fn client(&self, client_id: &str) -> Result<Client, LookupError> {
        if is_metadata_url(client_id) {
            return self.documents.client(client_id).await;
        }
        let now = now_ms();
        match self.store.get(kind::CLIENT, client_id, now).await {
            Ok(Some(r)) => serde_json::from_str(&r.data).map_err(|_| {
                LookupError::definite(format!(
                    "the registration of client `{client_id}` is damaged; register again"
                ))
            }),
            Ok(None) => Err(LookupError::definite(format!(
                "client `{client_id}` is not registered here (or was forgotten after {} unused); register again",
                humanize(self.settings.client_idle_expiry)
            ))),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a client");
                Err(LookupError {
                    message: "the authorization server cannot reach its store; try again shortly"
                        .into(),
                    transient: true,
                })
            }
        }
    }

    /// A registered client stored (RFC 7591), within the cap.
    pub(crate) async fn store_client(&self, client: &Client) -> Result<(), OAuthError> {
        let now = now_ms();
        if self.store.count(kind::CLIENT, now).await? as usize >= self.settings.max_clients {
            self.store.prune(now).await?;
            if self.store.count(kind::CLIENT, now).await? as usize >= self.settings.max_clients {
                return Err(OAuthError::new(
                    "temporarily_unavailable",
                    format!(
                        "this server holds its maximum of {} registered clients; try again later",
                        self.settings.max_clients
                    ),
                ));
            }
        }
        // Until its first token, a registration lives an hour: registering in a
        // loop fills the cap for an hour, not for `client_idle_expiry`.
        let first_use = std::time::Duration::from_secs(3600).min(self.settings.client_idle_expiry);
        self.store
            .put(Record {
                kind: kind::CLIENT.into(),
                id: client.client_id.clone(),
                family: None,
                subject: None,
                client_id: Some(client.client_id.clone()),
                data: serde_json::to_string(client).expect("a client serializes"),
                expires_ms: now + first_use.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        Ok(())
    }

    /// The scopes in a request, checked against what this server offers.
    pub(crate) fn requested_scopes(&self, scope: Option<&str>) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for s in scope.unwrap_or("").split_whitespace() {
            if IGNORED_SCOPES.contains(&s) {
                continue;
            }
            if !self.settings.scopes.iter().any(|x| x == s) {
                return Err(format!(
                    "scope `{s}` is not offered here; this server offers: {}",
                    self.settings.scopes.join(" ")
                ));
            }
            if !out.iter().any(|x| x == s) {
                out.push(s.to_owned());
            }
        }
        Ok(out)
    }

    /// What `identity` may receive: the default scopes and those its groups add.
    pub(crate) fn available_scopes(&self, identity: &Identity) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.settings.default_scopes.iter().cloned().collect();
        for (group, scopes) in &self.settings.scopes_by_group {
            if identity.groups.iter().any(|g| g == group)
                || identity.orgs.iter().any(|o| o.eq_ignore_ascii_case(group))
            {
                out.extend(scopes.iter().cloned());
            }
        }
        out
    }

    /// What a request grants `identity`: the scopes asked for that it may have
    /// (all it may have when none were asked for).
    pub(crate) fn granted_scopes(&self, request: &AuthRequest, identity: &Identity) -> Vec<String> {
        let available = self.available_scopes(identity);
        if request.scopes.is_empty() {
            available.into_iter().collect()
        } else {
            request
                .scopes
                .iter()
                .filter(|s| available.contains(*s))
                .cloned()
                .collect()
        }
    }

    /// Why `identity` may not sign in, if the allow-list says so.
    pub(crate) fn refused(&self, identity: &Identity) -> Option<String> {
        let allow = &self.settings.allow;
        let who = identity
            .email
            .clone()
            .unwrap_or_else(|| identity.subject.clone());
        if !allow.email_domains.is_empty() {
            let domain = identity
                .email
                .as_deref()
                .filter(|_| identity.email_verified)
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.to_ascii_lowercase());
            if !domain.is_some_and(|d| {
                allow
                    .email_domains
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&d))
            }) {
                return Some(format!(
                    "{who} has no verified email address in {}",
                    allow.email_domains.join(", ")
                ));
            }
        }
        if !allow.github_orgs.is_empty()
            && !identity
                .orgs
                .iter()
                .any(|o| allow.github_orgs.iter().any(|a| a.eq_ignore_ascii_case(o)))
        {
            return Some(format!(
                "{who} is not a member of the GitHub organisation {} (or has not granted Wharf access to it)",
                allow.github_orgs.join(" or ")
            ));
        }
        if !allow.groups.is_empty() && !identity.groups.iter().any(|g| allow.groups.contains(g)) {
            return Some(format!(
                "{who} is not in the group {}",
                allow.groups.join(" or ")
            ));
        }
        None
    }

    /// The consent remembered for this user and client, if it covers `scopes`.
    pub(crate) async fn remembered(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
    ) -> bool {
        match self
            .store
            .get(kind::CONSENT, &consent_id(subject, client_id), now_ms())
            .await
        {
            Ok(Some(r)) => serde_json::from_str::<Consent>(&r.data)
                .is_ok_and(|c| scopes.iter().all(|s| c.scopes.contains(s))),
            _ => false,
        }
    }

    /// Remember consent for this user and client.
    pub(crate) async fn remember(
        &self,
        subject: &str,
        client: &Client,
        scopes: &[String],
    ) -> Result<(), OAuthError> {
        let now = now_ms();
        let consent = Consent {
            scopes: scopes.to_vec(),
            client_name: client.display_name(),
            granted_ms: now,
        };
        self.store
            .put(Record {
                kind: kind::CONSENT.into(),
                id: consent_id(subject, &client.client_id),
                family: None,
                subject: Some(subject.to_owned()),
                client_id: Some(client.client_id.clone()),
                data: serde_json::to_string(&consent).expect("a consent serializes"),
                expires_ms: now + CONSENT_TTL.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        Ok(())
    }

    /// A code for this request and user: where to send the browser.
    pub(crate) async fn issue_code(
        &self,
        request: &AuthRequest,
        identity: Identity,
        scopes: Vec<String>,
    ) -> Result<String, OAuthError> {
        let code = random_token();
        let now = now_ms();
        let data = GrantData {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scopes,
            resource: request.resource.clone(),
            identity,
            family: uuid::Uuid::new_v4().to_string(),
            redirect_uri_given: request.redirect_uri_given,
            since_ms: now,
        };
        self.store
            .put(Record {
                kind: kind::CODE.into(),
                id: sha256_base64url(&code),
                family: Some(data.family.clone()),
                subject: Some(data.identity.subject.clone()),
                client_id: Some(data.client_id.clone()),
                data: serde_json::to_string(&data).expect("a grant serializes"),
                expires_ms: now + CODE_TTL.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        Ok(self.redirect(request, &[("code", &code)]))
    }

    /// The client's redirect URI with `params`, `state` and `iss` (RFC 9207).
    pub(crate) fn redirect(&self, request: &AuthRequest, params: &[(&str, &str)]) -> String {
        let mut url =
            url::Url::parse(&request.redirect_uri).expect("a registered redirect URI parses");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = &request.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.settings.issuer);
        }
        url.into()
    }

    /// The client that authenticates at `token` or `revoke`.
    pub(crate) async fn authenticate(
        &self,
        client_id: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Client, OAuthError> {
        let client_id = client_id.ok_or_else(|| {
            OAuthError::invalid_client(
                "client_id is required (in the body, or as HTTP Basic credentials)",
            )
        })?;
        let client = self.client(client_id).await.map_err(|e| {
            if e.transient {
                // Not the client's fault: a client told `invalid_client` forgets
                // its registration; this one should simply try again.
                OAuthError::new("temporarily_unavailable", e.message)
            } else {
                OAuthError::invalid_client(e.message)
            }
        })?;
        match (client.auth_method, &client.secret_hash, secret) {
            (AuthMethod::None, _, _) => {}
            (_, Some(hash), Some(secret)) if sha256_base64url(secret) == *hash => {}
            (_, _, None) => {
                return Err(OAuthError::invalid_client(
                    "this client was registered with a secret; send it (client_secret_basic or client_secret_post)",
                ));
            }
            _ => return Err(OAuthError::invalid_client("the client secret is wrong")),
        }
        if !is_metadata_url(client_id) {
            // A client in use is not forgotten.
            let until = now_ms() + self.settings.client_idle_expiry.as_millis() as i64;
            let _ = self.store.touch(kind::CLIENT, client_id, until).await;
        }
        Ok(client)
    }

    /// `grant_type=authorization_code`.
    pub(crate) async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let now = now_ms();
        let id = sha256_base64url(code);
        // Checked before it is spent, against the stored grant: a request the
        // client must fix (or another client presenting a stolen code) does
        // not burn the code. The same checks run again after it is spent.
        if let Some(r) = self.store.get(kind::CODE, &id, now).await?
            && r.used_ms.is_none()
        {
            let data: GrantData = serde_json::from_str(&r.data).map_err(OAuthError::server)?;
            code_checks(&data, client, redirect_uri, verifier, resource)?;
        }
        let data: GrantData = match self.store.consume(kind::CODE, &id, now).await? {
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant(
                    "the authorization code is unknown or has expired (codes last 60 seconds)",
                ));
            }
            Consumed::Reused(r) => {
                // RFC 6749 §4.1.2: a code used twice revokes what it issued.
                if let Some(family) = &r.family {
                    self.revoke_family(family, "replay").await?;
                }
                return Err(OAuthError::invalid_grant(
                    "the authorization code was already used; the tokens issued from it are revoked",
                ));
            }
            Consumed::Fresh(r) => serde_json::from_str(&r.data).map_err(OAuthError::server)?,
        };
        code_checks(&data, client, redirect_uri, verifier, resource)?;
        self.tokens(&data, now).await
    }

    /// `grant_type=refresh_token`: a new pair; the old refresh token is spent.
    /// Everything that can be checked is checked before it is spent, so a
    /// request the client must fix does not cost it the grant.
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let now = now_ms();
        let id = sha256_base64url(token);
        let mut narrowed = None;
        if let Some(r) = self.store.get(kind::REFRESH, &id, now).await?
            && r.used_ms.is_none()
        {
            if r.client_id.as_deref() != Some(client.client_id.as_str()) {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            let data: GrantData = serde_json::from_str(&r.data).map_err(OAuthError::server)?;
            if let Some(r) = resource
                && !same_resource(r, &data.resource)
            {
                return Err(OAuthError::new(
                    "invalid_target",
                    format!("the grant is for {}, not {r}", data.resource),
                ));
            }
            if let Some(scope) = scope {
                // A refresh may narrow the scopes. Scopes asked for that were never
                // granted are left out, as at `authorize` (a client that resends
                // its first request must not lose the grant over it).
                let asked: Vec<String> = scope
                    .split_whitespace()
                    .filter(|s| data.scopes.iter().any(|g| g == s))
                    .map(str::to_owned)
                    .collect();
                narrowed = Some(asked).filter(|a| !a.is_empty());
            }
            // `since_ms` is 0 in rows written before grants had a lifetime.
            if data.since_ms > 0
                && now - data.since_ms > self.settings.grant_lifetime.as_millis() as i64
            {
                return Err(OAuthError::invalid_grant(format!(
                    "this grant is older than {}; sign in again",
                    humanize(self.settings.grant_lifetime)
                )));
            }
        }
        let mut data: GrantData = match self.store.consume(kind::REFRESH, &id, now).await? {
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant(
                    "the refresh token is unknown, expired or revoked; sign in again",
                ));
            }
            Consumed::Reused(r) => {
                if let Some(family) = &r.family {
                    self.revoke_family(family, "replay").await?;
                }
                tracing::warn!(client_id = %client.client_id, "a refresh token was replayed; its family is revoked");
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used; every token of this grant is revoked as a precaution (sign in again)",
                ));
            }
            Consumed::Fresh(r) => serde_json::from_str(&r.data).map_err(OAuthError::server)?,
        };
        if let Some(scopes) = narrowed {
            data.scopes = scopes;
        }
        self.tokens(&data, now).await
    }

    /// Whether a family was revoked (its marker outlives every token it had).
    async fn family_revoked(&self, family: &str, now: i64) -> Result<bool, OAuthError> {
        Ok(self.store.get(kind::REVOKED, family, now).await?.is_some())
    }

    /// An access token and a new refresh token of the same family; refused if
    /// the family is revoked, before or while they are made (a revocation
    /// racing a refresh must not leave a live refresh token behind).
    async fn tokens(&self, data: &GrantData, now: i64) -> Result<Value, OAuthError> {
        let revoked = || {
            OAuthError::invalid_grant(
                "this grant was revoked (the client was unlinked, or a token replayed); sign in again",
            )
        };
        if self.family_revoked(&data.family, now).await? {
            return Err(revoked());
        }
        let ttl = self.settings.access_token_ttl.as_secs() as i64;
        let scope = data.scopes.join(" ");
        let mut claims = json!({
            "iss": self.settings.issuer,
            "sub": data.identity.subject,
            "aud": data.resource,
            "client_id": data.client_id,
            "scope": scope,
            "iat": now / 1000,
            "exp": now / 1000 + ttl,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sid": data.family,
        });
        if let Some(email) = &data.identity.email {
            claims["email"] = json!(email);
        }
        if let Some(name) = &data.identity.name {
            claims["name"] = json!(name);
        }
        if !data.identity.groups.is_empty() {
            claims["groups"] = json!(data.identity.groups);
        }
        let access = self.keys.sign("at+jwt", &claims, now).await?;
        let refresh = random_token();
        let refresh_id = sha256_base64url(&refresh);
        self.store
            .put(Record {
                kind: kind::REFRESH.into(),
                id: refresh_id.clone(),
                family: Some(data.family.clone()),
                subject: Some(data.identity.subject.clone()),
                client_id: Some(data.client_id.clone()),
                data: serde_json::to_string(data).expect("a grant serializes"),
                expires_ms: now + self.settings.refresh_token_ttl.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        // A revocation that deleted the family between the check above and
        // this write left this row behind: take it back.
        if self.family_revoked(&data.family, now).await? {
            self.store.delete(kind::REFRESH, &refresh_id).await?;
            return Err(revoked());
        }
        Ok(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
            "scope": scope,
        }))
    }

    /// Every token of a family: the marker first (so a refresh racing this
    /// sees it), then the refresh tokens deleted. The marker lives as long as
    /// any token of the family could: access tokens are refused by the
    /// resource server, and no refresh can bring the family back.
    pub(crate) async fn revoke_family(&self, family: &str, cause: &str) -> Result<(), OAuthError> {
        self.metrics.revocations.with_label_values(&[cause]).inc();
        let lives = self
            .settings
            .refresh_token_ttl
            .max(self.settings.access_token_ttl)
            + std::time::Duration::from_secs(60);
        self.store
            .put(Record {
                kind: kind::REVOKED.into(),
                id: family.to_owned(),
                family: None,
                subject: None,
                client_id: None,
                data: "{}".into(),
                expires_ms: now_ms() + lives.as_millis() as i64,
                used_ms: None,
            })
            .await?;
        self.store.delete_family(family).await?;
        Ok(())
    }

    /// RFC 7009: a refresh or access token of `client`, revoked with its family.
    /// Unknown tokens are not an error.
    pub(crate) async fn revoke_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<(), OAuthError> {
        let now = now_ms();
        if let Some(r) = self
            .store
            .get(kind::REFRESH, &sha256_base64url(token), now)
            .await?
        {
            if r.client_id.as_deref() == Some(client.client_id.as_str())
                && let Some(family) = &r.family
            {
                self.revoke_family(family, "revoke").await?;
            }
            return Ok(());
        }
        if let Some(claims) = self.keys.verify(token, now).await
            && claims["client_id"].as_str() == Some(client.client_id.as_str())
            && let Some(family) = claims["sid"].as_str()
        {
            self.revoke_family(family, "revoke").await?;
        }
        Ok(())
    }

    /// The clients `subject` linked: every client with a remembered consent
    /// or a live refresh token (consent not remembered still links it).
    pub(crate) async fn linked(&self, subject: &str) -> Result<Vec<(String, Consent)>, OAuthError> {
        let now = now_ms();
        let mut out: Vec<(String, Consent)> = self
            .store
            .list(kind::CONSENT, Some(subject), now)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.client_id?, serde_json::from_str(&r.data).ok()?)))
            .collect();
        for r in self.store.list(kind::REFRESH, Some(subject), now).await? {
            let Some(client_id) = r.client_id.filter(|_| r.used_ms.is_none()) else {
                continue;
            };
            if out.iter().any(|(c, _)| *c == client_id) {
                continue;
            }
            let Ok(data) = serde_json::from_str::<GrantData>(&r.data) else {
                continue;
            };
            out.push((
                client_id.clone(),
                Consent {
                    scopes: data.scopes,
                    client_name: client_id,
                    granted_ms: data.since_ms,
                },
            ));
        }
        Ok(out)
    }

    /// Unlink a client: its consent forgotten, every token family revoked.
    pub(crate) async fn unlink(&self, subject: &str, client_id: &str) -> Result<(), OAuthError> {
        let now = now_ms();
        self.store
            .delete(kind::CONSENT, &consent_id(subject, client_id))
            .await?;
        for r in self.store.list(kind::REFRESH, Some(subject), now).await? {
            if r.client_id.as_deref() == Some(client_id)
                && let Some(family) = &r.family
            {
                self.revoke_family(family, "unlink").await?;
            }
        }
        Ok(())
    }
}

/// What a code request must match: its client, its redirect URI (required
/// when the authorization request named one), the PKCE verifier, the resource.
fn code_checks(
    data: &GrantData,
    client: &Client,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    resource: Option<&str>,
) -> Result<(), OAuthError> {
    if data.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    match redirect_uri {
        Some(u) if u != data.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request's",
            ));
        }
        // RFC 6749 §4.1.3: required when the authorization request named one.
        None if data.redirect_uri_given => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request named one",
            ));
        }
        _ => {}
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::invalid_request(
            "code_verifier is required (PKCE)",
        ));
    };
    if sha256_base64url(verifier) != data.code_challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge (PKCE S256)",
        ));
    }
    if let Some(r) = resource
        && !same_resource(r, &data.resource)
    {
        return Err(OAuthError::new(
            "invalid_target",
            format!("the code was issued for {}, not {r}", data.resource),
        ));
    }
    Ok(())
}

/// "30 days", "1 hour".
pub(crate) fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        settings::{AllowList, MetadataFetchLimits, Preset, ProviderSettings, Secret, Settings},
        store::MemoryStore,
    };
    use std::{sync::Arc, time::Duration};

    fn server(allow: AllowList) -> Arc<AuthServer> {
        let settings = Settings {
            issuer: "https://mcp.example.com".into(),
            resource: "https://mcp.example.com/mcp".into(),
            provider: ProviderSettings {
                preset: Preset::Oidc,
                issuer: Some("https://idp.example".into()),
                tenant: None,
                client_id: "w".into(),
                client_secret: Secret("s".into()),
                scopes: Vec::new(),
                github_url: String::new(),
                github_api_url: String::new(),
                allowed_tenants: Vec::new(),
            },
            scopes: vec!["catalog".into(), "sql".into()],
            default_scopes: vec!["catalog".into()],
            scopes_by_group: vec![("admins".into(), vec!["sql".into()])],
            allow,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(86_400),
            grant_lifetime: Duration::from_secs(86_400 * 90),
            key_rotation: Duration::from_secs(86_400),
            max_clients: 2,
            client_idle_expiry: Duration::from_secs(86_400),
            registrations_per_minute: 10,
            metadata_fetch: MetadataFetchLimits::default(),
            secret: Secret("0123456789abcdef0123456789abcdef".into()),
        };
        AuthServer::new(
            settings,
            Arc::new(MemoryStore::default()),
            &prometheus::Registry::new(),
        )
    }

    fn user(email: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: email.into(),
            email: Some(email.into()),
            email_verified: true,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Identity::default()
        }
    }

    fn request(scopes: &[&str]) -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            redirect_uri: "https://c.example/cb".into(),
            state: None,
            code_challenge: String::new(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            resource: "https://mcp.example.com/mcp".into(),
            redirect_uri_given: true,
        }
    }

    #[test]
    fn a_user_gets_the_scopes_asked_for_that_their_groups_allow() {
        let s = server(AllowList::default());
        let ada = user("ada@example.com", &[]);
        let root = user("root@example.com", &["admins"]);
        assert_eq!(
            s.granted_scopes(&request(&["catalog", "sql"]), &ada),
            ["catalog"]
        );
        assert_eq!(
            s.granted_scopes(&request(&["catalog", "sql"]), &root),
            ["catalog", "sql"]
        );
        assert_eq!(s.granted_scopes(&request(&[]), &root), ["catalog", "sql"]);
        assert_eq!(
            s.requested_scopes(Some("openid catalog offline_access"))
                .unwrap(),
            ["catalog"]
        );
        assert!(
            s.requested_scopes(Some("admin"))
                .unwrap_err()
                .contains("scope `admin` is not offered")
        );
    }

    #[test]
    fn the_allow_list_needs_a_verified_address_in_the_domain_and_the_group() {
        let s = server(AllowList {
            email_domains: vec!["example.com".into()],
            github_orgs: Vec::new(),
            groups: vec!["staff".into()],
        });
        assert_eq!(s.refused(&user("ada@example.com", &["staff"])), None);
        assert!(
            s.refused(&user("ada@EXAMPLE.com", &["staff"])).is_none(),
            "domains compare without case"
        );
        let mut unverified = user("ada@example.com", &["staff"]);
        unverified.email_verified = false;
        assert!(
            s.refused(&unverified)
                .unwrap()
                .contains("no verified email address in example.com")
        );
        assert!(s.refused(&user("eve@evil.example", &["staff"])).is_some());
        assert_eq!(
            s.refused(&user("bob@example.com", &[])).unwrap(),
            "bob@example.com is not in the group staff"
        );
    }

    #[tokio::test]
    async fn a_revoked_family_cannot_be_refreshed_back_to_life() {
        let s = server(AllowList::default());
        let data = GrantData {
            client_id: "c".into(),
            redirect_uri: "https://c.example/cb".into(),
            code_challenge: String::new(),
            scopes: vec!["catalog".into()],
            resource: "https://mcp.example.com/mcp".into(),
            identity: user("ada@example.com", &[]),
            family: "fam".into(),
            redirect_uri_given: true,
            since_ms: now_ms(),
        };
        assert!(s.tokens(&data, now_ms()).await.is_ok());
        s.revoke_family("fam", "revoke").await.unwrap();
        let e = s.tokens(&data, now_ms()).await.unwrap_err();
        assert_eq!(e.error, "invalid_grant");
        assert!(
            s.store
                .list(kind::REFRESH, None, now_ms())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.is_revoked("fam").await);
    }

    #[tokio::test]
    async fn registration_stops_at_the_cap_of_stored_clients() {
        let s = server(AllowList::default());
        for _ in 0..2 {
            let (c, _, _) = crate::clients::register(
                &serde_json::json!({"redirect_uris": ["https://a.example/cb"]}),
                0,
            )
            .unwrap();
            s.store_client(&c).await.unwrap();
        }
        let (c, _, _) = crate::clients::register(
            &serde_json::json!({"redirect_uris": ["https://a.example/cb"]}),
            0,
        )
        .unwrap();
        let e = s.store_client(&c).await.unwrap_err();
        assert_eq!(e.error, "temporarily_unavailable");
        assert!(e.description.contains("maximum of 2 registered clients"));
    }

    #[test]
    fn resources_compare_as_uris() {
        assert!(same_resource(
            "https://MCP.example.com:443/mcp",
            "https://mcp.example.com/mcp/"
        ));
        assert!(!same_resource(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/other"
        ));
    }
}
