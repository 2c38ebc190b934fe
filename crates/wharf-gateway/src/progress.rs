//! Where an upstream's progress notifications go: to the caller waiting for
//! the request they belong to, in the order they arrived, before the request's
//! answer. Every queue here is bounded: a notification for a request not yet
//! registered is held (up to [`MAX_EARLY`] per token and [`MAX_EARLY_TOKENS`]
//! tokens, for [`EARLY_TTL`]), and a route holds at most [`ROUTE_CAPACITY`]
//! notifications its caller has not taken; past that, newer ones are dropped
//! (a progress notification is a snapshot that the next one supersedes).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
    service::Peer,
};
use tokio::{sync::mpsc, time::Instant};

/// Notifications one route holds for a caller that has not taken them yet.
const ROUTE_CAPACITY: usize = 256;

/// Where an upstream's progress notifications go, by the upstream's progress
/// token: to the caller waiting for that request, in the order they came.
#[derive(Clone, Default)]
pub struct ProgressRoutes(Arc<Mutex<Routes>>);

#[derive(Default)]
struct Routes {
    live: HashMap<ProgressToken, mpsc::Sender<ProgressNotificationParam>>,
    /// Arrived before their request was registered (rmcp names a request's token
    /// only once it is sent, and a quick upstream answers first): held until it is.
    /// Held notifications are dropped after [`EARLY_TTL`]: their request was
    /// not one the gateway relays (a list, a health check).
    early: HashMap<ProgressToken, (Instant, Vec<ProgressNotificationParam>)>,
}

/// How long notifications for an unregistered token are held.
const EARLY_TTL: Duration = Duration::from_secs(10);

/// Notifications held for one token whose request is not registered yet.
const MAX_EARLY: usize = 64;
/// Tokens with notifications held; more come only from an upstream sending
/// progress for requests the gateway never made.
const MAX_EARLY_TOKENS: usize = 1024;

impl ProgressRoutes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        wharf_core::sync::lock(&self.0)
    }

    /// Take an upstream progress notification, in the order the connection
    /// received it (never waits).
    pub fn forward(&self, params: ProgressNotificationParam) {
        let mut routes = self.lock();
        if let Some(tx) = routes.live.get(&params.progress_token) {
            // Full: the caller reads slower than the upstream reports. A
            // progress notification is a snapshot; a later one supersedes it.
            if tx.try_send(params).is_err() {
                tracing::debug!("a progress notification was dropped: its caller is behind");
            }
            return;
        }
        match routes.early.get_mut(&params.progress_token) {
            Some((_, held)) if held.len() < MAX_EARLY => held.push(params),
            Some(_) => {}
            None => {
                routes.early.retain(|_, (at, _)| at.elapsed() < EARLY_TTL);
                if routes.early.len() < MAX_EARLY_TOKENS {
                    let token = params.progress_token.clone();
                    routes.early.insert(token, (Instant::now(), vec![params]));
                }
            }
        }
    }

    /// Route the notifications of upstream `token` (those held first) to
    /// `caller` under its own token, or drop them when it gave none.
    pub(crate) fn open(
        &self,
        token: ProgressToken,
        caller: Option<(Peer<RoleServer>, ProgressToken)>,
    ) -> Flow {
        let (tx, mut rx) = mpsc::channel(ROUTE_CAPACITY);
        let mut routes = self.lock();
        for p in routes
            .early
            .remove(&token)
            .map(|(_, held)| held)
            .unwrap_or_default()
        {
            let _ = tx.try_send(p);
        }
        routes.live.insert(token.clone(), tx);
        drop(routes);
        let task = caller.map(|(peer, theirs)| {
            tokio::spawn(async move {
                while let Some(mut p) = rx.recv().await {
                    p.progress_token = theirs.clone();
                    if peer.notify_progress(p).await.is_err() {
                        return;
                    }
                }
            })
        });
        Flow {
            routes: self.clone(),
            token,
            task,
        }
    }
}

/// One request's progress route. Dropped, it stops routing.
pub(crate) struct Flow {
    routes: ProgressRoutes,
    token: ProgressToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Flow {
    /// Stop routing, and wait until everything that arrived before the answer
    /// has reached the caller: its result must not overtake its progress.
    pub(crate) async fn close(mut self) {
        self.routes.lock().live.remove(&self.token);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        let mut routes = self.routes.lock();
        routes.live.remove(&self.token);
        routes.early.remove(&self.token);
    }
}
