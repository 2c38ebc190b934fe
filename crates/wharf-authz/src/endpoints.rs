//! The authorization server's HTTP endpoints: each reads its request, asks
//! `grants` or the provider, and answers as its RFC says (JSON errors at
//! `token`/`register`/`revoke`; an error page before the client's redirect URI
//! is known; a redirect with `error`, `state` and `iss` after).
//!
//! A sign-in is bound to the browser that began it: `authorize` leaves a
//! random nonce in a cookie whose hash is sealed into the state sent to the
//! provider, and the callback and the consent form check it, so a link
//! forwarded to another browser (or a forged consent post) goes nowhere.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    Form, Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_core::seal::{random_token, sha256_base64url};

use crate::{
    clients::{self, Client},
    error::OAuthError,
    grants::{AuthRequest, same_resource},
    pages,
    provider::Identity,
    server::{AuthServer, now_ms},
    settings::{ACCOUNT_SESSION_TTL, SIGN_IN_TTL},
};

/// The largest body `register`, `token` and `revoke` read.
const MAX_BODY: usize = 16 * 1024;
const ACCOUNT_COOKIE: &str = "wharf_account";

type Shared = State<Arc<AuthServer>>;

/// The authorization server's routes, to merge beside `/mcp`.
pub fn routes(server: Arc<AuthServer>) -> Router {
    let api = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(openid))
        .route("/oauth/jwks.json", get(jwks))
        .route("/oauth/token", post(token).options(preflight))
        .route("/oauth/register", post(register).options(preflight))
        .route("/oauth/revoke", post(revoke).options(preflight))
        // Browser-based clients (MCP Inspector) call these cross-origin; no
        // credentials ride on them, so any origin may.
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                r.headers_mut().insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                r
            },
        ));
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/callback", get(callback))
        .route("/oauth/consent", post(consent))
        .route("/oauth/account", get(account))
        .route("/oauth/account/unlink", post(unlink))
        .merge(api)
        .route_layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

/// A CORS preflight: a browser-based client (MCP Inspector) may post here.
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

async fn metadata(State(s): Shared) -> Json<Value> {
    Json(s.metadata())
}

async fn openid(State(s): Shared) -> Json<Value> {
    Json(s.openid_configuration())
}

async fn jwks(State(s): Shared) -> Response {
    match s.published_keys().await {
        Ok(keys) => ([(header::CACHE_CONTROL, "max-age=300")], Json(keys)).into_response(),
        Err(e) => OAuthError::server(e).into_response(),
    }
}

/// What goes to the provider and comes back sealed in `state`.
#[derive(Serialize, Deserialize)]
struct SignIn {
    /// `None`: the user is signing in to the page of linked clients.
    request: Option<AuthRequest>,
    verifier: String,
    nonce: String,
    cookie: String,
    browser: String,
    until_ms: i64,
}

/// What the consent form carries back, sealed.
#[derive(Serialize, Deserialize)]
struct Ticket {
    request: AuthRequest,
    identity: Identity,
    scopes: Vec<String>,
    cookie: String,
    browser: String,
    until_ms: i64,
}

/// The page of linked clients' session, sealed in its cookie.
#[derive(Serialize, Deserialize)]
struct AccountSession {
    subject: String,
    user: String,
    until_ms: i64,
}

impl AuthServer {
    fn seal<T: Serialize>(&self, value: &T, context: &str) -> String {
        self.sealer.seal(
            &serde_json::to_vec(value).expect("state serializes"),
            context,
        )
    }
    fn open<T: for<'de> Deserialize<'de>>(&self, sealed: &str, context: &str) -> Option<T> {
        serde_json::from_slice(&self.sealer.open(sealed, context)?).ok()
    }
    fn secure_cookies(&self) -> bool {
        self.settings.issuer.starts_with("https://")
    }
    fn cookie(&self, name: &str, value: &str, max_age: std::time::Duration) -> HeaderValue {
        let secure = if self.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            max_age.as_secs()
        ))
        .expect("a cookie header")
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn redirect_to(url: &str) -> Response {
    Redirect::to(url).into_response()
}

/// Send the browser to the provider; `request` is `None` for the account page.
async fn begin_sign_in(s: &AuthServer, request: Option<AuthRequest>) -> Response {
    let browser = random_token();
    let name = format!("wharf_authz_{}", &random_token()[..10]);
    let sign_in = SignIn {
        request,
        verifier: random_token(),
        nonce: random_token(),
        cookie: name.clone(),
        browser: sha256_base64url(&browser),
        until_ms: now_ms() + SIGN_IN_TTL.as_millis() as i64,
    };
    let state = s.seal(&sign_in, "sign-in");
    let challenge = sha256_base64url(&sign_in.verifier);
    match s
        .provider
        .authorize_url(
            &s.endpoint("/oauth/callback"),
            &state,
            &challenge,
            &sign_in.nonce,
        )
        .await
    {
        Ok(url) => {
            s.note_provider(Ok(()));
            let mut r = redirect_to(&url);
            r.headers_mut()
                .append(header::SET_COOKIE, s.cookie(&name, &browser, SIGN_IN_TTL));
            r
        }
        Err(e) => {
            s.note_provider(Err(e.to_string()));
            pages::error(
                StatusCode::BAD_GATEWAY,
                "Sign-in is unavailable",
                &format!(
                    "{e}. Existing sessions keep working; try signing in again in a few minutes."
                ),
                None,
            )
        }
    }
}

async fn authorize(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let bad = |m: String| {
        pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            &m,
            None,
        )
    };
    let Some(client_id) = q.get("client_id") else {
        return bad(
            "The request names no client_id. The app that sent you here must register first."
                .into(),
        );
    };
    let client = match s.client(client_id).await {
        Ok(c) => c,
        Err(e) => return bad(e.message),
    };
    let redirect_uri = match q.get("redirect_uri") {
        Some(u) if client.redirect_uris.contains(u) => u.clone(),
        Some(u) => {
            return bad(format!(
                "The redirect URI {u} is not one {} registered (they must match exactly).",
                client.display_name()
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return bad(
                "The request has no redirect_uri and the client registered several.".into(),
            );
        }
    };
    let mut request = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri_given: q.contains_key("redirect_uri"),
        redirect_uri,
        state: q.get("state").cloned(),
        code_challenge: String::new(),
        scopes: Vec::new(),
        resource: s.settings.resource.clone(),
    };
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
    let refuse = |error: &str, description: &str| {
        redirect_to(&s.redirect(
            &request,
            &[("error", error), ("error_description", description)],
        ))
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return refuse("unsupported_response_type", "response_type must be `code`");
    }
    let Some(challenge) = q.get("code_challenge").filter(|c| !c.is_empty()) else {
        return refuse(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return refuse(
            "invalid_request",
            "code_challenge_method must be S256; `plain` (or none named) is not accepted",
        );
    }
    if !(43..=128).contains(&challenge.len()) {
        return refuse(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        );
    }
    if let Some(resource) = q.get("resource")
        && !same_resource(resource, &s.settings.resource)
    {
        return refuse(
            "invalid_target",
            &format!(
                "this server issues tokens for {} only, not {resource}",
                s.settings.resource
            ),
        );
    }
    let scopes = match s.requested_scopes(q.get("scope").map(String::as_str)) {
        Ok(sc) => sc,
        Err(m) => return refuse("invalid_scope", &m),
    };
    request.code_challenge = challenge.clone();
    request.scopes = scopes;
    begin_sign_in(&s, Some(request)).await
}

async fn callback(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let invalid = |m: &str| {
        pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be finished",
            m,
            None,
        )
    };
    let Some(sign_in) = q
        .get("state")
        .and_then(|st| s.open::<SignIn>(st, "sign-in"))
    else {
        return invalid(
            "The state that came back from the identity provider is not one this server issued (state mismatch). Start again from the app.",
        );
    };
    if sign_in.until_ms < now_ms() {
        return invalid("This sign-in took longer than 10 minutes. Start again from the app.");
    }
    if cookie(&headers, &sign_in.cookie)
        .map(sha256_base64url)
        .as_deref()
        != Some(sign_in.browser.as_str())
    {
        return invalid(
            "This sign-in was started in another browser (or its cookie was blocked). Start again from the app, in this browser.",
        );
    }
    let back = sign_in.request.as_ref().map(|r| {
        s.redirect(
            r,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "the sign-in at the identity provider did not complete",
                ),
            ],
        )
    });
    let back_link = back.as_deref().map(|b| ("Return to the app", b));
    if let Some(error) = q.get("error") {
        let detail = q
            .get("error_description")
            .map_or(String::new(), |d| format!(": {d}"));
        return pages::error(
            StatusCode::FORBIDDEN,
            "Sign-in did not complete",
            &format!(
                "{} answered {error}{detail}.",
                s.provider.preset().display()
            ),
            back_link,
        );
    }
    let Some(code) = q.get("code") else {
        return invalid("The identity provider sent no code.");
    };
    let identity = match s
        .provider
        .identity(
            code,
            &sign_in.verifier,
            &sign_in.nonce,
            &s.endpoint("/oauth/callback"),
            now_ms() / 1000,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            if matches!(e, crate::provider::ProviderError::Unreachable(_)) {
                s.note_provider(Err(e.to_string()));
            }
            tracing::warn!(error = %e, "a sign-in failed at the identity provider");
            s.metrics.sign_ins.with_label_values(&["failed"]).inc();
            return pages::error(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                &format!("{e}."),
                back_link,
            );
        }
    };
    let user = identity
        .email
        .clone()
        .unwrap_or_else(|| identity.subject.clone());
    let Some(request) = sign_in.request else {
        // The page of linked clients.
        let session = AccountSession {
            subject: identity.subject.clone(),
            user,
            until_ms: now_ms() + ACCOUNT_SESSION_TTL.as_millis() as i64,
        };
        let mut r = redirect_to("/oauth/account");
        let h = r.headers_mut();
        h.append(
            header::SET_COOKIE,
            s.cookie(
                ACCOUNT_COOKIE,
                &s.seal(&session, "account"),
                ACCOUNT_SESSION_TTL,
            ),
        );
        h.append(
            header::SET_COOKIE,
            s.cookie(&sign_in.cookie, "", std::time::Duration::ZERO),
        );
        return r;
    };
    if let Some(why) = s.refused(&identity) {
        tracing::info!(subject = %identity.subject, "a sign-in was refused by the allow-list");
        s.metrics.sign_ins.with_label_values(&["refused"]).inc();
        let denied = s.redirect(
            &request,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "this account is not allowed to use this server",
                ),
            ],
        );
        return pages::error(
            StatusCode::FORBIDDEN,
            "This account is not allowed here",
            &format!("{why}. Sign in with another account, or ask the server's operator."),
            Some(("Return to the app", &denied)),
        );
    }
    let client = match s.client(&request.client_id).await {
        Ok(c) => c,
        Err(e) => return invalid(&e.message),
    };
    let scopes = s.granted_scopes(&request, &identity);
    if s.remembered(&identity.subject, &client.client_id, &scopes)
        .await
    {
        return finish(&s, &request, identity, scopes).await;
    }
    let ticket = Ticket {
        request,
        identity,
        scopes,
        cookie: sign_in.cookie,
        browser: sign_in.browser,
        until_ms: now_ms() + SIGN_IN_TTL.as_millis() as i64,
    };
    consent_page(&s, &client, &ticket, &user)
}

fn consent_page(s: &AuthServer, client: &Client, ticket: &Ticket, user: &str) -> Response {
    let redirect_host = url::Url::parse(&ticket.request.redirect_uri)
        .ok()
        .map(|u| {
            u.host_str()
                .map_or_else(|| u.scheme().to_owned(), str::to_owned)
        })
        .unwrap_or_default();
    let sealed = s.seal(ticket, "consent");
    let id_host = url::Url::parse(&client.client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    pages::consent(&pages::ConsentView {
        client_name: &client.display_name(),
        client_id: &client.client_id,
        client_uri: client.client_uri.as_deref(),
        redirect_host: &redirect_host,
        metadata_document: client.metadata_document,
        elsewhere: client.metadata_document && id_host.as_deref() != Some(redirect_host.as_str()),
        user,
        scopes: &ticket.scopes,
        resource: &ticket.request.resource,
        ticket: &sealed,
    })
}

async fn finish(
    s: &AuthServer,
    request: &AuthRequest,
    identity: Identity,
    scopes: Vec<String>,
) -> Response {
    match s.issue_code(request, identity, scopes).await {
        Ok(url) => {
            s.metrics.sign_ins.with_label_values(&["completed"]).inc();
            redirect_to(&url)
        }
        Err(e) => redirect_to(&s.redirect(
            request,
            &[
                ("error", "server_error"),
                ("error_description", &e.description),
            ],
        )),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    ticket: String,
    decision: String,
    #[serde(default)]
    remember: Option<String>,
}

async fn consent(State(s): Shared, headers: HeaderMap, Form(f): Form<ConsentForm>) -> Response {
    let invalid = |m: &str| {
        pages::error(
            StatusCode::BAD_REQUEST,
            "This consent cannot be recorded",
            m,
            None,
        )
    };
    let Some(ticket) = s.open::<Ticket>(&f.ticket, "consent") else {
        return invalid("The form was not issued by this server. Start again from the app.");
    };
    if ticket.until_ms < now_ms() {
        return invalid("This page was open longer than 10 minutes. Start again from the app.");
    }
    if cookie(&headers, &ticket.cookie)
        .map(sha256_base64url)
        .as_deref()
        != Some(ticket.browser.as_str())
    {
        return invalid(
            "This consent was started in another browser. Start again from the app, in this browser.",
        );
    }
    let done = |mut r: Response| {
        r.headers_mut().append(
            header::SET_COOKIE,
            s.cookie(&ticket.cookie, "", std::time::Duration::ZERO),
        );
        r
    };
    if f.decision != "approve" {
        s.metrics.sign_ins.with_label_values(&["denied"]).inc();
        let url = s.redirect(
            &ticket.request,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied access"),
            ],
        );
        return done(redirect_to(&url));
    }
    if f.remember.is_some()
        && let Ok(client) = s.client(&ticket.request.client_id).await
        && let Err(e) = s
            .remember(&ticket.identity.subject, &client, &ticket.scopes)
            .await
    {
        tracing::warn!(error = %e.description, "cannot remember a consent");
    }
    done(finish(&s, &ticket.request, ticket.identity, ticket.scopes).await)
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-encoded, then base64) or the body.
fn credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    }
}

fn form_of(body: &Bytes) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            // RFC 6749 §3.2: parameters may not repeat.
            return Err(OAuthError::invalid_request(format!("`{k}` is given twice")));
        }
    }
    Ok(out)
}

async fn token(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_of(&body);
    let grant = match form
        .as_ref()
        .ok()
        .and_then(|f| f.get("grant_type"))
        .map(String::as_str)
    {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        _ => "other",
    };
    let answer = async {
        let form = form?;
        let (id, secret) = credentials(&headers, &form);
        let client = s.authenticate(id.as_deref(), secret.as_deref()).await?;
        let get = |k: &str| form.get(k).map(String::as_str);
        match get("grant_type") {
            Some("authorization_code") => {
                let code =
                    get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
                s.redeem_code(
                    &client,
                    code,
                    get("redirect_uri"),
                    get("code_verifier"),
                    get("resource"),
                )
                .await
            }
            Some("refresh_token") => {
                let t = get("refresh_token")
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
                s.refresh(&client, t, get("scope"), get("resource")).await
            }
            Some(other) => Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type `{other}` is not supported; use authorization_code or refresh_token"
                ),
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    };
    let answer = answer.await;
    let result = answer.as_ref().map_or_else(|e| e.error, |_| "issued");
    s.metrics.tokens.with_label_values(&[grant, result]).inc();
    match answer {
        Ok(tokens) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(tokens),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn register(
    State(s): Shared,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    client: Option<axum::Extension<wharf_core::ClientAddr>>,
    body: Bytes,
) -> Response {
    // The client's address through trusted proxies (the HTTP side sets it),
    // else the peer's; an IPv6 client counts by its /64, which one host holds.
    let ip = client
        .map(|c| c.0.0)
        .or(peer.map(|p| p.0.0.ip()))
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if s.registrations
        .check_key(&crate::server::rate_key(ip))
        .is_err()
    {
        s.metrics
            .registrations
            .with_label_values(&["rate_limited"])
            .inc();
        let mut r = OAuthError::new(
            "slow_down",
            format!(
                "more than {} registrations a minute from this address; wait a minute",
                s.settings.registrations_per_minute
            ),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let answer = async {
        let body: Value = serde_json::from_slice(&body).map_err(|e| {
            OAuthError::new(
                "invalid_client_metadata",
                format!("the body is not JSON: {e}"),
            )
        })?;
        let (client, answer, _) = clients::register(&body, now_ms() / 1000)?;
        s.store_client(&client).await?;
        tracing::info!(client_id = %client.client_id, "registered a client");
        Ok::<_, OAuthError>(answer)
    };
    let answer = answer.await;
    let result = if answer.is_ok() {
        "registered"
    } else {
        "refused"
    };
    s.metrics.registrations.with_label_values(&[result]).inc();
    match answer {
        Ok(a) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            Json(a),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let answer = async {
        let form = form_of(&body)?;
        let (id, secret) = credentials(&headers, &form);
        let client = s.authenticate(id.as_deref(), secret.as_deref()).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        s.revoke_token(&client, token).await
    };
    match answer.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

fn account_session(s: &AuthServer, headers: &HeaderMap) -> Option<AccountSession> {
    let session: AccountSession = s.open(cookie(headers, ACCOUNT_COOKIE)?, "account")?;
    (session.until_ms > now_ms()).then_some(session)
}

async fn account(State(s): Shared, headers: HeaderMap) -> Response {
    let Some(session) = account_session(&s, &headers) else {
        return begin_sign_in(&s, None).await;
    };
    let linked = match s.linked(&session.subject).await {
        Ok(l) => l,
        Err(e) => {
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                &e.description,
                None,
            );
        }
    };
    let rows: Vec<(String, String, Vec<String>, String)> = linked
        .into_iter()
        .map(|(id, c)| {
            let when =
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(c.granted_ms as u64);
            let when = httpdate(when);
            (id, c.client_name, c.scopes, when)
        })
        .collect();
    let csrf = s.seal(&session.subject, "unlink");
    pages::account(&session.user, &rows, &csrf)
}

fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y })
}

#[derive(Deserialize)]
struct UnlinkForm {
    client_id: String,
    csrf: String,
}

async fn unlink(State(s): Shared, headers: HeaderMap, Form(f): Form<UnlinkForm>) -> Response {
    let Some(session) = account_session(&s, &headers) else {
        return redirect_to("/oauth/account");
    };
    if s.open::<String>(&f.csrf, "unlink").as_deref() != Some(session.subject.as_str()) {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "This form is not valid",
            "Open the page of linked clients again.",
            None,
        );
    }
    if let Err(e) = s.unlink(&session.subject, &f.client_id).await {
        return pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &e.description,
            None,
        );
    }
    tracing::info!(client_id = %f.client_id, "a user unlinked a client");
    axum::response::Redirect::to("/oauth/account").into_response()
}
