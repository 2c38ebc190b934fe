//! The pages a person sees: consent, the list of linked clients, and every
//! refusal. Server-rendered HTML, no script, light and dark by the user's
//! setting; framing forbidden (a consent button must not be clickjacked), and
//! every value from a client or a provider escaped.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--accent:#0a58ca;--danger:#b42318}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#30363d;--accent:#4493f8;--danger:#f85149}}
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:34rem;margin:3rem auto;padding:0 1.25rem}
h1{font-size:1.4rem;margin:0 0 1rem}
p,li{color:var(--fg)} .muted{color:var(--muted);font-size:.9rem}
ul{padding-left:1.2rem} code{font-size:.9em;word-break:break-all}
.actions{display:flex;gap:.75rem;margin-top:1.5rem;flex-wrap:wrap}
button,.button{font:inherit;padding:.55rem 1.2rem;border-radius:6px;border:1px solid var(--line);background:transparent;color:var(--fg);cursor:pointer;text-decoration:none}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.danger{color:var(--danger)} .warn{border-left:4px solid var(--danger);padding-left:.75rem}
button:focus-visible,.button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
table{border-collapse:collapse;width:100%} td{padding:.5rem .25rem;border-top:1px solid var(--line);vertical-align:top}
";

/// A whole page with the headers every page gets.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// A refusal: what went wrong and what to do; optionally a way back to the client.
pub(crate) fn error(
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<(&str, &str)>,
) -> Response {
    let back = back.map_or(String::new(), |(label, href)| {
        format!(
            "<div class=\"actions\"><a class=\"button\" href=\"{}\">{}</a></div>",
            escape(href),
            escape(label)
        )
    });
    page(
        status,
        title,
        &format!("<h1>{}</h1><p>{}</p>{back}", escape(title), escape(message)),
    )
}

/// What the consent page shows.
pub(crate) struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub client_uri: Option<&'a str>,
    pub redirect_host: &'a str,
    pub metadata_document: bool,
    /// A metadata-document client whose redirect goes to another host than
    /// the one that identifies it.
    pub elsewhere: bool,
    pub user: &'a str,
    pub scopes: &'a [String],
    pub resource: &'a str,
    pub ticket: &'a str,
}

pub(crate) fn consent(v: &ConsentView<'_>) -> Response {
    let scopes = if v.scopes.is_empty() {
        "<li>Use the tools that need no particular permission</li>".to_owned()
    } else {
        v.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect()
    };
    // What the client cannot choose freely: where it sends you back, and
    // (for a metadata document) the URL that names it.
    let origin = if v.metadata_document {
        format!(
            "identified by <code>{}</code>; it will return you to <code>{}</code>",
            escape(v.client_id),
            escape(v.redirect_host)
        )
    } else {
        format!(
            "registered itself here; it will return you to <code>{}</code>",
            escape(v.redirect_host)
        )
    };
    let warning = if v.elsewhere {
        "<p class=\"warn\"><strong>Careful:</strong> this app returns you to a different site than the one that identifies it. Allow it only if you expected that.</p>"
    } else {
        ""
    };
    let site = v.client_uri.map_or(String::new(), |u| {
        format!(
            "<p class=\"muted\">Its site: <code>{}</code></p>",
            escape(u)
        )
    });
    let body = format!(
        "<h1>Allow {name} to use {resource}?</h1>\
         <p>You are signed in as <strong>{user}</strong>.</p>\
         <p><strong>{name}</strong> ({origin}) asks to act for you at <code>{resource}</code> with:</p>\
         <ul>{scopes}</ul>{site}{warning}\
         <form method=\"post\" action=\"/oauth/consent\">\
         <input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
         <p><label><input type=\"checkbox\" name=\"remember\" value=\"1\" checked> Remember this decision for {name}</label></p>\
         <div class=\"actions\"><button class=\"primary\" name=\"decision\" value=\"approve\" autofocus>Allow</button>\
         <button name=\"decision\" value=\"deny\">Deny</button></div></form>\
         <p class=\"muted\">You can unlink it at any time at <a href=\"/oauth/account\">/oauth/account</a>.</p>",
        name = escape(v.client_name),
        resource = escape(v.resource),
        user = escape(v.user),
        ticket = escape(v.ticket),
    );
    page(StatusCode::OK, "Allow access?", &body)
}

/// The user's linked clients, each with an unlink button.
pub(crate) fn account(
    user: &str,
    linked: &[(String, String, Vec<String>, String)],
    csrf: &str,
) -> Response {
    let rows: String = if linked.is_empty() {
        "<p>No client is linked to your account.</p>".to_owned()
    } else {
        let rows: String = linked
            .iter()
            .map(|(id, name, scopes, when)| {
                format!(
                    "<tr><td><strong>{}</strong><br><span class=\"muted\"><code>{}</code><br>since {}; {}</span></td>\
                     <td><form method=\"post\" action=\"/oauth/account/unlink\"><input type=\"hidden\" name=\"client_id\" value=\"{}\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"danger\">Unlink</button></form></td></tr>",
                    escape(name),
                    escape(id),
                    escape(when),
                    if scopes.is_empty() { "no scopes".to_owned() } else { escape(&scopes.join(" ")) },
                    escape(id),
                    escape(csrf),
                )
            })
            .collect();
        format!("<table>{rows}</table>")
    };
    page(
        StatusCode::OK,
        "Linked clients",
        &format!(
            "<h1>Clients linked to your account</h1><p>Signed in as <strong>{}</strong>.</p>{rows}\
             <p class=\"muted\">Unlinking revokes the client's tokens on every server at once.</p>",
            escape(user)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
