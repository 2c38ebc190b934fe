//! One upstream's lanes: an upstream session for each downstream legacy
//! session that calls it (see `lane` for why), opened at the caller's first
//! request, set up again (log level, subscriptions) when its connection is
//! made again, and closed when the caller's session ends or sits idle.
//!
//! A lane is opened inside a call's attempt (`Upstream::call_via`), so its
//! handshake and the replay of what the caller set up count as that attempt:
//! the replay runs under the attempt's deadline, and a failure is the
//! attempt's failure (retried and counted by the breaker like any other).

#![allow(deprecated)] // legacy sessions' log level and resource subscriptions

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use rmcp::model::{LoggingLevel, SetLevelRequestParams, SubscribeRequestParams};
use tokio::{sync::Mutex, time::Instant};
use wharf_core::{CallContext, SessionId, sync::lock};

use crate::{
    connect::{Announced, Connection, UpstreamHandler},
    error::UpstreamError,
    lane::LaneState,
    redact::Scrubbed,
    relay::legacy_client,
};

/// Lanes one upstream keeps open at most; callers beyond it share the
/// upstream's connection (and lose what only a session of their own gives).
const MAX_LANES: usize = 1024;

/// How long an upstream that refused a lane is left alone before the next try.
const LANE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One caller's session with one upstream.
pub(crate) struct Lane {
    pub(crate) conn: Arc<Connection>,
    pub(crate) state: Arc<LaneState>,
}

/// A caller's place among the lanes: the lane (made again if its connection
/// dies) and what must be set up again on a new one.
#[derive(Default)]
pub(crate) struct LaneSlot {
    pub(crate) lane: Option<Arc<Lane>>,
    pub(crate) log_level: Option<LoggingLevel>,
    pub(crate) subscribed: HashSet<String>,
    pub(crate) last_used: Option<Instant>,
}

impl LaneSlot {
    /// Is the caller gone (its session closed), or has it been idle past `idle`
    /// with nothing subscribed?
    fn finished(&self, idle: Duration) -> bool {
        let Some(lane) = &self.lane else {
            return self.last_used.is_none_or(|t| t.elapsed() > idle);
        };
        lane.state.caller().is_transport_closed()
            || (self.subscribed.is_empty() && self.last_used.is_none_or(|t| t.elapsed() > idle))
    }
}

/// Why a lane could not be had.
pub(crate) enum LaneFailure {
    /// The upstream did not complete a legacy handshake (it may speak no legacy
    /// version: the caller can share the upstream's connection instead).
    Dial(Scrubbed),
    /// The lane was made, but setting it up again failed within the attempt.
    Replay(UpstreamError),
}

/// The lanes of one upstream.
pub(crate) struct Lanes {
    upstream: String,
    client_name: String,
    changed: Arc<Announced>,
    table: SyncMutex<HashMap<SessionId, Arc<Mutex<LaneSlot>>>>,
    /// When the upstream last refused a lane while its shared connection was
    /// up; lanes are not tried again for [`LANE_RETRY_AFTER`].
    refused_at: SyncMutex<Option<Instant>>,
    gauge: prometheus::IntGauge,
}

impl Lanes {
    pub(crate) fn new(
        upstream: &str,
        client_name: &str,
        changed: Arc<Announced>,
        gauge: prometheus::IntGauge,
    ) -> Self {
        Self {
            upstream: upstream.to_owned(),
            client_name: client_name.to_owned(),
            changed,
            table: SyncMutex::default(),
            refused_at: SyncMutex::default(),
            gauge,
        }
    }

    /// The caller's slot, if it has one.
    pub(crate) fn slot(&self, session: SessionId) -> Option<Arc<Mutex<LaneSlot>>> {
        lock(&self.table).get(&session).cloned()
    }

    /// The upstream refused a lane while reachable: share its connection for a while.
    pub(crate) fn refused(&self) {
        *lock(&self.refused_at) = Some(Instant::now());
        tracing::warn!(
            upstream = self.upstream,
            "upstream refused a session for a legacy caller; legacy callers share the gateway's connection for {}s",
            LANE_RETRY_AFTER.as_secs()
        );
    }

    /// The lane of the caller in `ctx`, opened now (with `dial`, the
    /// upstream's legacy handshake) if it has none or its connection died:
    /// only for legacy callers in a session. What the caller set up before is
    /// set up again on a new lane before `deadline` (`timeout` is its length,
    /// for the error).
    pub(crate) async fn lane<D, F>(
        &self,
        ctx: &CallContext,
        deadline: Instant,
        timeout: Duration,
        dial: D,
    ) -> Result<Option<Arc<Lane>>, LaneFailure>
    where
        D: FnOnce(UpstreamHandler) -> F,
        F: Future<Output = Result<Connection, Scrubbed>>,
    {
        let (Some(session), Some(caller)) = (ctx.session_id(), legacy_client(ctx)) else {
            return Ok(None);
        };
        if let Some(at) = *lock(&self.refused_at)
            && at.elapsed() < LANE_RETRY_AFTER
        {
            return Ok(None);
        }
        let slot = {
            let mut table = lock(&self.table);
            if !table.contains_key(&session) && table.len() >= MAX_LANES {
                tracing::warn!(
                    upstream = self.upstream,
                    max = MAX_LANES,
                    "too many caller sessions; this one shares the gateway's connection"
                );
                return Ok(None);
            }
            table.entry(session).or_default().clone()
        };
        let mut slot = slot.lock().await;
        slot.last_used = Some(Instant::now());
        if ctx.session_log_level().is_some() {
            slot.log_level = ctx.session_log_level();
        }
        if let Some(lane) = &slot.lane
            && !lane.conn.is_closed()
            && !lane.conn.is_transport_closed()
        {
            lane.state.set_caller(caller);
            return Ok(Some(lane.clone()));
        }
        let state = Arc::new(LaneState::new(caller.clone()));
        let handler =
            UpstreamHandler::for_lane(&self.client_name, self.changed.clone(), state.clone());
        let conn = Arc::new(dial(handler).await.map_err(LaneFailure::Dial)?);
        match tokio::time::timeout_at(deadline, self.replay(&conn, &slot)).await {
            Err(_) => {
                return Err(LaneFailure::Replay(UpstreamError::Timeout {
                    upstream: self.upstream.clone(),
                    after: timeout,
                }));
            }
            Ok(Err(e)) => return Err(LaneFailure::Replay(e)),
            Ok(Ok(())) => {}
        }
        tracing::debug!(upstream = self.upstream, "lane opened for a legacy caller");
        let lane = Arc::new(Lane { conn, state });
        slot.lane = Some(lane.clone());
        drop(slot);
        self.count();
        Ok(Some(lane))
    }

    /// What the caller set up before, on its new lane. An upstream that
    /// refuses one of them (a JSON-RPC error) is logged and the lane used
    /// anyway; a broken connection is the attempt's failure.
    async fn replay(&self, conn: &Connection, slot: &LaneSlot) -> Result<(), UpstreamError> {
        let offers = conn
            .peer_info()
            .map(|i| i.capabilities.clone())
            .unwrap_or_default();
        let refused = |e: rmcp::service::ServiceError, what: &str| match UpstreamError::from_service(
            &self.upstream,
            e,
        ) {
            UpstreamError::Remote { error, .. } => {
                tracing::warn!(upstream = self.upstream, error = %error.message, "{what} not renewed on a new lane");
                Ok(())
            }
            other => Err(other),
        };
        if let Some(level) = slot.log_level
            && offers.logging.is_some()
            && let Err(e) = conn
                .peer()
                .set_level(SetLevelRequestParams::new(level))
                .await
        {
            refused(e, "the log level")?;
        }
        for uri in &slot.subscribed {
            if let Err(e) = conn
                .peer()
                .subscribe(SubscribeRequestParams::new(uri.clone()))
                .await
            {
                refused(e, "a subscription")?;
            }
        }
        Ok(())
    }

    fn count(&self) {
        self.gauge.set(lock(&self.table).len() as i64);
    }

    /// Close the lanes of callers whose session ended, or that have been idle
    /// for `idle` with nothing subscribed.
    pub(crate) fn sweep(&self, idle: Duration) {
        let finished: Vec<Arc<Mutex<LaneSlot>>> = {
            let mut table = lock(&self.table);
            let done: Vec<SessionId> = table
                .iter()
                .filter(|(_, slot)| slot.try_lock().is_ok_and(|s| s.finished(idle)))
                .map(|(id, _)| *id)
                .collect();
            done.iter().filter_map(|id| table.remove(id)).collect()
        };
        if finished.is_empty() {
            return;
        }
        tracing::debug!(
            upstream = self.upstream,
            closed = finished.len(),
            "lanes of finished callers closed"
        );
        for slot in finished {
            tokio::spawn(close(slot));
        }
        self.count();
    }

    /// Close every lane (the upstream is shutting down).
    pub(crate) async fn close_all(&self) {
        let slots: Vec<_> = lock(&self.table).drain().map(|(_, slot)| slot).collect();
        futures::future::join_all(slots.into_iter().map(close)).await;
        self.count();
    }
}

/// End a caller's upstream session (an HTTP upstream is told with DELETE) once
/// no call holds it; a call still holding it lets it drop when done.
async fn close(slot: Arc<Mutex<LaneSlot>>) {
    let lane = slot.lock().await.lane.take();
    if let Some(lane) = lane
        && let Ok(lane) = Arc::try_unwrap(lane)
        && let Ok(conn) = Arc::try_unwrap(lane.conn)
    {
        let _ = conn.cancel().await;
    }
}
