//! A cap on one client's requests in flight (`server.max_requests_per_client`).
//!
//! The server-wide cap (`server.max_concurrent_requests`, see `shed`) keeps the
//! process within its means; this one keeps one client within its share. A
//! client whose requests never finish (a body sent one byte at a time, say)
//! holds at most this many places, and everyone else keeps being served. The
//! client is the one the rate limit knows: the subject when authenticated, the
//! address otherwise (behind a trusted proxy, the address it forwards).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::auth::ClientKey;

/// Requests in flight, by client.
#[derive(Debug)]
pub(crate) struct ClientInflight {
    max: usize,
    table: Mutex<HashMap<ClientKey, usize>>,
}

/// One request's place; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Place {
    owner: Arc<ClientInflight>,
    key: ClientKey,
}

impl ClientInflight {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::default(),
        })
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        wharf_core::sync::lock(&self.table)
    }

    /// A place for one more request of `key`, unless it has `max` already.
    pub(crate) fn enter(self: &Arc<Self>, key: &ClientKey) -> Option<Place> {
        let mut table = self.table();
        let n = table.entry(key.clone()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Place {
            owner: self.clone(),
            key: key.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut table = self.owner.table();
        if let Some(n) = table.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::Class;

    #[test]
    fn one_client_holds_at_most_max_places() {
        let c = ClientInflight::new(2);
        let a = ClientKey {
            class: Class::Anonymous,
            key: "192.0.2.1".into(),
        };
        let b = ClientKey {
            class: Class::Subject,
            key: "192.0.2.1".into(),
        };
        let p1 = c.enter(&a).unwrap();
        let _p2 = c.enter(&a).unwrap();
        assert!(c.enter(&a).is_none());
        // Another client (here: a subject spelled like the address) is not affected.
        let _p3 = c.enter(&b).unwrap();
        drop(p1);
        assert!(c.enter(&a).is_some());
        drop(c.enter(&a));
        assert!(c.table().get(&a).is_some_and(|n| *n == 1));
    }
}
