//! Fetching a Client ID Metadata Document without becoming a proxy into the
//! private network (SSRF): `https` only; the host's addresses resolved by
//! Wharf and refused when any is loopback, private, link-local, shared
//! (CGNAT), multicast or unspecified, and the connection made to the checked
//! addresses only (so DNS cannot answer differently the second time); no
//! redirects; a size cap read as the body arrives; a time cap on the whole fetch.
//! `allow_private` lifts the address and scheme rules (tests, one network).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::settings::MetadataFetchLimits;

/// Why a document could not be fetched; shown to the user on the error page.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FetchError {
    #[error("the client_id `{0}` is not an https URL with a path")]
    NotHttps(String),
    #[error(
        "the client_id host {host} resolves to {addr}, a private, loopback or link-local address, which Wharf does not fetch"
    )]
    PrivateAddress { host: String, addr: IpAddr },
    #[error("fetching the client's metadata document failed: {0}")]
    Unreachable(String),
    #[error("the client's metadata document answered HTTP {0}")]
    Status(u16),
    #[error("the client's metadata document is over {0} bytes")]
    TooLarge(usize),
    #[error("the client's metadata document took longer than {0:?}")]
    TooSlow(std::time::Duration),
    #[error("the client's metadata document is not JSON: {0}")]
    NotJson(String),
}

/// Whether Wharf refuses to connect to `ip` for a client's document.
pub(crate) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // 100.64.0.0/10, shared address space (CGNAT)
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking
                || (a == 198 && (18..20).contains(&b))
                // 192.0.0.0/24, IETF protocol assignments
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                // 240.0.0.0/4, reserved
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            let first = seg[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed in places)
                // NAT64 (64:ff9b::/96 and 64:ff9b:1::/48) reaches IPv4, private included
                || (first == 0x64 && seg[1] == 0xff9b)
                || first == 0x2002 // 6to4, an IPv4 address inside
                || (first == 0x2001 && seg[1] == 0) // Teredo, an IPv4 address inside
        }
    }
}

/// A resolver that refuses a name with any private address.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
                return Err(Box::new(FetchError::PrivateAddress {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client that fetches documents.
pub(crate) struct Fetcher {
    http: reqwest::Client,
    limits: MetadataFetchLimits,
}

impl Fetcher {
    pub(crate) fn new(limits: MetadataFetchLimits) -> Self {
        let mut builder = reqwest::Client::builder()
            // A proxy would resolve the name itself, past the resolver's checks.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limits.timeout)
            .user_agent("wharf (client metadata)")
            .tls_certs_merge(limits.extra_roots.clone());
        if !limits.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Self {
            http: builder.build().expect("an HTTP client"),
            limits,
        }
    }

    /// The JSON document at `url`, under every rule above.
    pub(crate) async fn fetch(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        let parsed = url::Url::parse(url).map_err(|_| FetchError::NotHttps(url.to_owned()))?;
        let scheme_ok =
            parsed.scheme() == "https" || (self.limits.allow_private && parsed.scheme() == "http");
        if !scheme_ok || parsed.path() == "/" || parsed.host().is_none() {
            return Err(FetchError::NotHttps(url.to_owned()));
        }
        if !self.limits.allow_private {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(addr) = literal.filter(|ip| is_private(*ip)) {
                return Err(FetchError::PrivateAddress {
                    host: addr.to_string(),
                    addr,
                });
            }
        }
        let work = async {
            let mut response = self
                .http
                .get(parsed.clone())
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| match find_private(&e) {
                    Some(p) => p,
                    None if e.is_timeout() => FetchError::TooSlow(self.limits.timeout),
                    None => FetchError::Unreachable(without_url(&e)),
                })?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            if response
                .content_length()
                .is_some_and(|n| n as usize > self.limits.max_bytes)
            {
                return Err(FetchError::TooLarge(self.limits.max_bytes));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    FetchError::TooSlow(self.limits.timeout)
                } else {
                    FetchError::Unreachable(without_url(&e))
                }
            })? {
                body.extend_from_slice(&chunk);
                if body.len() > self.limits.max_bytes {
                    return Err(FetchError::TooLarge(self.limits.max_bytes));
                }
            }
            serde_json::from_slice(&body).map_err(|e| FetchError::NotJson(e.to_string()))
        };
        tokio::time::timeout(self.limits.timeout, work)
            .await
            .map_err(|_| FetchError::TooSlow(self.limits.timeout))?
    }
}

/// The resolver's refusal inside a reqwest error, if that is what it is.
fn find_private(e: &reqwest::Error) -> Option<FetchError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<FetchError>() {
            return Some(f.clone());
        }
        source = s.source();
    }
    None
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.find(" for url (") {
        s.truncate(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "fec0::1",
            "240.0.0.1",
            "192.0.0.8",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_literal_private_address_or_plain_http_is_refused_before_any_connection() {
        let f = Fetcher::new(MetadataFetchLimits::default());
        assert!(matches!(
            f.fetch("https://169.254.169.254/latest/meta-data").await,
            Err(FetchError::PrivateAddress { .. })
        ));
        assert!(matches!(
            f.fetch("https://[::1]/client.json").await,
            Err(FetchError::PrivateAddress { .. })
        ));
        assert!(matches!(
            f.fetch("http://example.com/client.json").await,
            Err(FetchError::NotHttps(_))
        ));
        assert!(matches!(
            f.fetch("https://example.com/").await,
            Err(FetchError::NotHttps(_))
        ));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let f = Fetcher::new(MetadataFetchLimits::default());
        let e = f.fetch("https://localhost/client.json").await.unwrap_err();
        assert!(matches!(e, FetchError::PrivateAddress { .. }), "{e}");
    }
}
