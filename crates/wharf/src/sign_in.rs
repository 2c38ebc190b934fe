//! The gateway's sign-in pages for upstreams that want each user's own token
//! (`oauth` in the upstream file): the page a sign-in link opens, naming the
//! gateway user being linked before it continues to the upstream's
//! authorization server, and the callback that server redirects back to.
//! They carry their own proof (a sealed ticket, a sealed state), not the
//! caller's API key: a browser has none.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use wharf_gateway::{Gateway, SIGN_IN_CALLBACK, SIGN_IN_COOKIE, SIGN_IN_START, SignInStart};

#[derive(serde::Deserialize)]
struct Start {
    ticket: Option<String>,
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The routes, when the gateway signs users in to an upstream.
pub(crate) fn routes(gateway: &Arc<Gateway>) -> Option<Router> {
    gateway.sign_ins()?;
    Some(
        Router::new()
            .route(SIGN_IN_START, get(start))
            .route(SIGN_IN_CALLBACK, get(callback))
            .with_state(gateway.clone()),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         a.button{{display:inline-block;padding:.6rem 1rem;background:#1f6feb;color:#fff;border-radius:6px;text-decoration:none}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    // Nothing here may be cached or framed by another site.
    let headers = r.headers_mut();
    headers.insert("cache-control", "no-store".parse().expect("a header value"));
    headers.insert(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'"
            .parse()
            .expect("a header value"),
    );
    headers.insert("x-frame-options", "DENY".parse().expect("a header value"));
    headers.insert(
        "referrer-policy",
        "no-referrer".parse().expect("a header value"),
    );
    r
}

/// The value of the sign-in cookie the request carries.
fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == SIGN_IN_COOKIE).then(|| value.to_owned())
        })
}

async fn start(State(gateway): State<Arc<Gateway>>, Query(q): Query<Start>) -> Response {
    let Some(sign_ins) = gateway.sign_ins() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(ticket) = q.ticket else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in link incomplete",
            "<p>This link has no ticket. Ask for a new one by calling the tool again.</p>",
        );
    };
    match sign_ins.begin(&ticket).await {
        Ok(SignInStart {
            upstream,
            subject,
            url,
            nonce,
        }) => {
            let mut r = page(
                StatusCode::OK,
                &format!("Connect your {upstream} account"),
                &format!(
                    "<p>You are connecting your <b>{u}</b> account to the gateway user <b>{s}</b>: its tools will act as you \
                     when <b>{s}</b> calls them. If that is not you, close this page.</p>\
                     <p><a class=\"button\" id=\"continue\" href=\"{url}\">Continue to {u}</a></p>",
                    u = escape(&upstream),
                    s = escape(&subject),
                    url = escape(&url)
                ),
            );
            // Binds the sign-in to this browser (checked at the callback).
            let secure = if sign_ins.secure() { "; Secure" } else { "" };
            let cookie = format!(
                "{SIGN_IN_COOKIE}={nonce}; Path=/oauth/upstream/; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
            );
            if let Ok(v) = cookie.parse() {
                r.headers_mut().insert(axum::http::header::SET_COOKIE, v);
            }
            r
        }
        Err(why) => page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            &format!("<p>{}</p>", escape(&why)),
        ),
    }
}

async fn callback(
    State(gateway): State<Arc<Gateway>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(sign_ins) = gateway.sign_ins() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in not completed",
            &format!(
                "<p>The sign-in was not completed ({}). {}</p><p>Start again from the link.</p>",
                escape(&error),
                escape(&detail)
            ),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in incomplete",
            "<p>The authorization server sent no code. Start again from the link.</p>",
        );
    };
    match sign_ins
        .finish(&code, &state, cookie(&headers).as_deref())
        .await
    {
        Ok((upstream, subject)) => {
            // Its tools may be unknown until now (nobody had signed in).
            let g = gateway.clone();
            let name = upstream.clone();
            tokio::spawn(async move { g.signed_in(&name).await });
            page(
                StatusCode::OK,
                &format!("Connected to {upstream}"),
                &format!(
                    "<p id=\"done\">Your {} account is connected for the gateway user <b>{}</b>. You can close this page and return to your chat.</p>",
                    escape(&upstream),
                    escape(&subject)
                ),
            )
        }
        Err(why) => page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            &format!("<p>{}</p>", escape(&why)),
        ),
    }
}
