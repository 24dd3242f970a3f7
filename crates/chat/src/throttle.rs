//! Failed-login throttling, per account and per client address: after
//! `limit` failures within `window`, further attempts are refused until the
//! oldest of them leaves the window. Accounts that do not exist are tracked
//! the same way, so the answer never tells whether a name is registered.
//! An attempt counts as a failure from the moment it is let through until
//! its password checks out, so many connections guessing at once get no
//! more tries than one connection guessing in turn.
//!
//! Registrations are throttled too, per address and across all addresses:
//! each costs an Argon2 hash and a row in the database, so a flood of them
//! is cut off long before it can fill either.

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

/// A login attempt let through and not yet decided.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until it is settled"]
pub struct Attempt {
    account: String,
    source: IpAddr,
    at: Instant,
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

    /// Lets an attempt through, counting it as failed until it is settled,
    /// or `Err(wait)` when the account or the address is throttled.
    pub fn begin(&mut self, account: &str, ip: IpAddr, now: Instant) -> Result<Attempt, Duration> {
        let (limit, window) = (self.limit, self.window);
        let source = source(ip);
        let by_account = self.accounts.wait(account, limit, window, now);
        let by_address = self.addresses.wait(&source, limit, window, now);
        if let Some(wait) = by_account.max(by_address) {
            return Err(wait);
        }
        self.accounts.record(account.to_owned(), limit, window, now);
        self.addresses.record(source, limit, window, now);
        Ok(Attempt {
            account: account.to_owned(),
            source,
            at: now,
        })
    }

    /// The password was right: the account's failures are cleared, and the
    /// address's count loses this attempt (but keeps its earlier failures).
    pub fn succeeded(&mut self, attempt: Attempt) {
        self.accounts.entries.remove(&attempt.account);
        self.addresses.forget(&attempt.source, attempt.at);
    }

    /// The attempt could not be decided (the server failed): it counts for
    /// nothing.
    pub fn abandoned(&mut self, attempt: Attempt) {
        self.accounts.forget(&attempt.account, attempt.at);
        self.addresses.forget(&attempt.source, attempt.at);
    }
}

/// New accounts per client address and overall within a window.
#[derive(Debug)]
pub struct RegisterThrottle {
    per_address: usize,
    overall: usize,
    window: Duration,
    addresses: Failures<IpAddr>,
    all: Failures<()>,
}

/// A registration let through; it counts unless it is given back.
#[derive(Debug)]
pub struct Registration {
    source: IpAddr,
    at: Instant,
}

impl RegisterThrottle {
    pub fn new(per_address: u32, overall: u32, window: Duration) -> Self {
        Self {
            per_address: per_address.max(1) as usize,
            overall: overall.max(1) as usize,
            window,
            addresses: Failures::default(),
            all: Failures::default(),
        }
    }

    /// Counts a registration from `ip`, or `Err(wait)` when the address or
    /// the server as a whole has had its share of the window.
    pub fn begin(&mut self, ip: IpAddr, now: Instant) -> Result<Registration, Duration> {
        let source = source(ip);
        let window = self.window;
        let by_address = self.addresses.wait(&source, self.per_address, window, now);
        let overall = self.all.wait(&(), self.overall, window, now);
        if let Some(wait) = by_address.max(overall) {
            return Err(wait);
        }
        self.addresses.record(source, self.per_address, window, now);
        self.all.record((), self.overall, window, now);
        Ok(Registration { source, at: now })
    }

    /// The registration did not happen (the server was busy or failed): it
    /// counts for nothing.
    pub fn abandoned(&mut self, registration: Registration) {
        self.addresses.forget(&registration.source, registration.at);
        self.all.forget(&(), registration.at);
    }
}

/// IPv6 clients usually own a whole /64, so that is the unit throttled.
pub(crate) fn source(ip: IpAddr) -> IpAddr {
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

    /// Takes back the failure recorded at `at`, if it is still counted.
    fn forget<Q>(&mut self, key: &Q, at: Instant)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(times) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(index) = times.iter().rposition(|time| *time == at) {
            times.remove(index);
        }
        if times.is_empty() {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &mut LoginThrottle, account: &str, ip: IpAddr, now: Instant) {
        // Never settled: a wrong password.
        let _ = throttle.begin(account, ip, now).expect("not throttled yet");
    }

    #[test]
    fn throttles_after_limit_and_recovers() {
        let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            fail(&mut throttle, "alice", ip, t0 + Duration::from_secs(i));
        }
        let wait = throttle
            .begin("alice", ip, t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(57));
        // The account is throttled from every address.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(throttle.begin("alice", other, t0).is_err());
        // The address is throttled for every account, existing or not.
        assert!(throttle.begin("nobody", ip, t0).is_err());
        assert!(throttle.begin("bob", other, t0).is_ok());
        // After the window the oldest failure no longer counts.
        assert!(
            throttle
                .begin("alice", other, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn attempts_in_flight_count_as_failures() {
        let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        // Three guesses let through at once, none decided yet: a fourth
        // parallel guess waits like a fourth sequential one.
        let pending: Vec<Attempt> = (0..3)
            .map(|_| throttle.begin("alice", ip, now).unwrap())
            .collect();
        assert!(throttle.begin("alice", ip, now).is_err());
        // A server failure gives an attempt back.
        let mut pending = pending.into_iter();
        throttle.abandoned(pending.next().unwrap());
        let retry = throttle.begin("alice", ip, now).unwrap();
        assert!(throttle.begin("alice", ip, now).is_err());
        // The right password clears the account, and only its own attempt
        // from the address's count.
        throttle.succeeded(retry);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(throttle.begin("alice", other, now).is_ok());
        fail(&mut throttle, "carol", ip, now);
        assert!(throttle.begin("dave", ip, now).is_err());
    }

    #[test]
    fn success_clears_the_account_only() {
        let mut throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        let now = Instant::now();
        fail(&mut throttle, "carol", ip, now);
        let right = throttle.begin("carol", ip, now).unwrap();
        throttle.succeeded(right);
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(throttle.begin("carol", other, now).is_ok());
        // The address keeps its earlier failure; mapped and plain IPv4 are
        // the same source, so one more from the plain form reaches the limit.
        fail(&mut throttle, "erin", "192.0.2.9".parse().unwrap(), now);
        assert!(
            throttle
                .begin("dave", "192.0.2.9".parse().unwrap(), now)
                .is_err()
        );
    }

    #[test]
    fn registrations_are_limited_per_address_and_overall() {
        let mut throttle = RegisterThrottle::new(2, 3, Duration::from_secs(600));
        let t0 = Instant::now();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let _ = throttle.begin(one, t0).unwrap();
        let given_back = throttle.begin(one, t0).unwrap();
        assert_eq!(
            throttle.begin(one, t0).unwrap_err(),
            Duration::from_secs(600)
        );
        throttle.abandoned(given_back);
        let _ = throttle.begin(one, t0).unwrap();
        let _ = throttle.begin(two, t0).unwrap();
        // Three in the window from anywhere: everyone waits.
        let three: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(throttle.begin(three, t0).is_err());
        assert!(throttle.begin(three, t0 + Duration::from_secs(601)).is_ok());
    }

    #[test]
    fn ipv6_is_throttled_per_64() {
        let mut throttle = LoginThrottle::new(1, Duration::from_secs(60));
        let now = Instant::now();
        fail(&mut throttle, "x", "2001:db8:1:2::1".parse().unwrap(), now);
        assert!(
            throttle
                .begin("y", "2001:db8:1:2::ffff".parse().unwrap(), now)
                .is_err()
        );
        assert!(
            throttle
                .begin("y", "2001:db8:1:3::1".parse().unwrap(), now)
                .is_ok()
        );
    }
}
