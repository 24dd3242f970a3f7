//! Who counts as one client: an IPv4 address, or an IPv6 /64 (one
//! customer's network, which hands out addresses freely), and the token
//! bucket that bounds how fast one client may open connections.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The unit per-client limits count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl Client {
    pub fn of(ip: IpAddr) -> Self {
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        match ip.to_canonical() {
            IpAddr::V4(v4) => Client::V4(v4),
            IpAddr::V6(v6) => Client::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::V4(v4) => write!(f, "{v4}"),
            Client::V6(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(*prefix) << 64))
            }
        }
    }
}

/// New connections a client may open: a whole minute's worth at once,
/// then steadily at the per-minute rate.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(per_minute: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(per_minute),
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, per_minute: u32, now: Instant) -> bool {
        self.refill(per_minute, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A full bucket says nothing a fresh one would not.
    pub fn is_full(&mut self, per_minute: u32, now: Instant) -> bool {
        self.refill(per_minute, now);
        self.tokens >= f64::from(per_minute)
    }

    fn refill(&mut self, per_minute: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        let rate = f64::from(per_minute) / Duration::from_secs(60).as_secs_f64();
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(f64::from(per_minute));
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = Client::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::of("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Client::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_clients_are_one_address_even_when_mapped() {
        let plain = Client::of("127.0.0.1".parse().unwrap());
        let mapped = Client::of("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(plain, mapped);
        assert_ne!(plain, Client::of("127.0.0.2".parse().unwrap()));
        assert_eq!(plain.to_string(), "127.0.0.1");
    }

    #[test]
    fn the_bucket_allows_a_minute_at_once_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(60, start);
        for _ in 0..60 {
            assert!(bucket.take(60, start));
        }
        assert!(!bucket.take(60, start));
        assert!(bucket.take(60, start + Duration::from_secs(1)));
        assert!(!bucket.take(60, start + Duration::from_secs(1)));
        assert!(bucket.is_full(60, start + Duration::from_secs(61)));
    }
}
