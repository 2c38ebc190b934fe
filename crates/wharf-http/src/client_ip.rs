//! The client's address: the socket peer, or, when the peer is a trusted proxy,
//! the address it forwarded. Only a configured proxy is believed; anyone else
//! could write any `X-Forwarded-For` and pick their own rate-limit bucket.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use wharf_core::Problem;

/// Proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `10.0.0.0/8`, `192.0.2.7`, `::1` ...; the first entry that is
    /// neither is the problem (`trusted_proxies[2]`).
    pub fn parse(entries: &[String]) -> Result<Self, Problem> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        Problem::new(
                            format!("trusted_proxies[{i}]"),
                            format!("`{e}` is neither an IP address nor a CIDR range"),
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `peer` is one of the trusted proxies.
    pub fn trusts_peer(&self, peer: SocketAddr) -> bool {
        self.trusts_ip(peer.ip())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts_ip(&self, ip: IpAddr) -> bool {
        self.trusts(ip.to_canonical())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that came from `peer`: walking
    /// `X-Forwarded-For` (or `Forwarded: for=`) from the right, the first address
    /// that is not a trusted proxy.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip().to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        if hops.is_empty() {
            hops = headers
                .get_all("forwarded")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split([',', ';']))
                .filter_map(|p| p.trim().strip_prefix("for="))
                .filter_map(|f| {
                    let f = f.trim_matches('"');
                    let f = f
                        .strip_prefix('[')
                        .map_or(f, |v6| v6.split(']').next().unwrap_or(v6));
                    f.parse()
                        .ok()
                        .or_else(|| f.rsplit_once(':').and_then(|(h, _)| h.parse().ok()))
                })
                .collect();
        }
        hops.into_iter()
            .rev()
            .map(|ip: IpAddr| ip.to_canonical())
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

/// Middleware for routes outside the bearer gate (which does the same): the
/// client's address, through trusted proxies, in [`wharf_core::ClientAddr`].
pub(crate) async fn tag(
    axum::extract::State(proxies): axum::extract::State<TrustedProxies>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let client = proxies.client(peer, request.headers());
    request
        .extensions_mut()
        .insert(wharf_core::ClientAddr(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        assert_eq!(
            t.client("10.0.0.5:1".parse().unwrap(), &xff).to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            t.client("198.51.100.1:1".parse().unwrap(), &xff)
                .to_string(),
            "198.51.100.1"
        );
        let fwd = headers(&[("forwarded", "for=\"[2001:db8::1]:443\";proto=https")]);
        assert_eq!(
            t.client("192.0.2.7:1".parse().unwrap(), &fwd).to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            t.client("192.0.2.7:1".parse().unwrap(), &HeaderMap::new())
                .to_string(),
            "192.0.2.7"
        );
        assert!(
            TrustedProxies::parse(&["proxy.local".into()])
                .unwrap_err()
                .to_string()
                .contains("trusted_proxies[0]: `proxy.local`")
        );
    }
}
