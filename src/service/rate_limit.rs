//! Keyed rate limits (GCRA via `governor`), answered with `RATE_LIMITED` and `retryAfter`.
use std::{hash::Hash, num::NonZeroU32};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::{AppError, AppResult};

/// Keys kept before stale ones are dropped; bounds memory under a flood of distinct keys.
const PRUNE_ABOVE: usize = 10_000;

pub struct RateLimit<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    /// `per_minute` requests per key and minute, in a burst or spread out; 0 disables.
    pub fn per_minute(name: &'static str, per_minute: u32) -> Self {
        Self {
            name,
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    pub fn check(&self, key: &K) -> AppResult<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > PRUNE_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!("rate_limited_total", "limit" => self.name).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited {
                // Round up: retrying after a truncated wait would be refused again.
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}
