//! What an upstream's errors may show. A URL can carry a secret (a
//! `${TOKEN}` in its query or path, a password before the host), and the
//! errors of HTTP clients quote the URL whole; those errors become tool
//! results the model reads and log lines. Every error of an upstream passes
//! through its [`Redactor`] first.

use crate::config::{Transport, UpstreamConfig};

/// What replaces a secret in a message.
const REDACTED: &str = "[redacted]";

/// `url` as it may be shown: scheme, host, port and path; no user, password,
/// query or fragment.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", u.scheme(), u.path())
        }
        // Not a URL: show its start only, up to anything that looks like a query.
        Err(_) => url
            .split(['?', '#', '@'])
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect(),
    }
}

/// An error's text with the upstream's secrets scrubbed out: the only form in
/// which a connect failure leaves the upstream (to a tool result, a log line,
/// `/ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scrubbed(String);

impl Scrubbed {
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Scrubs one upstream's secrets out of text about it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// (what to find, what to write instead), longest first.
    replacements: Vec<(String, String)>,
}

impl Redactor {
    pub(crate) fn for_upstream(config: &UpstreamConfig) -> Self {
        let mut replacements: Vec<(String, String)> = Vec::new();
        if let Transport::Http { url } | Transport::Sse { url } = &config.transport {
            replacements.push((url.clone(), shown_url(url)));
            if let Ok(u) = url::Url::parse(url) {
                if let Some(query) = u.query().filter(|q| !q.is_empty()) {
                    replacements.push((query.to_owned(), REDACTED.to_owned()));
                }
                if let Some(password) = u.password().filter(|p| !p.is_empty()) {
                    replacements.push((password.to_owned(), REDACTED.to_owned()));
                }
            }
        }
        for secret in &config.secrets {
            // Too short to be a secret worth the false matches.
            if secret.len() >= 4 {
                replacements.push((secret.clone(), REDACTED.to_owned()));
            }
        }
        replacements.sort_by_key(|(find, _)| std::cmp::Reverse(find.len()));
        replacements.dedup_by(|a, b| a.0 == b.0);
        Self { replacements }
    }

    /// `error`'s text with every secret of the upstream replaced.
    pub(crate) fn scrubbed(&self, error: &dyn std::fmt::Display) -> Scrubbed {
        Scrubbed(self.scrub(&error.to_string()))
    }

    /// `text` with every secret of the upstream replaced.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (find, instead) in &self.replacements {
            if out.contains(find.as_str()) {
                out = out.replace(find.as_str(), instead);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_an_upstream_url_never_reach_a_message() {
        let mut config = UpstreamConfig::new(
            "weather",
            Transport::Http {
                url: "https://bob:hunter2@api.example.com:8443/v1/mcp?key=t0ps3cret&x=1".into(),
            },
        );
        config.secrets = vec!["t0ps3cret".into()];
        let r = Redactor::for_upstream(&config);
        let message = "error sending request for url (https://bob:hunter2@api.example.com:8443/v1/mcp?key=t0ps3cret&x=1): connection refused; retried with key=t0ps3cret";
        let scrubbed = r.scrub(message);
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
        assert!(!scrubbed.contains("t0ps3cret"), "{scrubbed}");
        assert!(
            scrubbed.contains("https://api.example.com:8443/v1/mcp"),
            "{scrubbed}"
        );
        assert_eq!(
            shown_url("https://u:p@h.example/path?token=x#f"),
            "https://h.example/path"
        );
    }
}
