//! Keyed rate limits (GCRA via `governor`), answered with `RATE_LIMITED` and `retryAfter`.
use std::{
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::{AppError, AppResult};

/// Keys kept before stale ones are dropped; bounds memory under a flood of distinct keys.
const PRUNE_ABOVE: usize = 10_000;

/// What limits per client address count: an IPv4 address, or an IPv6 /64. One subscriber, or
/// one host, gets a whole /64 and can pick any address in it; counting single IPv6 addresses
/// would give every client 2^64 separate allowances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet(IpAddr);

impl From<IpAddr> for ClientNet {
    fn from(ip: IpAddr) -> Self {
        Self(match ip {
            IpAddr::V4(_) => ip,
            // An IPv4 client seen through a dual-stack socket is that IPv4 client.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64)),
            },
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(ip: &str) -> ClientNet {
        ClientNet::from(ip.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            net("2001:db8:1:2:aaaa::1"),
            net("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("::ffff:192.0.2.7"), net("192.0.2.7"));
        assert_ne!(net("192.0.2.7"), net("192.0.2.8"));
    }

    #[test]
    fn a_limit_counts_every_address_of_a_64_as_one() {
        let limit = RateLimit::per_minute("test", 2);
        assert!(limit.check(&net("2001:db8::1")).is_ok());
        assert!(limit.check(&net("2001:db8::2")).is_ok());
        assert!(matches!(
            limit.check(&net("2001:db8::3")),
            Err(AppError::RateLimited { .. })
        ));
        assert!(limit.check(&net("2001:db9::1")).is_ok());
    }
}
