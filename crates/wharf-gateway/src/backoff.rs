//! Exponential backoff with full jitter: attempt `n` waits a uniformly random time
//! in `[0, min(max, base * 2^n))`. Full jitter spreads the retries of many clients
//! that failed together, so they do not come back in lockstep (AWS Architecture
//! Blog, "Exponential Backoff and Jitter").

use std::time::Duration;

/// How long to wait before a retry or a reconnection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The ceiling of attempt `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A delay drawn for attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let ceilings: Vec<_> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_spread_below_the_ceiling() {
        let b = Backoff::default();
        let delays: Vec<_> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d < b.ceiling(3)));
        // Full jitter: both halves of the range are used.
        let half = b.ceiling(3) / 2;
        assert!(delays.iter().any(|d| *d < half));
        assert!(delays.iter().any(|d| *d >= half));
    }
}
