//! Failed-login throttling, per account and per client address: after
//! `limit` failures within `window`, further attempts are refused until the
//! oldest of them leaves the window. Accounts that do not exist are tracked
//! the same way, so the answer never tells whether a name is registered.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Entries kept per table before expired ones are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    limit: usize,
    window: Duration,
    accounts: Failures<String>,
    addresses: Failures<IpAddr>,
}

impl LoginThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            accounts: Failures::default(),
            addresses: Failures::default(),
        }
    }

    /// `Err(wait)` when the account or the address is throttled.
    pub fn check(&mut self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let by_account = self.accounts.wait(account, self.limit, self.window, now);
        let by_address = self
            .addresses
            .wait(&source(ip), self.limit, self.window, now);
        match by_account.max(by_address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, account: &str, ip: IpAddr, now: Instant) {
        let (limit, window) = (self.limit, self.window);
        self.accounts.record(account.to_owned(), limit, window, now);
        self.addresses.record(source(ip), limit, window, now);
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.entries.remove(account);
    }
}

/// IPv6 clients usually own a whole /64, so that is the unit throttled.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

#[derive(Debug)]
struct Failures<K> {
    entries: HashMap<K, VecDeque<Instant>>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Failures<K> {
    fn wait<Q>(&self, key: &Q, limit: usize, window: Duration, now: Instant) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let times = self.entries.get(key)?;
        if times.len() < limit {
            return None;
        }
        let oldest = times[times.len() - limit];
        let free_at = oldest + window;
        (free_at > now).then(|| free_at - now)
    }

    fn record(&mut self, key: K, limit: usize, window: Duration, now: Instant) {
        if self.entries.len() >= SWEEP_AT {
            self.entries
                .retain(|_, times| times.back().is_some_and(|last| *last + window > now));
        }
        let times = self.entries.entry(key).or_default();
        times.push_back(now);
        while times.len() > limit {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_limit_and_recovers() {
        let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(throttle.check("alice", ip, t0).is_ok(), "attempt {i}");
            throttle.failed("alice", ip, t0 + Duration::from_secs(i));
        }
        let wait = throttle
            .check("alice", ip, t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(57));
        // The account is throttled from every address.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(throttle.check("alice", other, t0).is_err());
        // The address is throttled for every account, existing or not.
        assert!(throttle.check("nobody", ip, t0).is_err());
        assert!(throttle.check("bob", other, t0).is_ok());
        // After the window the oldest failure no longer counts.
        assert!(
            throttle
                .check("alice", other, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn success_clears_the_account_only() {
        let mut throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        let now = Instant::now();
        throttle.failed("carol", ip, now);
        throttle.failed("carol", ip, now);
        throttle.succeeded("carol");
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(throttle.check("carol", other, now).is_ok());
        // Mapped and plain IPv4 are the same source.
        assert!(
            throttle
                .check("dave", "192.0.2.9".parse().unwrap(), now)
                .is_err()
        );
    }

    #[test]
    fn ipv6_is_throttled_per_64() {
        let mut throttle = LoginThrottle::new(1, Duration::from_secs(60));
        let now = Instant::now();
        throttle.failed("x", "2001:db8:1:2::1".parse().unwrap(), now);
        assert!(
            throttle
                .check("y", "2001:db8:1:2::ffff".parse().unwrap(), now)
                .is_err()
        );
        assert!(
            throttle
                .check("y", "2001:db8:1:3::1".parse().unwrap(), now)
                .is_ok()
        );
    }
}
