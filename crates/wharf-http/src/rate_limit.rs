//! Rate limits: per client IP for anonymous callers, per subject (token `sub`
//! or API-key name) for authenticated ones, and optional per-tool limits.
//!
//! Both backends run the same algorithm, GCRA (a token bucket without a timer:
//! the bucket holds one minute's quota and refills continuously): in process
//! with `governor`, or in Redis with a short Lua script whose clock is Redis's
//! own (`TIME`), so replicas with skewed clocks still share one limit. When
//! Redis cannot be reached the configured [`FailMode`] decides, and every such
//! decision is counted in `wharf_rate_limit_backend_errors_total` and logged
//! (at most once per [`BACKEND_ERROR_LOG_INTERVAL`]).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use tokio::{sync::OnceCell, time::Instant};
use wharf_core::Problem;

/// Every this many in-process checks, buckets that have refilled completely are
/// forgotten, so a flood from many addresses cannot grow the table without bound.
const RETAIN_EVERY: u64 = 10_000;

/// How often a Redis failure is logged while it lasts.
pub const BACKEND_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long one Redis round trip may take before it counts as a failure.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// What happens when the shared backend cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Let the request through (availability over strictness).
    Open,
    /// Refuse it with 503 (strictness over availability).
    Closed,
}

/// Where the counters live.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In this process: limits hold per replica.
    Local,
    /// In Redis: limits hold across every replica using the same Redis.
    Redis { url: String, prefix: String },
}

/// The Redis URL may hold a password: never printed.
impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local => f.write_str("Local"),
            Backend::Redis { prefix, .. } => {
                write!(f, "Redis {{ url: [redacted], prefix: {prefix:?} }}")
            }
        }
    }
}

/// The limits, per minute.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per minute per client IP, for requests without credentials.
    pub anonymous_per_minute: u32,
    /// Requests per minute per subject, for authenticated requests.
    pub subject_per_minute: u32,
    /// Calls per minute per caller, per tool.
    pub tools: HashMap<String, u32>,
    pub backend: Backend,
    pub on_backend_error: FailMode,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            anonymous_per_minute: 100,
            subject_per_minute: 100,
            tools: HashMap::new(),
            backend: Backend::Local,
            on_backend_error: FailMode::Open,
        }
    }
}

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Anonymous,
    Subject,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Anonymous => "ip",
            Class::Subject => "subject",
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        retry_after: Duration,
    },
    /// The backend failed and the fail mode is closed.
    Unavailable,
}

const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return 0
";

struct RedisBackend {
    client: redis::Client,
    conn: OnceCell<redis::aio::ConnectionManager>,
    prefix: String,
    script: redis::Script,
}

/// The limiter every request passes.
pub struct Limiter {
    config: RateLimitConfig,
    local: HashMap<String, DefaultKeyedRateLimiter<String>>,
    redis: Option<RedisBackend>,
    last_error_log: Mutex<Option<Instant>>,
    backend_errors: prometheus::IntCounter,
    checks: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("backend", &self.config.backend)
            .finish()
    }
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least 1"))
}

impl Limiter {
    pub fn new(
        config: RateLimitConfig,
        backend_errors: prometheus::IntCounter,
    ) -> Result<Arc<Self>, Problem> {
        let mut local = HashMap::new();
        local.insert(
            bucket(Class::Anonymous, None),
            DefaultKeyedRateLimiter::keyed(quota(config.anonymous_per_minute)),
        );
        local.insert(
            bucket(Class::Subject, None),
            DefaultKeyedRateLimiter::keyed(quota(config.subject_per_minute)),
        );
        for (tool, n) in &config.tools {
            local.insert(
                bucket(Class::Subject, Some(tool)),
                DefaultKeyedRateLimiter::keyed(quota(*n)),
            );
        }
        let redis = match &config.backend {
            Backend::Local => None,
            Backend::Redis { url, prefix } => Some(RedisBackend {
                client: redis::Client::open(url.as_str()).map_err(|e| {
                    Problem::new("rate_limit.redis_url", format!("not a Redis URL: {e}"))
                })?,
                conn: OnceCell::new(),
                prefix: prefix.clone(),
                script: redis::Script::new(GCRA),
            }),
        };
        Ok(Arc::new(Self {
            config,
            local,
            redis,
            last_error_log: Mutex::new(None),
            backend_errors,
            checks: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Whether `tool` has a limit of its own.
    pub fn limits_tool(&self, tool: &str) -> bool {
        self.config.enabled && self.config.tools.contains_key(tool)
    }

    /// Draw one request for `key` (an IP or a subject) from `class`'s bucket,
    /// or from the bucket of `tool` when given.
    pub async fn check(&self, class: Class, key: &str, tool: Option<&str>) -> Decision {
        if !self.config.enabled {
            return Decision::Allow;
        }
        let per_minute = match tool {
            Some(t) => match self.config.tools.get(t) {
                Some(n) => *n,
                None => return Decision::Allow,
            },
            None => match class {
                Class::Anonymous => self.config.anonymous_per_minute,
                Class::Subject => self.config.subject_per_minute,
            },
        };
        let name = bucket(
            if tool.is_some() {
                Class::Subject
            } else {
                class
            },
            tool,
        );
        match &self.redis {
            None => self.check_local(&name, key),
            Some(r) => match self.check_redis(r, &name, key, per_minute).await {
                Ok(d) => d,
                Err(e) => self.backend_failed(&e),
            },
        }
    }

    fn check_local(&self, bucket: &str, key: &str) -> Decision {
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % RETAIN_EVERY == RETAIN_EVERY - 1 {
            for limiter in self.local.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        let Some(limiter) = self.local.get(bucket) else {
            return Decision::Allow;
        };
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => Decision::Allow,
            Err(not_until) => Decision::Deny {
                retry_after: not_until
                    .wait_time_from(governor::clock::DefaultClock::default().now()),
            },
        }
    }

    async fn check_redis(
        &self,
        r: &RedisBackend,
        bucket: &str,
        key: &str,
        per_minute: u32,
    ) -> Result<Decision, redis::RedisError> {
        let conn = r
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(r.client.clone(), config).await
            })
            .await?;
        let mut conn = conn.clone();
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        let wait_us: i64 = r
            .script
            .key(format!("{}{bucket}:{key}", r.prefix))
            .arg(interval_us)
            .arg(per_minute)
            .invoke_async(&mut conn)
            .await?;
        Ok(if wait_us <= 0 {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after: Duration::from_micros(wait_us.unsigned_abs()),
            }
        })
    }

    fn backend_failed(&self, error: &redis::RedisError) -> Decision {
        self.backend_errors.inc();
        let mut last = wharf_core::sync::lock(&self.last_error_log);
        if last.is_none_or(|t| t.elapsed() >= BACKEND_ERROR_LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                %error,
                fail_mode = ?self.config.on_backend_error,
                "the rate-limit backend (Redis) cannot be reached"
            );
        }
        match self.config.on_backend_error {
            FailMode::Open => Decision::Allow,
            FailMode::Closed => Decision::Unavailable,
        }
    }
}

fn bucket(class: Class, tool: Option<&str>) -> String {
    match tool {
        Some(t) => format!("tool:{t}"),
        None => class.label().to_owned(),
    }
}
