//! Rate limits (docs/ARCHITECTURE.md, "Limits"), in one component.
//!
//! - **Per client address**, per node, in memory: GCRA buckets from `governor` (the crate
//!   Vaultwarden and tower_governor use; well kept, lock-free, and it answers "retry after" exactly)
//!   for sign-in, registration, the token endpoints and, generously, every request. IPv6 clients
//!   are keyed by their /64, since one host usually holds a whole /64.
//! - **Per account**, in the database, so that replicas count together: wrong passwords for one
//!   email from one address are free up to `failures_before_delay`; after that each attempt must
//!   wait 1 s, doubling with every further failure, at most 15 minutes (Keycloak's brute-force
//!   "wait increment", Kanidm's softlock). Attempts are counted *before* the password is hashed, so
//!   concurrent guesses cannot slip past the count, and the waiting attempts never reach the hasher.
//!   An address that has not failed for the account is not held back by another address's failures,
//!   so an attacker cannot lock the owner out; only a guessing campaign spread over many addresses
//!   (ten times the free failures in an hour) slows every address, and then by at most a minute.
//!   A success clears the count of its own address. Counts are forgotten an hour after the last
//!   failure.
//!
//! Time for the per-account rule is the server's [`Clock`](crate::clock::Clock) (`now` is passed
//! in); the in-memory buckets use governor's monotonic clock.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;
use serde::Deserialize;

/// The rate limits (docs/ARCHITECTURE.md, "Limits"). Per client address, in memory on each node, except
/// the per-account sign-in back-off, which lives in the database so replicas count together.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Off only for test kits that sign in hundreds of times.
    #[serde(skip)]
    pub enabled: bool,
    /// Sign-in attempts (REST and pages) per address and minute.
    pub sign_in_per_minute: u32,
    /// Registrations per address and hour.
    pub registrations_per_hour: u32,
    /// Requests to `/auth/token`, `/oauth/token` and `/auth/accesscode` per address and minute.
    pub token_requests_per_minute: u32,
    /// All requests per address and second (bursts of four seconds' worth are allowed).
    pub requests_per_second: u32,
    /// Wrong passwords for one account from one address before each further attempt waits
    /// (1 s, doubling with every failure, at most 15 minutes).
    pub failures_before_delay: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            sign_in_per_minute: 10,
            registrations_per_hour: 10,
            token_requests_per_minute: 120,
            requests_per_second: 500,
            failures_before_delay: 5,
        }
    }
}

impl RateLimits {
    pub fn off() -> RateLimits {
        RateLimits {
            enabled: false,
            ..RateLimits::default()
        }
    }

    /// Refuses a limit of zero, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        let values = [
            ("sign_in_per_minute", self.sign_in_per_minute),
            ("registrations_per_hour", self.registrations_per_hour),
            ("token_requests_per_minute", self.token_requests_per_minute),
            ("requests_per_second", self.requests_per_second),
            ("failures_before_delay", self.failures_before_delay),
        ];
        match values.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!(
                "rate_limits.{name} must be at least 1 (turn limits off with rate_limits = \"off\")"
            )),
            None => Ok(()),
        }
    }
}

/// Failures are forgotten this long after the last one.
pub const FAILURE_WINDOW: Millis = 3_600_000;
/// The longest one address waits between guesses for one account.
pub const MAX_PAIR_DELAY: Millis = 15 * 60_000;
/// The longest every address waits when one account is under a spread-out attack.
pub const MAX_ACCOUNT_DELAY: Millis = 60_000;

/// The in-memory buckets, per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    SignIn,
    Register,
    /// `/auth/token`, `/oauth/token`, `/auth/accesscode`.
    Token,
    /// Every request but the health checks.
    Overall,
}

pub struct Limiter {
    config: RateLimits,
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    register: DefaultKeyedRateLimiter<IpAddr>,
    token: DefaultKeyedRateLimiter<IpAddr>,
    overall: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The key of an address: IPv4 (also when mapped into IPv6) as it is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Whole seconds to wait, rounded up (at least 1).
fn seconds(millis: u128) -> u64 {
    u64::try_from(millis.div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A sign-in attempt that passed the per-account rule; report its outcome.
#[derive(Debug)]
pub struct Attempt {
    counted: Option<(String, String)>,
}

impl Limiter {
    pub fn new(config: RateLimits) -> Limiter {
        let overall = config.requests_per_second;
        Limiter {
            sign_in: RateLimiter::keyed(Quota::per_minute(non_zero(config.sign_in_per_minute))),
            register: RateLimiter::keyed(Quota::per_hour(non_zero(config.registrations_per_hour))),
            token: RateLimiter::keyed(Quota::per_minute(non_zero(
                config.token_requests_per_minute,
            ))),
            overall: RateLimiter::keyed(
                Quota::per_second(non_zero(overall))
                    .allow_burst(non_zero(overall.saturating_mul(4))),
            ),
            clock: DefaultClock::default(),
            config,
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Takes one request from an address's bucket, or says how long to wait.
    pub fn check(&self, bucket: Bucket, client: IpAddr) -> Result<()> {
        if !self.config.enabled {
            return Ok(());
        }
        let limiter = match bucket {
            Bucket::SignIn => &self.sign_in,
            Bucket::Register => &self.register,
            Bucket::Token => &self.token,
            Bucket::Overall => &self.overall,
        };
        limiter
            .check_key(&address_key(client))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                Error::RateLimited {
                    retry_after: seconds(wait.as_millis()),
                }
            })
    }

    /// Forgets buckets that are full again (housekeeping), so memory follows active clients.
    pub fn forget_idle(&self) {
        for limiter in [&self.sign_in, &self.register, &self.token, &self.overall] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The wait before another attempt for an (account, address) pair with `failures` failures.
    fn pair_delay(&self, failures: i64) -> Millis {
        let free = i64::from(self.config.failures_before_delay);
        if failures < free {
            return 0;
        }
        let doublings = u32::try_from(failures - free).unwrap_or(u32::MAX).min(20);
        (1000_i64 << doublings).min(MAX_PAIR_DELAY)
    }

    /// The wait every address shares once an account has failed this often from all addresses.
    fn account_delay(&self, failures: i64) -> Millis {
        let free = i64::from(self.config.failures_before_delay);
        let threshold = free * 10;
        if failures < threshold {
            return 0;
        }
        let doublings = u32::try_from((failures - threshold) / free)
            .unwrap_or(u32::MAX)
            .min(20);
        (1000_i64 << doublings).min(MAX_ACCOUNT_DELAY)
    }

    /// Checks the per-account rule for a sign-in and counts the attempt (as a failure until
    /// [`Limiter::succeeded`] says otherwise). `email` is the normalised email, whether or not an
    /// account has it, so the answer reveals nothing about which accounts exist.
    pub async fn begin_sign_in(
        &self,
        store: &dyn Store,
        email: &str,
        client: IpAddr,
        now: Millis,
    ) -> Result<Attempt> {
        if !self.config.enabled {
            return Ok(Attempt { counted: None });
        }
        let account = hex::encode(Sha256::digest(email.as_bytes()));
        let address = address_key(client).to_string();
        let since = now.saturating_sub(FAILURE_WINDOW);
        let seen = store.sign_in_failures(&account, &address, since).await?;
        let pair_wait = seen.pair_last.saturating_add(self.pair_delay(seen.pair));
        let account_wait = seen
            .account_last
            .saturating_add(self.account_delay(seen.account));
        let wait_until = pair_wait.max(account_wait);
        if now < wait_until {
            return Err(Error::RateLimited {
                retry_after: seconds(u128::try_from(wait_until - now).unwrap_or(0)),
            });
        }
        let count = store
            .count_sign_in_attempt(&account, &address, now, since)
            .await?;
        // Another attempt from this address was counted since we looked: had it been seen, this
        // one would have had to wait.
        if count - 1 != seen.pair && self.pair_delay(count - 1) > 0 {
            return Err(Error::RateLimited {
                retry_after: seconds(u128::try_from(self.pair_delay(count - 1)).unwrap_or(0)),
            });
        }
        Ok(Attempt {
            counted: Some((account, address)),
        })
    }

    /// The password was right: this address starts afresh for the account.
    pub async fn succeeded(&self, store: &dyn Store, attempt: Attempt) -> Result<()> {
        match attempt.counted {
            Some((account, address)) => store.clear_sign_in_failures(&account, &address).await,
            None => Ok(()),
        }
    }
}

/// What the store knows of recent sign-in failures for an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Failures from this address, and when the last one was.
    pub pair: i64,
    pub pair_last: Millis,
    /// Failures from every address, and when the last one was.
    pub account: i64,
    pub account_last: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_host() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b), "one /64 is one client");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn delays_grow_and_stop_growing() {
        let limiter = Limiter::new(RateLimits::default());
        assert_eq!(limiter.pair_delay(4), 0);
        assert_eq!(limiter.pair_delay(5), 1000);
        assert_eq!(limiter.pair_delay(6), 2000);
        assert_eq!(limiter.pair_delay(1000), MAX_PAIR_DELAY);
        assert_eq!(limiter.account_delay(49), 0);
        assert_eq!(limiter.account_delay(50), 1000);
        assert_eq!(limiter.account_delay(10_000), MAX_ACCOUNT_DELAY);
    }

    #[test]
    fn buckets_refuse_with_a_retry_time() {
        let limiter = Limiter::new(RateLimits {
            sign_in_per_minute: 2,
            ..RateLimits::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check(Bucket::SignIn, ip).is_ok());
        assert!(limiter.check(Bucket::SignIn, ip).is_ok());
        match limiter.check(Bucket::SignIn, ip) {
            Err(Error::RateLimited { retry_after }) => assert!((1..=30).contains(&retry_after)),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(
            limiter
                .check(Bucket::SignIn, "192.0.2.2".parse().unwrap())
                .is_ok(),
            "another address has its own bucket"
        );
        let off = Limiter::new(RateLimits::off());
        for _ in 0..100 {
            assert!(off.check(Bucket::SignIn, ip).is_ok());
        }
    }
}
