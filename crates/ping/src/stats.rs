//! Per-target statistics, with iputils' arithmetic: round-trip times are
//! whole microseconds, the sums are doubles, the average and deviation are
//! truncated to microseconds and mdev is an integer square root, so the
//! summary line comes out digit for digit the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What happened to one target's probes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub transmitted: u64,
    pub received: u64,
    pub duplicates: u64,
    /// Replies whose checksum was wrong (raw IPv4 sockets verify it).
    pub corrupted: u64,
    /// ICMP errors (unreachable, time exceeded, ...) and local errors.
    pub errors: u64,
    /// Replies that came after their probe had timed out.
    pub late: u64,
    /// From the start of the run to the last probe sent.
    pub elapsed: Duration,
    /// The most probes outstanding at once when a reply or error came.
    pub pipe: u64,
    rtt: Accumulator,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Accumulator {
    samples: u64,
    sum: f64,
    sum2: f64,
    min: i64,
    max: i64,
    /// Exponentially weighted moving average, scaled by 8 as iputils keeps it.
    ewma8: u64,
}

/// `rtt min/avg/max/mdev`, each truncated to whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSummary {
    pub min: Duration,
    pub avg: Duration,
    pub max: Duration,
    pub mdev: Duration,
}

impl Statistics {
    /// Adds a round trip of `micros` whole microseconds, from a reply or a
    /// duplicate (iputils times both).
    pub fn record_rtt(&mut self, micros: i64) {
        let rtt = &mut self.rtt;
        rtt.sum += micros as f64;
        rtt.sum2 += (micros as f64) * (micros as f64);
        if rtt.samples == 0 || micros < rtt.min {
            rtt.min = micros;
        }
        if micros > rtt.max {
            rtt.max = micros;
        }
        rtt.samples += 1;
        rtt.ewma8 = if rtt.ewma8 == 0 {
            (micros as u64).wrapping_mul(8)
        } else {
            rtt.ewma8
                .wrapping_add((micros - (rtt.ewma8 / 8) as i64) as u64)
        };
    }

    /// Notes that `outstanding` probes (this one included) were in flight.
    pub fn record_pipe(&mut self, outstanding: u64) {
        self.pipe = self.pipe.max(outstanding);
    }

    /// Percentage of probes without a reply, as a C `float`.
    pub fn loss_percent(&self) -> Option<f32> {
        if self.transmitted == 0 {
            return None;
        }
        let lost = self.transmitted as i64 - self.received as i64;
        Some(((lost as f64 * 100.0) / self.transmitted as f64) as f32)
    }

    /// ping's `time` figure: milliseconds from the start to the last probe
    /// sent, rounded to nearest.
    pub fn time_ms(&self) -> u128 {
        (self.elapsed.as_nanos() + 500_000) / 1_000_000
    }

    /// min/avg/max/mdev, when a reply was timed.
    pub fn rtt(&self) -> Option<RttSummary> {
        let rtt = &self.rtt;
        if self.received == 0 || rtt.samples == 0 {
            return None;
        }
        let total = (self.received + self.duplicates) as f64;
        let avg = (rtt.sum / total) as i64;
        let variance = if rtt.sum < f64::from(i32::MAX) {
            ((rtt.sum2 - (rtt.sum * rtt.sum) / total) / total) as i64
        } else {
            (rtt.sum2 / total - (avg * avg) as f64) as i64
        };
        Some(RttSummary {
            min: micros(rtt.min),
            avg: micros(avg),
            max: micros(rtt.max),
            mdev: micros(integer_sqrt(variance)),
        })
    }

    /// The moving average of round trips (`ewma` in ping's flood summary).
    pub fn ewma(&self) -> Duration {
        Duration::from_micros(self.rtt.ewma8 / 8)
    }

    /// The mean gap between probes sent (`ipg` in ping's flood summary).
    pub fn inter_packet_gap(&self) -> Option<Duration> {
        let gaps = self.transmitted.checked_sub(1).filter(|&gaps| gaps > 0)?;
        let micros = self.elapsed.as_micros() / u128::from(gaps);
        Some(Duration::from_micros(micros.try_into().unwrap_or(u64::MAX)))
    }

    /// The largest round trip so far, which decides how long ping lingers
    /// for the last reply.
    pub fn max_rtt(&self) -> Option<Duration> {
        (self.rtt.samples > 0).then(|| micros(self.rtt.max))
    }
}

/// Whole microseconds from `sent` to `at`, each truncated first, as
/// iputils subtracts two `timeval`s.
pub fn micros_between(sent: SystemTime, at: SystemTime) -> i64 {
    let micros = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as i64)
    };
    (micros(at) - micros(sent)).max(0)
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

/// Newton's method on integers, as iputils' `llsqrt`.
fn integer_sqrt(value: i64) -> i64 {
    let mut x = value;
    if x > 0 {
        let mut previous = i64::MAX;
        while x < previous {
            previous = x;
            x = (x + value / x) / 2;
        }
    }
    x.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with(received: u64, rtts: &[i64]) -> Statistics {
        let mut stats = Statistics {
            transmitted: received,
            received,
            ..Statistics::default()
        };
        for &rtt in rtts {
            stats.record_rtt(rtt);
        }
        stats
    }

    #[test]
    fn matches_iputils_output() {
        // From iputils 20221126 on loopback:
        // rtt min/avg/max/mdev = 0.039/0.094/0.150/0.055 ms
        let rtt = with(2, &[150, 39]).rtt().unwrap();
        assert_eq!(rtt.min, Duration::from_micros(39));
        assert_eq!(rtt.avg, Duration::from_micros(94));
        assert_eq!(rtt.max, Duration::from_micros(150));
        assert_eq!(rtt.mdev, Duration::from_micros(55));
        // rtt min/avg/max/mdev = 0.012/0.031/0.042/0.013 ms
        let rtt = with(3, &[12, 42, 41]).rtt().unwrap();
        assert_eq!(rtt.avg, Duration::from_micros(31));
        assert_eq!(rtt.mdev, Duration::from_micros(13));
        // rtt min/avg/max/mdev = 0.027/0.032/0.038/0.005 ms
        assert_eq!(
            with(2, &[27, 38]).rtt().unwrap().mdev,
            Duration::from_micros(5)
        );
    }

    #[test]
    fn duplicates_count_in_the_average() {
        let mut stats = with(1, &[100]);
        stats.duplicates = 1;
        stats.record_rtt(300);
        assert_eq!(stats.rtt().unwrap().avg, Duration::from_micros(200));
        assert_eq!(stats.rtt().unwrap().mdev, Duration::from_micros(100));
    }

    #[test]
    fn no_rtt_without_replies() {
        assert_eq!(Statistics::default().rtt(), None);
        assert_eq!(with(1, &[]).rtt(), None, "untimed replies");
    }

    #[test]
    fn loss_is_a_float() {
        let mut stats = Statistics {
            transmitted: 3,
            received: 1,
            ..Statistics::default()
        };
        assert_eq!(stats.loss_percent(), Some((200.0f64 / 3.0) as f32));
        stats.received = 3;
        assert_eq!(stats.loss_percent(), Some(0.0));
        assert_eq!(Statistics::default().loss_percent(), None);
    }

    #[test]
    fn time_rounds_to_nearest_millisecond() {
        let stats = Statistics {
            elapsed: Duration::from_micros(2_003_499),
            ..Statistics::default()
        };
        assert_eq!(stats.time_ms(), 2003);
        let stats = Statistics {
            elapsed: Duration::from_micros(200_500),
            ..Statistics::default()
        };
        assert_eq!(stats.time_ms(), 201);
    }

    #[test]
    fn ewma_follows_iputils() {
        let stats = with(3, &[80, 160, 40]);
        // 640, then 640 + 160 - 80 = 720, then 720 + 40 - 90 = 670.
        assert_eq!(stats.ewma(), Duration::from_micros(670 / 8));
    }

    #[test]
    fn inter_packet_gap() {
        let stats = Statistics {
            transmitted: 5,
            elapsed: Duration::from_micros(1000),
            ..Statistics::default()
        };
        assert_eq!(stats.inter_packet_gap(), Some(Duration::from_micros(250)));
        assert_eq!(Statistics::default().inter_packet_gap(), None);
    }

    #[test]
    fn integer_square_root() {
        assert_eq!(integer_sqrt(0), 0);
        assert_eq!(integer_sqrt(-4), 0);
        assert_eq!(integer_sqrt(25), 5);
        assert_eq!(integer_sqrt(26), 5);
        // iputils' llsqrt stops one step late and can round up.
        assert_eq!(integer_sqrt(24), 5);
        assert_eq!(integer_sqrt(8), 3);
    }

    proptest! {
        #[test]
        fn summary_is_ordered(rtts in proptest::collection::vec(0i64..10_000_000, 1..50)) {
            let rtt = with(rtts.len() as u64, &rtts).rtt().unwrap();
            prop_assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max);
            prop_assert!(rtt.mdev <= rtt.max - rtt.min);
        }
    }
}
