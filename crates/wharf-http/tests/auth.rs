//! Bearer API keys and the OAuth resource server: every refusal answers with the
//! documented status, `WWW-Authenticate` and message; good credentials reach the
//! tool as a `Principal`. Tokens are made here with test keys
//! (tests/fixtures), and the JWKS is served by a real HTTP server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wharf_core::{App, SecurityScheme, ToolError, ToolSpec, text_result};
use wharf_http::{
    HttpConfig,
    auth::{ApiKey, AuthConfig},
    oauth::OAuthConfig,
};

use crate::common::{TestServer, post_modern, rpc_body, start_app};

const ISSUER: &str = "https://as.example";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER_KEY: &str = include_str!("fixtures/issuer.pem");
const ROGUE_KEY: &str = include_str!("fixtures/rogue.pem");
const ISSUER_PUBLIC: &str = include_str!("fixtures/issuer.pub.pem");
const JWKS: &str = include_str!("fixtures/jwks.json");
const KEY_A: &str = "key-a-0123456789abcdef0123456789abcdef";
const KEY_B: &str = "key-b-0123456789abcdef0123456789abcdef";

/// The test app: `whoami` says who called; `public` admits anyone; `private`
/// needs an OAuth token with `catalog:write`.
fn app() -> App {
    App::builder("auth-test", "1")
        .tool(
            ToolSpec::new("whoami")
                .description("Who is calling")
                .handler(|ctx, _| async move {
                    let who = ctx.principal().map_or("anonymous".to_owned(), |p| {
                        format!(
                            "{} [{}]",
                            p.subject,
                            p.scopes.iter().cloned().collect::<Vec<_>>().join(" ")
                        )
                    });
                    Ok::<_, ToolError>(text_result(who))
                }),
        )
        .tool(
            ToolSpec::new("public")
                .description("Anyone")
                .security(vec![SecurityScheme::NoAuth])
                .handler(|_, _| async { Ok::<_, ToolError>(text_result("hello")) }),
        )
        .tool(
            ToolSpec::new("private")
                .description("Writers only")
                .security(vec![SecurityScheme::OAuth2 {
                    scopes: vec!["catalog:write".into()],
                }])
                .handler(|_, _| async { Ok::<_, ToolError>(text_result("written")) }),
        )
        .build()
        .unwrap()
}

/// A JWKS endpoint that counts its fetches.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { ([("content-type", "application/json")], JWKS) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, fetches)
}

fn no_limits() -> wharf_http::rate_limit::RateLimitConfig {
    wharf_http::rate_limit::RateLimitConfig {
        enabled: false,
        ..Default::default()
    }
}

async fn oauth_server(anonymous: bool) -> (TestServer, Arc<AtomicUsize>) {
    let (jwks_url, fetches) = jwks_server().await;
    let config = HttpConfig {
        auth: AuthConfig {
            api_keys: vec![],
            oauth: Some(OAuthConfig {
                resource: RESOURCE.into(),
                issuers: vec![ISSUER.into()],
                jwks_url,
                required_scopes: vec!["catalog:read".into()],
                scopes_supported: vec!["catalog:read".into(), "catalog:write".into()],
                leeway: Duration::from_secs(30),
                own: None,
            }),
            anonymous,
        },
        rate_limit: no_limits(),
        ..Default::default()
    };
    (start_app(app(), config).await, fetches)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "exp": now() + 300,
        "iat": now(),
        "scope": "catalog:read",
    })
}

fn sign(claims: &Value, pem: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn good(claims: &Value) -> String {
    sign(claims, ISSUER_KEY, Some("k1"))
}

fn call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {}, "_meta": crate::common::modern_meta()}})
}

async fn call_with(s: &TestServer, tool: &str, token: Option<&str>) -> reqwest::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let extra: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    post_modern(s, call(tool), &extra).await
}

fn challenge(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn refused(s: &TestServer, token: &str) -> (u16, String) {
    let r = call_with(s, "whoami", Some(token)).await;
    let status = r.status().as_u16();
    let c = challenge(&r);
    assert!(
        c.starts_with("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""),
        "{c}"
    );
    (status, c)
}

async fn text_of(r: reqwest::Response) -> String {
    let body = rpc_body(r).await;
    body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn api_keys_are_checked_and_either_key_works_during_a_rotation() {
    let config = HttpConfig {
        auth: AuthConfig {
            api_keys: vec![
                ApiKey {
                    name: "old".into(),
                    key: KEY_A.into(),
                },
                ApiKey {
                    name: "new".into(),
                    key: KEY_B.into(),
                },
            ],
            oauth: None,
            anonymous: false,
        },
        rate_limit: no_limits(),
        ..Default::default()
    };
    let s = start_app(app(), config).await;

    let r = call_with(&s, "whoami", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer realm=\"wharf\"");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Authentication required: send `Authorization: Bearer <token>`"
    );

    let r = call_with(&s, "whoami", Some("key-a-0123456789abcdef0123456789abcdeX")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenge(&r),
        "Bearer realm=\"wharf\", error=\"invalid_token\", error_description=\"the token is not a valid API key\""
    );

    let r = crate::common::client()
        .post(s.url("/mcp"))
        .header("authorization", format!("Basic {KEY_A}"))
        .json(&json!({"action": "list_tools"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "a non-Bearer scheme is a malformed request"
    );
    assert!(challenge(&r).contains("error=\"invalid_request\""));

    assert_eq!(
        text_of(call_with(&s, "whoami", Some(KEY_A)).await).await,
        "key:old []"
    );
    assert_eq!(
        text_of(call_with(&s, "whoami", Some(KEY_B)).await).await,
        "key:new []"
    );

    // Health, readiness and metrics stay open to probes.
    let health = crate::common::client()
        .get(s.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_good_token_reaches_the_tool_with_its_subject_and_scopes() {
    let (s, fetches) = oauth_server(false).await;
    let r = call_with(&s, "whoami", Some(&good(&claims()))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(text_of(r).await, "alice [catalog:read]");

    // The audience is compared after normalisation.
    let mut c = claims();
    c["aud"] = json!(["https://other.example", "HTTPS://MCP.EXAMPLE.COM:443/mcp/"]);
    assert_eq!(call_with(&s, "whoami", Some(&good(&c))).await.status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "keys are cached");
}

#[tokio::test]
async fn each_bad_token_is_refused_with_its_reason() {
    let (s, _) = oauth_server(false).await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("https://elsewhere.example/mcp");
    let mut other_port = claims();
    other_port["aud"] = json!("https://mcp.example.com:8443/mcp");
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut future = claims();
    future["nbf"] = json!(now() + 3600);
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(),
        &EncodingKey::from_secret(ISSUER_PUBLIC.as_bytes()),
    )
    .unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", good(&expired), "the token has expired"),
        (
            "wrong audience",
            good(&wrong_aud),
            "the token is for https://elsewhere.example/mcp, not for this resource (https://mcp.example.com/mcp)",
        ),
        (
            "another resource on another port",
            good(&other_port),
            "not for this resource",
        ),
        (
            "wrong issuer",
            good(&wrong_iss),
            "the token's issuer is not trusted here; accepted: https://as.example",
        ),
        ("not yet valid", good(&future), "the token is not valid yet"),
        (
            "alg none",
            none,
            "tokens signed with alg `none` are not accepted",
        ),
        (
            "HS256 signed with the public key",
            confused,
            "tokens signed with alg `HS256` are not accepted",
        ),
        (
            "a key not in the JWKS",
            sign(&claims(), ROGUE_KEY, Some("k1")),
            "the token's signature does not verify",
        ),
        (
            "an unknown kid",
            sign(&claims(), ISSUER_KEY, Some("k9")),
            "no key with kid `k9` in the issuer's JWKS",
        ),
        (
            "garbage",
            "not.a.jwt".into(),
            "the token is not a well-formed JWT",
        ),
    ];
    for (what, token, expected) in cases {
        let (status, c) = refused(&s, &token).await;
        assert_eq!(status, 401, "{what}: {c}");
        assert!(c.contains("error=\"invalid_token\""), "{what}: {c}");
        assert!(c.contains(expected), "{what}: expected {expected:?} in {c}");
    }

    let mut no_scope = claims();
    no_scope["scope"] = json!("profile");
    let (status, c) = refused(&s, &good(&no_scope)).await;
    assert_eq!(status, 403, "{c}");
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"catalog:read\""), "{c}");

    let r = call_with(&s, "whoami", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenge(&r),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_issuer() {
    let (s, fetches) = oauth_server(false).await;
    assert_eq!(
        call_with(&s, "whoami", Some(&good(&claims())))
            .await
            .status(),
        200
    );
    for i in 0..20 {
        let t = sign(&claims(), ISSUER_KEY, Some(&format!("made-up-{i}")));
        assert_eq!(call_with(&s, "whoami", Some(&t)).await.status(), 401);
    }
    // One fetch for the first token; the unknown kids may trigger one refresh at
    // most within MIN_REFRESH_INTERVAL (30 s), not one each.
    assert!(
        fetches.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        fetches.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn the_protected_resource_metadata_names_issuer_resource_and_scopes() {
    let (s, _) = oauth_server(false).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = crate::common::client()
            .get(s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["resource"], RESOURCE);
        assert_eq!(m["authorization_servers"], json!([ISSUER]));
        assert_eq!(
            m["scopes_supported"],
            json!(["catalog:read", "catalog:write"])
        );
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    }
    // Readiness includes the JWKS, which the probe loads.
    let r = crate::common::client()
        .get(s.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn per_tool_security_challenges_only_the_tool_that_needs_it() {
    let (s, _) = oauth_server(true).await;
    let tools = rpc_body(
        post_modern(&s, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": crate::common::modern_meta()}}), &[]).await,
    )
    .await;
    let private = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "private")
        .unwrap()
        .clone();
    assert_eq!(
        private["_meta"]["securitySchemes"],
        json!([{"type": "oauth2", "scopes": ["catalog:write"]}])
    );

    // Anonymous: the noauth tool answers; the oauth2 tool asks to sign in.
    assert_eq!(text_of(call_with(&s, "public", None).await).await, "hello");
    let body = rpc_body(call_with(&s, "private", None).await).await;
    assert_eq!(body["result"]["isError"], true);
    assert_eq!(
        body["result"]["content"][0]["text"],
        "`private` needs you to sign in first"
    );
    let www = body["result"]["_meta"]["mcp/www_authenticate"][0]
        .as_str()
        .unwrap();
    assert!(www.starts_with("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""), "{www}");
    assert!(www.contains("scope=\"catalog:write\""), "{www}");

    // Signed in without the scope: insufficient_scope; with it: the tool runs.
    let body = rpc_body(call_with(&s, "private", Some(&good(&claims()))).await).await;
    assert!(
        body["result"]["_meta"]["mcp/www_authenticate"][0]
            .as_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    let mut writer = claims();
    writer["scope"] = json!("catalog:read catalog:write");
    assert_eq!(
        text_of(call_with(&s, "private", Some(&good(&writer))).await).await,
        "written"
    );

    // A bad token is refused even where anonymous callers are welcome.
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    assert_eq!(
        call_with(&s, "public", Some(&good(&expired)))
            .await
            .status(),
        401
    );
}
