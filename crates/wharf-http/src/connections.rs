//! Admission of connections: at most `server.max_connections` open at once, and
//! at most `server.max_connections_per_client` from one address, so that one
//! client opening connections it never uses cannot take every file descriptor
//! (and with them `/health`) from everyone else.
//!
//! A connection from a trusted proxy counts toward the total only: a proxy
//! carries many clients on its connections, and they are told apart (and
//! limited) per request, by the address it forwards.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use crate::client_ip::TrustedProxies;

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.max_connections` are open.
    Full,
    /// This address holds `server.max_connections_per_client`.
    PerClient,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "max_connections",
            Self::PerClient => "per_client",
        }
    }
}

/// The open connections, by client address.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    per_client: usize,
    proxies: TrustedProxies,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Ticket {
    connections: Arc<Connections>,
    /// `None` for a trusted proxy's connection (not counted per address).
    ip: Option<IpAddr>,
}

impl Connections {
    pub fn new(max: usize, per_client: usize, proxies: TrustedProxies) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            per_client: per_client.max(1),
            proxies,
            table: Mutex::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        wharf_core::sync::lock(&self.table)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().total
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Admit a connection from `peer`, or say why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refused> {
        let peer = peer.to_canonical();
        let counted = !self.proxies.trusts_ip(peer);
        let mut table = self.table();
        if table.total >= self.max {
            return Err(Refused::Full);
        }
        if counted {
            let n = table.by_ip.entry(peer).or_default();
            if *n >= self.per_client {
                return Err(Refused::PerClient);
            }
            *n += 1;
        }
        table.total += 1;
        Ok(Ticket {
            connections: self.clone(),
            ip: counted.then_some(peer),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.connections.table();
        table.total = table.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(n) = table.by_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                table.by_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total_and_gives_places_back() {
        let proxies = TrustedProxies::parse(&["10.0.0.1".into()]).unwrap();
        let c = Connections::new(4, 2, proxies);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let t1 = c.admit(a).unwrap();
        let _t2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).unwrap_err(), Refused::PerClient);
        let _t3 = c.admit(b).unwrap();
        // A trusted proxy is not capped per address, only in total.
        let _t4 = c.admit(proxy).unwrap();
        assert_eq!(c.admit(proxy).unwrap_err(), Refused::Full);
        assert_eq!(c.open(), 4);
        drop(t1);
        assert_eq!(c.open(), 3);
        let _again = c.admit(a).unwrap();
        // An IPv4-mapped IPv6 address is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(c.admit(mapped).unwrap_err(), Refused::Full);
    }
}
