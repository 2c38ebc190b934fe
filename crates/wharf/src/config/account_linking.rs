//! `[account_linking]`: the settings of Wharf's own authorization server,
//! checked, and the resource-server side pointed at it (its issuer, its keys,
//! this server's resource).

use super::{Config, Problem, Reader, layers::Layer, setting_at};

/// The authorization server's settings, or `None` when account linking is off.
/// Sets `config.http.auth.oauth` to accept the tokens it issues.
pub(super) fn read(
    r: &mut Reader<'_>,
    layer: &Layer,
    config: &mut Config,
) -> Option<wharf_authz::Settings> {
    let word = r.word("account_linking.provider");
    let preset = wharf_authz::Preset::parse(word)?;
    let at = setting_at(layer, "account_linking.provider");
    let fail = |r: &mut Reader<'_>, message: String| {
        r.problems.push(Problem {
            at: at.clone(),
            message,
        })
    };
    let Some(public_url) = config.public_url.clone() else {
        fail(r, "account linking needs the URL clients reach this server at: set server.public_url (WHARF_PUBLIC_URL), such as https://mcp.example.com/mcp".into());
        return None;
    };
    let Some(state_key) = config.state_key.as_ref().map(|k| k.expose().to_owned()) else {
        fail(r, "account linking needs server.state_key (WHARF_STATE_KEY, at least 32 characters, the same on every replica): it seals the signing keys and every sign-in state; make one with `openssl rand -hex 32`".into());
        return None;
    };
    let Ok(url) = url::Url::parse(&public_url) else {
        return None; // server.public_url reports its own problem.
    };
    let issuer = url.origin().ascii_serialization();
    let resource = r.optional_text("auth.resource").unwrap_or(public_url);
    let client_id = r.optional_text("account_linking.client_id");
    let client_secret = r.optional_text("account_linking.client_secret");
    let provider_issuer = r.optional_text("account_linking.issuer");
    let tenant = r.optional_text("account_linking.tenant");
    if client_id.is_none() || client_secret.is_none() {
        fail(
            r,
            format!(
                "account linking with {word} needs Wharf's client at the provider: set account_linking.client_id and account_linking.client_secret (WHARF_ACCOUNT_LINKING_CLIENT_SECRET or its _FILE); register the redirect URI {issuer}/oauth/callback there"
            ),
        );
    }
    if preset == wharf_authz::Preset::Entra && tenant.is_none() {
        fail(r, "account linking with entra needs the tenant: set account_linking.tenant (WHARF_ACCOUNT_LINKING_TENANT) to your tenant ID or domain (contoso.onmicrosoft.com)".into());
    }
    let allowed_tenants = r.list("account_linking.allowed_tenants", Vec::new);
    if preset == wharf_authz::Preset::Entra
        && tenant.as_deref().is_some_and(wharf_authz::is_multi_tenant)
        && allowed_tenants.is_empty()
    {
        fail(r, "a multi-tenant Entra authority lets any Microsoft tenant sign in, with whatever roles it gives its users: name the tenant IDs to admit in account_linking.allowed_tenants".into());
    }
    if preset == wharf_authz::Preset::Oidc && provider_issuer.is_none() {
        fail(r, "account linking with oidc needs the provider's issuer URL: set account_linking.issuer (WHARF_ACCOUNT_LINKING_ISSUER), such as https://login.example.com".into());
    }
    if !r.list("auth.oauth_issuers", Vec::new).is_empty() {
        fail(r, "account linking makes Wharf the authorization server of this endpoint; remove auth.oauth_issuers and auth.jwks_url (one issuer per endpoint)".into());
    }
    let scopes = match layer.get("account_linking.scopes") {
        Some(_) => r.list("account_linking.scopes", Vec::new),
        None => r.list("auth.scopes_supported", Vec::new),
    };
    let mut scopes_by_group: Vec<(String, Vec<String>)> = Vec::new();
    for entry in r.list("account_linking.scopes_by_group", Vec::new) {
        match entry.split_once('=') {
            Some((group, granted)) if !group.trim().is_empty() => {
                let granted: Vec<String> = granted.split_whitespace().map(str::to_owned).collect();
                if let Some(unknown) = granted.iter().find(|s| !scopes.contains(s)) {
                    r.problems.push(Problem {
                        at: setting_at(layer, "account_linking.scopes_by_group"),
                        message: format!("`{entry}` names scope `{unknown}`, which account_linking.scopes does not offer"),
                    });
                }
                scopes_by_group.push((group.trim().to_owned(), granted));
            }
            _ => r.problems.push(Problem {
                at: setting_at(layer, "account_linking.scopes_by_group"),
                message: format!("`{entry}` is not `group=scope scope`"),
            }),
        }
    }
    // Unset: everyone may receive the scopes no group rule names (a scope a
    // rule names is for that group only).
    let default_scopes = match layer.get("account_linking.default_scopes") {
        Some(_) => r.list("account_linking.default_scopes", Vec::new),
        None => scopes
            .iter()
            .filter(|s| !scopes_by_group.iter().any(|(_, g)| g.contains(s)))
            .cloned()
            .collect(),
    };
    let settings = wharf_authz::Settings {
        issuer: issuer.clone(),
        resource: resource.clone(),
        provider: wharf_authz::ProviderSettings {
            preset,
            issuer: provider_issuer,
            tenant,
            client_id: client_id.unwrap_or_default(),
            client_secret: wharf_authz::Secret(client_secret.unwrap_or_default()),
            scopes: r.list("account_linking.provider_scopes", Vec::new),
            github_url: r.text("account_linking.github_url"),
            github_api_url: r.text("account_linking.github_api_url"),
            allowed_tenants,
        },
        scopes: scopes.clone(),
        default_scopes,
        scopes_by_group,
        allow: wharf_authz::AllowList {
            email_domains: r.list("account_linking.allowed_email_domains", Vec::new),
            github_orgs: r.list("account_linking.allowed_github_orgs", Vec::new),
            groups: r.list("account_linking.allowed_groups", Vec::new),
        },
        access_token_ttl: r.duration("account_linking.access_token_ttl"),
        refresh_token_ttl: r.duration("account_linking.refresh_token_ttl"),
        grant_lifetime: r.duration("account_linking.grant_lifetime"),
        key_rotation: r.duration("account_linking.key_rotation"),
        max_clients: r.count("account_linking.max_clients"),
        client_idle_expiry: r.duration("account_linking.client_idle_expiry"),
        registrations_per_minute: u32::try_from(
            r.count("account_linking.registrations_per_minute"),
        )
        .unwrap_or(u32::MAX),
        metadata_fetch: wharf_authz::MetadataFetchLimits {
            allow_private: r.bool("account_linking.allow_private_client_metadata"),
            extra_roots: match r.optional_text("account_linking.client_metadata_ca") {
                None => Vec::new(),
                Some(path) => {
                    let read = std::fs::read(&path)
                        .map_err(|e| format!("cannot read {path}: {e}"))
                        .and_then(|pem| {
                            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                                format!("{path} is not a PEM bundle of certificates: {e}")
                            })
                        });
                    read.unwrap_or_else(|message| {
                        r.problems.push(Problem {
                            at: setting_at(layer, "account_linking.client_metadata_ca"),
                            message,
                        });
                        Vec::new()
                    })
                }
            },
            ..Default::default()
        },
        secret: wharf_authz::Secret(state_key),
    };
    let required_scopes = r.list("auth.required_scopes", Vec::new);
    config.http.auth.oauth = Some(wharf_http::oauth::OAuthConfig {
        resource,
        issuers: vec![issuer.clone()],
        jwks_url: format!("{issuer}/oauth/jwks.json"),
        required_scopes,
        scopes_supported: scopes,
        leeway: r.duration("auth.leeway"),
        // Filled in when serving, with the authorization server itself.
        own: None,
    });
    Some(settings)
}
