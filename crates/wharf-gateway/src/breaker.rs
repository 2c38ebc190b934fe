//! A circuit breaker per upstream.
//!
//! Closed, it lets calls through and watches their outcomes: `consecutive_failures`
//! failures in a row, or a failure rate of `failure_rate` over the last `window`
//! calls (once `min_calls` were seen), open it. Open, it refuses calls at once for
//! `open_for`, so a sick upstream is not hammered and callers fail fast. Then one
//! probe call is let through (half-open): success closes the breaker, failure
//! opens it again. Time is tokio's, so tests run it on a paused clock.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// When a breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub window: u32,
    pub min_calls: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: 20,
            min_calls: 10,
            open_for: Duration::from_secs(30),
        }
    }
}

/// The breaker's position, as the `wharf_upstream_breaker_state` gauge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half-open",
            Self::Open => "open",
        }
    }
}

/// Leave to make one call. A probe decides the half-open breaker's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "record the call's outcome with Breaker::record"]
pub struct Permit {
    probe: bool,
}

enum Position {
    Closed {
        consecutive: u32,
        recent: VecDeque<bool>,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        probe_since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    position: Mutex<Position>,
}

impl std::fmt::Debug for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half-open",
        })
    }
}

fn closed() -> Position {
    Position::Closed {
        consecutive: 0,
        recent: VecDeque::new(),
    }
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            position: Mutex::new(closed()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Position> {
        wharf_core::sync::lock(&self.position)
    }

    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            Position::Closed { .. } => BreakerState::Closed,
            Position::Open { until } if Instant::now() >= *until => BreakerState::HalfOpen,
            Position::Open { .. } => BreakerState::Open,
            Position::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Leave to call, or how long until the breaker lets a probe through.
    pub fn acquire(&self) -> Result<Permit, Duration> {
        let now = Instant::now();
        let mut position = self.lock();
        match &*position {
            Position::Closed { .. } => Ok(Permit { probe: false }),
            Position::Open { until } if now < *until => Err(*until - now),
            Position::Open { .. } => {
                *position = Position::HalfOpen { probe_since: now };
                Ok(Permit { probe: true })
            }
            // One probe at a time; a probe whose caller went away without
            // reporting is given up after `open_for`.
            Position::HalfOpen { probe_since } => {
                let stale = *probe_since + self.config.open_for;
                if now >= stale {
                    *position = Position::HalfOpen { probe_since: now };
                    Ok(Permit { probe: true })
                } else {
                    Err(stale - now)
                }
            }
        }
    }

    /// Report how a permitted call went. Returns the new state when it changed.
    pub fn record(&self, permit: Permit, success: bool) -> Option<BreakerState> {
        let now = Instant::now();
        let mut position = self.lock();
        let config = &self.config;
        if permit.probe {
            if !matches!(*position, Position::HalfOpen { .. }) {
                return None;
            }
            *position = if success {
                closed()
            } else {
                Position::Open {
                    until: now + config.open_for,
                }
            };
            return Some(if success {
                BreakerState::Closed
            } else {
                BreakerState::Open
            });
        }
        let Position::Closed {
            consecutive,
            recent,
        } = &mut *position
        else {
            // The breaker opened while this call was running: its outcome is old news.
            return None;
        };
        *consecutive = if success { 0 } else { *consecutive + 1 };
        recent.push_back(success);
        while recent.len() > config.window as usize {
            recent.pop_front();
        }
        let failures = recent.iter().filter(|ok| !**ok).count();
        let rate_tripped = recent.len() >= config.min_calls as usize
            && failures as f64 / recent.len() as f64 >= config.failure_rate;
        if *consecutive >= config.consecutive_failures || rate_tripped {
            *position = Position::Open {
                until: now + config.open_for,
            };
            return Some(BreakerState::Open);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            consecutive_failures: 3,
            failure_rate: 0.5,
            window: 10,
            min_calls: 6,
            open_for: Duration::from_secs(10),
        })
    }

    fn call(b: &Breaker, ok: bool) -> Option<BreakerState> {
        let permit = b.acquire().expect("closed");
        b.record(permit, ok)
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_and_a_probe_closes_it() {
        let b = breaker();
        assert_eq!(call(&b, false), None);
        assert_eq!(call(&b, false), None);
        assert_eq!(call(&b, false), Some(BreakerState::Open));
        let wait = b.acquire().unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));

        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.acquire().is_err(), "still open after 9 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.acquire().expect("one probe");
        assert!(b.acquire().is_err(), "only one probe at a time");
        assert_eq!(b.record(probe, true), Some(BreakerState::Closed));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again() {
        let b = breaker();
        for _ in 0..3 {
            let _ = call(&b, false);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.acquire().unwrap();
        assert_eq!(b.record(probe, false), Some(BreakerState::Open));
        assert_eq!(b.acquire().unwrap_err(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_failure_rate_opens_it_without_a_streak() {
        let b = breaker();
        // ok, fail, ok, fail, ...: never two failures in a row, half of them failing.
        let mut opened = None;
        for i in 0..10 {
            if let Some(s) = call(&b, i % 2 == 0) {
                opened = Some((i, s));
                break;
            }
        }
        assert_eq!(opened, Some((5, BreakerState::Open)), "opens at min_calls");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_keep_it_closed() {
        let b = breaker();
        for i in 0..100 {
            // One failure in four: below the rate, never three in a row.
            assert_eq!(call(&b, i % 4 != 0), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_is_replaced_after_open_for() {
        let b = breaker();
        for _ in 0..3 {
            let _ = call(&b, false);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        let _abandoned = b.acquire().unwrap();
        assert!(b.acquire().is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.acquire().expect("a new probe");
        assert_eq!(b.record(probe, true), Some(BreakerState::Closed));
    }
}
