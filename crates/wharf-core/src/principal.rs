//! Who is calling, as the transport established it, and what each tool demands.
//!
//! The HTTP layer authenticates a request (a named API key or an OAuth access
//! token) and attaches a [`Principal`] to it; handlers read it with
//! `CallContext::principal`. A tool may declare [`SecurityScheme`]s: `noauth`
//! (anonymous callers welcome) and/or `oauth2` with scopes. They are published
//! in the tool's `_meta.securitySchemes`, as the Apps SDK reads them, and
//! enforced by `App::call_tool`: a caller that satisfies none gets a tool error
//! carrying `_meta["mcp/www_authenticate"]`, which is what makes ChatGPT show its
//! account-linking UI for that one tool.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A static bearer key, known by its configured name (never its value).
    ApiKey { name: String },
    /// An OAuth 2.1 access token from `issuer`.
    OAuth { issuer: String },
}

/// The OAuth access token the caller presented, kept for a gateway that
/// exchanges it for an upstream's (RFC 8693). Never shown: its `Debug` hides it.
#[derive(Clone)]
pub struct CallerToken(pub std::sync::Arc<str>);

impl std::fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerToken(…)")
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The token's `sub`, or `key:<name>` for an API key.
    pub subject: String,
    pub scopes: BTreeSet<String>,
    pub method: AuthMethod,
    /// The token's claims (empty for API keys). Config SQL tools can bind one.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// An API-key caller: subject `key:<name>`, every scope (a key is an operator's credential).
    pub fn api_key(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            subject: format!("key:{name}"),
            scopes: BTreeSet::new(),
            method: AuthMethod::ApiKey { name },
            claims: Map::new(),
        }
    }

    /// Whether this caller holds every scope in `required`. API keys hold all scopes.
    pub fn has_scopes<'a>(&self, required: impl IntoIterator<Item = &'a String>) -> bool {
        matches!(self.method, AuthMethod::ApiKey { .. })
            || required.into_iter().all(|s| self.scopes.contains(s))
    }

    /// A claim as a string, for binding into SQL (`sub`, `email`, ...).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
}

/// What the HTTP layer tells tools about how to challenge a caller: the URL of
/// this server's OAuth protected-resource metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    pub resource_metadata: String,
}

/// One way a tool accepts callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityScheme {
    /// Anonymous callers may use the tool.
    NoAuth,
    /// Callers with an OAuth token holding these scopes.
    OAuth2 { scopes: Vec<String> },
}

impl SecurityScheme {
    pub fn to_json(&self) -> Value {
        match self {
            SecurityScheme::NoAuth => json!({"type": "noauth"}),
            SecurityScheme::OAuth2 { scopes } => json!({"type": "oauth2", "scopes": scopes}),
        }
    }

    fn admits(&self, who: Option<&Principal>) -> bool {
        match self {
            SecurityScheme::NoAuth => true,
            SecurityScheme::OAuth2 { scopes } => who.is_some_and(|p| p.has_scopes(scopes)),
        }
    }
}

/// Whether `who` may call a tool declaring `schemes`; `Err` carries the scopes to
/// ask for. A tool without schemes accepts whoever the transport let in.
pub(crate) fn check(
    schemes: &[SecurityScheme],
    who: Option<&Principal>,
) -> Result<(), Vec<String>> {
    if schemes.is_empty() || schemes.iter().any(|s| s.admits(who)) {
        return Ok(());
    }
    Err(schemes
        .iter()
        .filter_map(|s| match s {
            SecurityScheme::OAuth2 { scopes } => Some(scopes.clone()),
            SecurityScheme::NoAuth => None,
        })
        .next()
        .unwrap_or_default())
}

/// The `WWW-Authenticate` value of a per-tool challenge.
pub(crate) fn www_authenticate(
    challenge: Option<&AuthChallenge>,
    who: Option<&Principal>,
    scopes: &[String],
) -> String {
    let mut parts = vec![];
    if let Some(c) = challenge {
        parts.push(format!("resource_metadata=\"{}\"", c.resource_metadata));
    }
    if who.is_some() {
        parts.push("error=\"insufficient_scope\"".to_owned());
    } else {
        parts.push("error=\"invalid_token\"".to_owned());
        parts.push("error_description=\"this tool needs you to sign in\"".to_owned());
    }
    if !scopes.is_empty() {
        parts.push(format!("scope=\"{}\"", scopes.join(" ")));
    }
    format!("Bearer {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(scopes: &[&str]) -> Principal {
        Principal {
            subject: "alice".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            method: AuthMethod::OAuth {
                issuer: "https://as.example".into(),
            },
            claims: Map::new(),
        }
    }

    #[test]
    fn schemes_admit_whom_they_say() {
        let read = SecurityScheme::OAuth2 {
            scopes: vec!["catalog:read".into()],
        };
        assert_eq!(check(&[], None), Ok(()));
        assert_eq!(check(&[SecurityScheme::NoAuth, read.clone()], None), Ok(()));
        assert_eq!(
            check(std::slice::from_ref(&read), None),
            Err(vec!["catalog:read".into()])
        );
        assert_eq!(
            check(std::slice::from_ref(&read), Some(&user(&[]))),
            Err(vec!["catalog:read".into()])
        );
        assert_eq!(
            check(std::slice::from_ref(&read), Some(&user(&["catalog:read"]))),
            Ok(())
        );
        assert_eq!(
            check(
                std::slice::from_ref(&read),
                Some(&Principal::api_key("ops"))
            ),
            Ok(())
        );
    }

    #[test]
    fn the_challenge_says_what_is_missing() {
        let c = AuthChallenge {
            resource_metadata: "https://mcp.example/.well-known/oauth-protected-resource/mcp"
                .into(),
        };
        assert_eq!(
            www_authenticate(Some(&c), Some(&user(&[])), &["a".into(), "b".into()]),
            "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", error=\"insufficient_scope\", scope=\"a b\""
        );
        assert_eq!(
            www_authenticate(None, None, &[]),
            "Bearer error=\"invalid_token\", error_description=\"this tool needs you to sign in\""
        );
    }
}
