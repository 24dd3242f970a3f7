//! Per-client rate limiting: a token bucket (a burst, then a steady rate),
//! and a count of refusals so that a client who keeps flooding after being
//! told is disconnected.

use std::time::{Duration, Instant};

/// Refusals are counted over this period.
const STRIKE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Frames per second, steady state.
    pub rate: f64,
    /// Frames that may arrive at once after a quiet period.
    pub burst: u32,
    /// Refusals within ten seconds that end the connection.
    pub strikes: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            rate: 5.0,
            burst: 20,
            strikes: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Drop this frame and say so.
    Refuse,
    /// Too many refusals: close the connection.
    Disconnect,
}

#[derive(Debug)]
pub struct RateLimit {
    config: RateConfig,
    tokens: f64,
    last: Instant,
    strikes: u32,
    strikes_since: Instant,
}

impl RateLimit {
    pub fn new(config: RateConfig, now: Instant) -> Self {
        Self {
            config,
            tokens: f64::from(config.burst.max(1)),
            last: now,
            strikes: 0,
            strikes_since: now,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let burst = f64::from(self.config.burst.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.config.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.strikes_since) > STRIKE_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        if self.strikes > self.config.strikes {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_then_disconnect() {
        let config = RateConfig {
            rate: 2.0,
            burst: 3,
            strikes: 2,
        };
        let t0 = Instant::now();
        let mut limit = RateLimit::new(config, t0);
        for _ in 0..3 {
            assert_eq!(limit.check(t0), Verdict::Allow);
        }
        assert_eq!(limit.check(t0), Verdict::Refuse);
        // Half a second buys one more frame at 2/s.
        assert_eq!(limit.check(t0 + Duration::from_millis(500)), Verdict::Allow);
        assert_eq!(
            limit.check(t0 + Duration::from_millis(500)),
            Verdict::Refuse
        );
        assert_eq!(
            limit.check(t0 + Duration::from_millis(500)),
            Verdict::Disconnect
        );
    }

    #[test]
    fn strikes_expire() {
        let config = RateConfig {
            rate: 0.001,
            burst: 1,
            strikes: 1,
        };
        let t0 = Instant::now();
        let mut limit = RateLimit::new(config, t0);
        assert_eq!(limit.check(t0), Verdict::Allow);
        assert_eq!(limit.check(t0), Verdict::Refuse);
        assert_eq!(limit.check(t0 + Duration::from_secs(11)), Verdict::Refuse);
    }
}
