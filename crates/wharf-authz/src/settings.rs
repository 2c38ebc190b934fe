//! What the authorization server is configured with: who it is, which
//! provider users sign in with, who may, what each may get, and the limits.

use std::time::Duration;

/// The identity provider preset: endpoints and quirks known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Any OpenID Connect provider, by issuer URL (Okta, Auth0, Keycloak, ...).
    Oidc,
    /// GitHub (OAuth 2.0 without OIDC): identity from its REST API.
    Github,
    /// Google (OIDC, issuer `https://accounts.google.com`).
    Google,
    /// Microsoft Entra ID (OIDC v2.0 endpoints of one tenant, or `organizations`/`common`).
    Entra,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc" => Some(Self::Oidc),
            "github" => Some(Self::Github),
            "google" => Some(Self::Google),
            "entra" => Some(Self::Entra),
            _ => None,
        }
    }

    /// The provider's name as the sign-in pages show it.
    pub fn display(self) -> &'static str {
        match self {
            Self::Oidc => "your identity provider",
            Self::Github => "GitHub",
            Self::Google => "Google",
            Self::Entra => "Microsoft",
        }
    }

    /// The scopes asked of the provider when none are configured.
    pub fn default_scopes(self) -> Vec<String> {
        let s: &[&str] = match self {
            // read:org lets the org allow-list see private memberships.
            Self::Github => &["read:user", "user:email", "read:org"],
            Self::Oidc | Self::Google | Self::Entra => &["openid", "email", "profile"],
        };
        s.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// The upstream identity provider and Wharf's registration there.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub preset: Preset,
    /// The OIDC issuer (`oidc`); derived for `google` and `entra`.
    pub issuer: Option<String>,
    /// The Entra tenant: a tenant ID or domain, or `organizations`/`common`
    /// (then `allowed_tenants` names who may sign in).
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// What is asked of the provider; [`Preset::default_scopes`] when empty.
    pub scopes: Vec<String>,
    /// GitHub's web and API roots (`https://github.com`, `https://api.github.com`);
    /// another pair for GitHub Enterprise Server.
    pub github_url: String,
    pub github_api_url: String,
    /// Entra with a multi-tenant authority (`organizations`, `common`): the
    /// tenant IDs (`tid`) whose users may sign in. Required then: any tenant
    /// can consent to an app and give its users any role.
    pub allowed_tenants: Vec<String>,
}

impl ProviderSettings {
    /// Whether an Entra authority admits several tenants.
    pub fn multi_tenant(&self) -> bool {
        self.preset == Preset::Entra && self.tenant.as_deref().is_none_or(is_multi_tenant)
    }

    /// The issuer whose discovery document is read (OIDC presets).
    pub fn oidc_issuer(&self) -> Option<String> {
        match self.preset {
            Preset::Github => None,
            Preset::Google => Some("https://accounts.google.com".to_owned()),
            Preset::Entra => Some(format!(
                "https://login.microsoftonline.com/{}/v2.0",
                self.tenant.as_deref().unwrap_or("organizations")
            )),
            Preset::Oidc => self.issuer.clone(),
        }
    }
}

/// Whether an Entra authority's tenant segment admits several tenants
/// (Entra reads it without regard to case).
pub fn is_multi_tenant(tenant: &str) -> bool {
    ["organizations", "common", "consumers"]
        .iter()
        .any(|t| tenant.eq_ignore_ascii_case(t))
}

/// A secret whose `Debug` hides it.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Who may sign in. Empty lists do not restrict; several lists must all pass.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// The user's verified email must be in one of these domains.
    pub email_domains: Vec<String>,
    /// The GitHub user must belong to one of these organisations.
    pub github_orgs: Vec<String>,
    /// The user must be in one of these groups (or roles).
    pub groups: Vec<String>,
}

impl AllowList {
    pub fn is_open(&self) -> bool {
        self.email_domains.is_empty() && self.github_orgs.is_empty() && self.groups.is_empty()
    }
}

/// The limits on fetching a Client ID Metadata Document.
#[derive(Debug, Clone)]
pub struct MetadataFetchLimits {
    /// Allow `http://` and private, loopback and link-local addresses (tests,
    /// a client on the same network). Off in production.
    pub allow_private: bool,
    pub max_bytes: usize,
    pub timeout: Duration,
    /// How long a fetched document is used before it is fetched again.
    pub cache_for: Duration,
    /// More certificate authorities to trust for documents (a private PKI),
    /// beside the system's.
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl Default for MetadataFetchLimits {
    fn default() -> Self {
        Self {
            allow_private: false,
            // The CIMD draft suggests documents stay under 5 KB.
            max_bytes: 5 * 1024,
            timeout: Duration::from_secs(5),
            cache_for: Duration::from_secs(600),
            extra_roots: Vec::new(),
        }
    }
}

/// Everything the authorization server is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Wharf's issuer identifier: the origin of `server.public_url`
    /// (`https://mcp.example.com`); the endpoints hang below it.
    pub issuer: String,
    /// The protected resource (the MCP endpoint), every token's `aud`.
    pub resource: String,
    pub provider: ProviderSettings,
    /// The scopes clients may ask for (published as `scopes_supported`).
    pub scopes: Vec<String>,
    /// Scopes every signed-in user may receive.
    pub default_scopes: Vec<String>,
    /// Scopes a group or role adds: `(group, scopes)`.
    pub scopes_by_group: Vec<(String, Vec<String>)>,
    pub allow: AllowList,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a grant may be refreshed after the user signed in; then they
    /// sign in again (and the allow-list is applied again).
    pub grant_lifetime: Duration,
    /// How long a signing key signs before a new one takes over (the old one is
    /// published until every token it signed has expired).
    pub key_rotation: Duration,
    /// Dynamically registered clients kept at most.
    pub max_clients: usize,
    /// A registered client unused this long is forgotten.
    pub client_idle_expiry: Duration,
    /// Registrations allowed per client address per minute.
    pub registrations_per_minute: u32,
    pub metadata_fetch: MetadataFetchLimits,
    /// `server.state_key`: seals signing keys at rest and every state that
    /// crosses the browser. The same on every replica.
    pub secret: Secret,
}

/// How long an authorization code may be exchanged (RFC 6749 §4.1.2: short).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a sign-in begun at `authorize` may take at the provider and the consent page.
pub(crate) const SIGN_IN_TTL: Duration = Duration::from_secs(600);
/// How long consent is remembered for one user and client.
pub(crate) const CONSENT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long the page of linked clients stays signed in.
pub(crate) const ACCOUNT_SESSION_TTL: Duration = Duration::from_secs(900);
