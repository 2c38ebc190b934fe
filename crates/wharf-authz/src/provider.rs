//! The user's identity provider, with Wharf as its OAuth client
//! (authorization code + PKCE S256): where to send the browser, and who came
//! back. Its tokens are used here once, to learn the user, and dropped.
//!
//! OIDC providers (and the Google and Entra presets) by their discovery
//! document; the ID token comes straight from the token endpoint over TLS, so
//! its signature is not checked again (OIDC Core §3.1.3.7, item 6), but its
//! `iss`, `aud`, `nonce` and `exp` are. GitHub has no OIDC for users: the
//! user, their verified email and their organisations come from its REST API.
//!
//! Entra's quirks: the `resource` parameter is never sent (Entra refuses it
//! beside v2.0 scopes); with a multi-tenant authority (`organizations`,
//! `common`) the discovery `issuer` holds `{tenantid}`, replaced by the ID
//! token's `tid` before comparing; groups and app roles come as `groups` and
//! `roles` claims.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::settings::{Preset, ProviderSettings};

/// How long a provider request may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the discovery document is used before it is read again: short, so
/// a sign-in begun while the provider is down gets Wharf's page saying so
/// rather than the browser's, at the cost of one small GET per sign-in at most
/// every few seconds.
const DISCOVERY_TTL: Duration = Duration::from_secs(5);
/// Clock skew tolerated on the ID token's `exp`.
const LEEWAY_S: i64 = 60;

/// What went wrong at the provider, as the sign-in page says it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderError {
    #[error("cannot reach the identity provider ({0})")]
    Unreachable(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's answer is not what Wharf expects: {0}")]
    Malformed(String),
}

/// The endpoints of the provider.
#[derive(Debug, Clone)]
struct Endpoints {
    issuer: Option<String>,
    authorize: String,
    token: String,
    userinfo: Option<String>,
}

/// Who signed in.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// Groups and roles (OIDC `groups`/`roles`), for allow-lists and scopes.
    pub groups: Vec<String>,
    /// GitHub organisations (logins).
    pub orgs: Vec<String>,
}

pub(crate) struct Provider {
    settings: ProviderSettings,
    http: reqwest::Client,
    discovered: Mutex<Option<(Instant, Endpoints)>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

impl Provider {
    pub(crate) fn new(settings: ProviderSettings) -> Self {
        Self {
            settings,
            http: reqwest::Client::builder()
                .timeout(PROVIDER_TIMEOUT)
                .user_agent("wharf")
                .build()
                .expect("an HTTP client"),
            discovered: Mutex::new(None),
        }
    }

    pub(crate) fn preset(&self) -> Preset {
        self.settings.preset
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        let Some(issuer) = self.settings.oidc_issuer() else {
            let web = self.settings.github_url.trim_end_matches('/');
            return Ok(Endpoints {
                issuer: None,
                authorize: format!("{web}/login/oauth/authorize"),
                token: format!("{web}/login/oauth/access_token"),
                userinfo: None,
            });
        };
        // Not held across the fetch: sign-ins do not queue behind a slow provider
        // (two may fetch at once; the document is the same).
        if let Some((at, e)) = wharf_core::sync::lock(&self.discovered).as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(e.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ProviderError::Unreachable(format!("GET {url}: {}", short(&e))))?
            .json()
            .await
            .map_err(|e| ProviderError::Malformed(format!("{url}: {}", short(&e))))?;
        let e = Endpoints {
            issuer: Some(d.issuer),
            authorize: d.authorization_endpoint,
            token: d.token_endpoint,
            userinfo: d.userinfo_endpoint,
        };
        *wharf_core::sync::lock(&self.discovered) = Some((Instant::now(), e.clone()));
        Ok(e)
    }

    /// Whether the provider answers (readiness): its discovery document for
    /// OIDC, read fresh; nothing to ask GitHub in advance.
    pub(crate) async fn check(&self) -> Result<(), ProviderError> {
        if self.settings.oidc_issuer().is_some() {
            *wharf_core::sync::lock(&self.discovered) = None;
        }
        self.endpoints().await.map(|_| ())
    }

    /// Where to send the browser.
    pub(crate) async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        nonce: &str,
    ) -> Result<String, ProviderError> {
        let e = self.endpoints().await?;
        let scopes = if self.settings.scopes.is_empty() {
            self.settings.preset.default_scopes()
        } else {
            self.settings.scopes.clone()
        };
        let mut url = url::Url::parse(&e.authorize).map_err(|_| {
            ProviderError::Malformed(format!("authorization_endpoint `{}`", e.authorize))
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
            if e.issuer.is_some() {
                q.append_pair("nonce", nonce);
            }
            if self.settings.preset == Preset::Google {
                q.append_pair("prompt", "select_account");
            }
        }
        Ok(url.into())
    }

    /// The code exchanged, and the user it names.
    pub(crate) async fn identity(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
        now_s: i64,
    ) -> Result<Identity, ProviderError> {
        let e = self.endpoints().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.0.as_str()),
        ];
        let response = self
            .http
            .post(&e.token)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|err| {
                ProviderError::Unreachable(format!("POST {}: {}", e.token, short(&err)))
            })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|err| {
            ProviderError::Malformed(format!("the token response: {}", short(&err)))
        })?;
        // GitHub answers errors with 200 and an `error` field.
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            let detail = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(ProviderError::Refused(
                format!("{error} {detail}").trim().to_owned(),
            ));
        }
        if !status.is_success() {
            return Err(ProviderError::Refused(format!("HTTP {status}")));
        }
        match self.settings.preset {
            Preset::Github => {
                let token = body["access_token"]
                    .as_str()
                    .ok_or_else(|| ProviderError::Malformed("no access_token".into()))?;
                self.github_identity(token).await
            }
            _ => {
                let id_token = body["id_token"].as_str().ok_or_else(|| {
                    ProviderError::Malformed("no id_token: is `openid` among the scopes?".into())
                })?;
                let claims = self.id_token_claims(id_token, &e, nonce, now_s)?;
                let mut identity = identity_from_claims(&claims)?;
                if identity.email.is_none()
                    && let (Some(userinfo), Some(at)) = (&e.userinfo, body["access_token"].as_str())
                    && let Ok(info) = self.get_json(userinfo, at).await
                    // OIDC Core §5.3.2: userinfo about another subject is not used.
                    && info["sub"].as_str() == Some(identity.subject.as_str())
                {
                    identity.email = info["email"].as_str().map(str::to_owned);
                    identity.email_verified = info["email_verified"].as_bool() == Some(true);
                }
                if self.settings.preset == Preset::Entra {
                    // Entra does not say whether `email` is verified unless the app asks
                    // for the `xms_edov` optional claim (the email domain's owner verified it).
                    identity.email_verified = claims["xms_edov"].as_bool() == Some(true)
                        || claims["xms_edov"].as_str() == Some("1");
                    if identity.email.is_none() {
                        // The sign-in name (UPN), for display; never verified.
                        identity.email = claims["preferred_username"].as_str().map(str::to_owned);
                        identity.email_verified = false;
                    }
                }
                Ok(identity)
            }
        }
    }

    fn id_token_claims(
        &self,
        id_token: &str,
        e: &Endpoints,
        nonce: &str,
        now_s: i64,
    ) -> Result<Value, ProviderError> {
        use base64::Engine;
        let payload = id_token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| ProviderError::Malformed("the id_token is not a JWT".into()))?;
        let mut expected_issuer = e.issuer.clone().unwrap_or_default();
        if let Some(tid) = payload["tid"].as_str() {
            expected_issuer = expected_issuer.replace("{tenantid}", tid);
        }
        if self.settings.multi_tenant() {
            // Any tenant can consent to a multi-tenant app and say anything about
            // its users (roles, email): only the tenants named are let in.
            let tid = payload["tid"].as_str().unwrap_or("");
            if !self
                .settings
                .allowed_tenants
                .iter()
                .any(|t| t.eq_ignore_ascii_case(tid))
            {
                return Err(ProviderError::Refused(format!(
                    "the Microsoft tenant {tid} is not one this server admits (account_linking.allowed_tenants)"
                )));
            }
        }
        if payload["iss"].as_str() != Some(expected_issuer.as_str()) {
            return Err(ProviderError::Malformed(format!(
                "the id_token's iss is {}, not {expected_issuer}",
                payload["iss"]
            )));
        }
        let aud_ok = match &payload["aud"] {
            Value::String(a) => *a == self.settings.client_id,
            Value::Array(a) => a
                .iter()
                .any(|x| x.as_str() == Some(self.settings.client_id.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(ProviderError::Malformed(
                "the id_token is for another client".into(),
            ));
        }
        if payload["nonce"].as_str() != Some(nonce) {
            return Err(ProviderError::Malformed(
                "the id_token's nonce does not match this sign-in".into(),
            ));
        }
        if payload["exp"]
            .as_i64()
            .is_none_or(|exp| exp + LEEWAY_S < now_s)
        {
            return Err(ProviderError::Malformed("the id_token has expired".into()));
        }
        Ok(payload)
    }

    async fn get_json(&self, url: &str, token: &str) -> Result<Value, ProviderError> {
        self.http
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ProviderError::Unreachable(format!("GET {url}: {}", short(&e))))?
            .json()
            .await
            .map_err(|e| ProviderError::Malformed(format!("{url}: {}", short(&e))))
    }

    async fn github_identity(&self, token: &str) -> Result<Identity, ProviderError> {
        let api = self.settings.github_api_url.trim_end_matches('/');
        let user = self.get_json(&format!("{api}/user"), token).await?;
        let id = user["id"]
            .as_i64()
            .ok_or_else(|| ProviderError::Malformed("GitHub's /user has no id".into()))?;
        let mut identity = Identity {
            subject: format!("github:{id}"),
            name: user["name"]
                .as_str()
                .or(user["login"].as_str())
                .map(str::to_owned),
            ..Identity::default()
        };
        // The primary verified address; /user's `email` is only the public one.
        if let Ok(Value::Array(emails)) = self.get_json(&format!("{api}/user/emails"), token).await
            && let Some(primary) = emails
                .iter()
                .find(|e| e["primary"] == true && e["verified"] == true)
        {
            identity.email = primary["email"].as_str().map(str::to_owned);
            identity.email_verified = true;
        }
        if let Ok(Value::Array(orgs)) = self
            .get_json(&format!("{api}/user/orgs?per_page=100"), token)
            .await
        {
            identity.orgs = orgs
                .iter()
                .filter_map(|o| o["login"].as_str().map(str::to_lowercase))
                .collect();
        }
        Ok(identity)
    }
}

/// The user an OIDC ID token names.
fn identity_from_claims(claims: &Value) -> Result<Identity, ProviderError> {
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::Malformed("the id_token has no sub".into()))?;
    let mut groups = Vec::new();
    for claim in ["groups", "roles"] {
        if let Some(list) = claims[claim].as_array() {
            groups.extend(list.iter().filter_map(|g| g.as_str().map(str::to_owned)));
        }
    }
    Ok(Identity {
        subject: subject.to_owned(),
        email: claims["email"].as_str().map(str::to_owned),
        email_verified: claims["email_verified"].as_bool() == Some(true),
        name: claims["name"].as_str().map(str::to_owned),
        groups,
        orgs: Vec::new(),
    })
}

/// A reqwest error without the URL it repeats (and its query string).
fn short(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.find(" for url (") {
        s.truncate(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use wharf_core::seal::base64url;

    fn provider(preset: Preset, tenant: Option<&str>) -> Provider {
        Provider::new(ProviderSettings {
            preset,
            issuer: None,
            tenant: tenant.map(str::to_owned),
            client_id: "wharf-app".into(),
            client_secret: Secret("s".into()),
            scopes: Vec::new(),
            github_url: "https://github.com".into(),
            github_api_url: "https://api.github.com".into(),
            allowed_tenants: vec!["72f988bf-0000".into()],
        })
    }

    fn id_token(claims: Value) -> String {
        format!("e30.{}.sig", base64url(claims.to_string().as_bytes()))
    }

    fn endpoints(issuer: &str) -> Endpoints {
        Endpoints {
            issuer: Some(issuer.into()),
            authorize: String::new(),
            token: String::new(),
            userinfo: None,
        }
    }

    #[test]
    fn an_entra_multi_tenant_issuer_is_compared_with_the_tokens_tenant() {
        let p = provider(Preset::Entra, Some("organizations"));
        assert_eq!(
            p.settings.oidc_issuer().unwrap(),
            "https://login.microsoftonline.com/organizations/v2.0"
        );
        let e = endpoints("https://login.microsoftonline.com/{tenantid}/v2.0");
        let good = serde_json::json!({
            "iss": "https://login.microsoftonline.com/72f988bf-0000/v2.0",
            "tid": "72f988bf-0000", "aud": "wharf-app", "nonce": "n", "exp": 2_000,
            "sub": "abc", "preferred_username": "ada@contoso.com", "roles": ["Wharf.Admin"],
        });
        let claims = p
            .id_token_claims(&id_token(good.clone()), &e, "n", 1_000)
            .unwrap();
        let identity = identity_from_claims(&claims).unwrap();
        assert_eq!(identity.groups, ["Wharf.Admin"]);
        // A token whose iss names another tenant than its tid is refused.
        let mut other = good.clone();
        other["iss"] = "https://login.microsoftonline.com/evil/v2.0".into();
        assert!(p.id_token_claims(&id_token(other), &e, "n", 1_000).is_err());
        // A tenant that is not admitted, however well-formed its token.
        let mut stranger = good.clone();
        stranger["tid"] = "attacker-tenant".into();
        stranger["iss"] = "https://login.microsoftonline.com/attacker-tenant/v2.0".into();
        let e2 = p
            .id_token_claims(&id_token(stranger), &e, "n", 1_000)
            .unwrap_err();
        assert!(
            e2.to_string()
                .contains("tenant attacker-tenant is not one this server admits"),
            "{e2}"
        );
        // Another client, another nonce, expired.
        let mut c = good.clone();
        c["aud"] = "someone-else".into();
        assert!(p.id_token_claims(&id_token(c), &e, "n", 1_000).is_err());
        assert!(
            p.id_token_claims(&id_token(good.clone()), &e, "other", 1_000)
                .is_err()
        );
        assert!(p.id_token_claims(&id_token(good), &e, "n", 3_000).is_err());
    }

    #[tokio::test]
    async fn the_authorization_url_carries_pkce_and_no_resource() {
        let p = provider(Preset::Github, None);
        let url = p
            .authorize_url("https://w.example/oauth/callback", "st", "ch", "no")
            .await
            .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(url.path(), "/login/oauth/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "read:user user:email read:org");
        assert!(
            !q.contains_key("resource"),
            "Entra refuses it; no provider needs it"
        );
        assert!(!q.contains_key("nonce"), "GitHub is not OIDC");
    }
}
