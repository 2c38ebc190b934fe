//! OAuth 2.1 resource server: verifying JWT access tokens against the issuer's
//! JWKS, and this resource's RFC 9728 metadata.
//!
//! A token is accepted only if: its `alg` is asymmetric (`none` and every HMAC
//! algorithm are refused before any key is looked at, which closes the
//! "HS256 signed with the public key" confusion), the key named by `kid` comes
//! from the JWKS and fits that `alg`, the signature verifies, `iss` is a
//! configured issuer, `aud` names this resource (compared after normalising
//! scheme and host case, default ports and a trailing slash), `exp` and `nbf`
//! hold within the leeway, and the scopes include the required ones. Each
//! failure has its own message, which the client gets in `error_description`.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use base64::Engine;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use wharf_core::{AuthMethod, Principal};

use crate::jwks::Jwks;

/// The algorithms a token may be signed with.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The OAuth side of the configuration.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// This server's resource identifier, the `aud` tokens must carry
    /// (`https://mcp.example.com/mcp`).
    pub resource: String,
    /// Issuers whose tokens are accepted; published as `authorization_servers`.
    pub issuers: Vec<String>,
    /// Where the issuer publishes its keys.
    pub jwks_url: String,
    /// Scopes every request must carry.
    pub required_scopes: Vec<String>,
    /// Scopes published in the resource metadata.
    pub scopes_supported: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The authorization server in this process, when account linking is on.
    pub own: Option<OwnIssuer>,
}

/// The key set, as an in-process authorization server gives it.
pub type KeySetFn = Arc<dyn Fn() -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;
/// Whether a token family (`sid`) was revoked.
pub type RevokedFn = Arc<dyn Fn(String) -> BoxFuture<'static, bool> + Send + Sync>;

/// An authorization server in this process (account linking): its keys come
/// without an HTTP round trip to itself, and its tokens are refused once their
/// family (`sid`) is revoked, on every replica.
#[derive(Clone)]
pub struct OwnIssuer {
    pub issuer: String,
    pub keys: KeySetFn,
    pub revoked: RevokedFn,
}

impl std::fmt::Debug for OwnIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused: the `error` and `error_description` of the
/// `WWW-Authenticate` challenge, and a bounded reason for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `invalid_token` (401) or `insufficient_scope` (403).
    pub error: &'static str,
    pub description: String,
    /// A fixed label: `expired`, `wrong_audience`, `unknown_key`, ...
    pub reason: &'static str,
    /// For `insufficient_scope`: the scopes to ask for.
    pub scope: Option<String>,
}

fn invalid(reason: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        error: "invalid_token",
        description: description.into(),
        reason,
        scope: None,
    }
}

/// Verifies access tokens for one resource.
#[derive(Debug)]
pub struct Verifier {
    config: OAuthConfig,
    jwks: Arc<Jwks>,
    resource: String,
}

impl Verifier {
    pub fn new(config: OAuthConfig) -> Self {
        let jwks = Arc::new(match &config.own {
            Some(own) => Jwks::local(config.jwks_url.clone(), own.keys.clone()),
            None => Jwks::new(config.jwks_url.clone()),
        });
        let resource = normalize_resource(&config.resource);
        Self {
            config,
            jwks,
            resource,
        }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    pub fn jwks(&self) -> &Arc<Jwks> {
        &self.jwks
    }

    /// The URL of this resource's metadata document (RFC 9728 §3.1: the
    /// well-known path inserted between the host and the resource's path).
    pub fn metadata_url(&self) -> String {
        metadata_url(&self.config.resource)
    }

    /// The resource metadata document.
    pub fn metadata(&self) -> Value {
        serde_json::json!({
            "resource": self.config.resource,
            "authorization_servers": self.config.issuers,
            "scopes_supported": self.config.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_signing_alg_values_supported": ACCEPTED.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
        })
    }

    /// Verify `token`; the caller it names, or why not.
    pub async fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let (alg, kid) = header_of(token)?;
        let Some(alg) = ACCEPTED.iter().find(|a| format!("{a:?}") == alg).copied() else {
            return Err(invalid(
                "bad_algorithm",
                format!(
                    "tokens signed with alg `{alg}` are not accepted; the issuer must sign with an asymmetric key (RS256, ES256, EdDSA, ...)"
                ),
            ));
        };
        let Some(key) = self.jwks.key(kid.as_deref()).await else {
            return Err(invalid(
                "unknown_key",
                match kid {
                    Some(kid) => format!("no key with kid `{kid}` in the issuer's JWKS"),
                    None => {
                        "the token names no kid and the issuer's JWKS holds several keys".to_owned()
                    }
                },
            ));
        };
        if key.alg.is_some_and(|k| k != alg) {
            return Err(invalid(
                "bad_algorithm",
                format!(
                    "the key the token names is for {:?}, not {alg:?}",
                    key.alg.unwrap_or(alg)
                ),
            ));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway.as_secs();
        v.validate_nbf = true;
        v.validate_aud = false; // checked below, after normalisation
        v.set_issuer(&self.config.issuers);
        v.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &v)
            .map_err(|e| self.explain(e.kind()))?;
        let claims = data.claims;
        self.check_audience(&claims)?;
        if let Some(own) = &self.config.own {
            let sid = claims.get("sid").and_then(Value::as_str);
            if claims.get("iss").and_then(Value::as_str) == Some(own.issuer.as_str())
                && let Some(sid) = sid
                && (own.revoked)(sid.to_owned()).await
            {
                return Err(invalid(
                    "revoked",
                    "the token was revoked (the client was unlinked, or its refresh token was replayed); sign in again",
                ));
            }
        }
        let scopes = scopes_of(&claims);
        let missing: Vec<&String> = self
            .config
            .required_scopes
            .iter()
            .filter(|s| !scopes.contains(*s))
            .collect();
        if !missing.is_empty() {
            return Err(Refusal {
                error: "insufficient_scope",
                description: format!(
                    "the token lacks the scope(s) {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                reason: "insufficient_scope",
                scope: Some(self.config.required_scopes.join(" ")),
            });
        }
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .or_else(|| claims.get("client_id").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        if subject.is_empty() {
            return Err(invalid(
                "no_subject",
                "the token has neither sub nor client_id",
            ));
        }
        Ok(Principal {
            subject,
            scopes,
            method: AuthMethod::OAuth { issuer },
            claims,
        })
    }

    fn explain(&self, kind: &ErrorKind) -> Refusal {
        match kind {
            ErrorKind::ExpiredSignature => invalid("expired", "the token has expired"),
            ErrorKind::ImmatureSignature => invalid(
                "not_yet_valid",
                "the token is not valid yet (nbf is in the future)",
            ),
            ErrorKind::InvalidIssuer => invalid(
                "wrong_issuer",
                format!(
                    "the token's issuer is not trusted here; accepted: {}",
                    self.config.issuers.join(", ")
                ),
            ),
            ErrorKind::InvalidSignature => {
                invalid("bad_signature", "the token's signature does not verify")
            }
            ErrorKind::MissingRequiredClaim(c) => {
                invalid("missing_claim", format!("the token has no `{c}` claim"))
            }
            ErrorKind::InvalidAlgorithm => {
                invalid("bad_algorithm", "the token's alg does not fit its key")
            }
            _ => invalid("malformed", "the token is not a well-formed JWT"),
        }
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), Refusal> {
        let auds: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if auds.iter().any(|a| normalize_resource(a) == self.resource) {
            return Ok(());
        }
        Err(invalid(
            "wrong_audience",
            if auds.is_empty() {
                format!(
                    "the token has no audience; it must be issued for {}",
                    self.config.resource
                )
            } else {
                format!(
                    "the token is for {}, not for this resource ({})",
                    auds.join(", "),
                    self.config.resource
                )
            },
        ))
    }
}

/// `alg` and `kid` from the token's header, read by hand so that `alg: none`
/// (which the JWT library cannot even represent) gets a precise refusal.
fn header_of(token: &str) -> Result<(String, Option<String>), Refusal> {
    let malformed = || {
        invalid(
            "malformed",
            "the token is not a well-formed JWT (three base64url parts)",
        )
    };
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg, kid))
}

/// `scope` (space-separated, RFC 8693/9068) or `scp` (a list, some issuers).
fn scopes_of(claims: &Map<String, Value>) -> BTreeSet<String> {
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
        (_, Some(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        (_, Some(Value::String(s))) => s.split_whitespace().map(str::to_owned).collect(),
        _ => BTreeSet::new(),
    }
}

/// A resource URL in the form two spellings of it compare equal in: scheme and
/// host lowercased, the scheme's default port dropped, no trailing slash.
pub fn normalize_resource(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.trim_end_matches('/').to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(p) = default_port
        && authority.ends_with(p)
    {
        authority.truncate(authority.len() - p.len());
    }
    format!("{scheme}://{authority}{}", path.trim_end_matches('/'))
}

/// RFC 9728 §3.1: `https://host/path` → `https://host/.well-known/oauth-protected-resource/path`.
pub fn metadata_url(resource: &str) -> String {
    let n = normalize_resource(resource);
    let Some((scheme, rest)) = n.split_once("://") else {
        return format!("{n}/.well-known/oauth-protected-resource");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    format!("{scheme}://{authority}/.well-known/oauth-protected-resource{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_compare_after_normalisation() {
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.com/mcp/",
            "https://mcp.example.com:443/mcp",
        ] {
            assert_eq!(
                normalize_resource(same),
                "https://mcp.example.com/mcp",
                "{same}"
            );
        }
        assert_ne!(
            normalize_resource("https://mcp.example.com:8443/mcp"),
            "https://mcp.example.com/mcp"
        );
        assert_ne!(
            normalize_resource("https://mcp.example.com/MCP"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(normalize_resource("http://h:80"), "http://h");
    }

    #[test]
    fn metadata_sits_under_the_well_known_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn alg_none_is_refused_by_name() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"x"}"#));
        assert_eq!(header_of(&token).unwrap().0, "none");
        assert_eq!(header_of("abc").unwrap_err().reason, "malformed");
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let c = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(scopes_of(&c(serde_json::json!({"scope": "a b"}))).len(), 2);
        assert_eq!(scopes_of(&c(serde_json::json!({"scp": ["a"]}))).len(), 1);
        assert!(scopes_of(&c(serde_json::json!({}))).is_empty());
    }
}
