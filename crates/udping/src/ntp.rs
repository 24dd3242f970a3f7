//! NTP 64-bit timestamps (RFC 5905 §6): seconds since 1900 in the high 32
//! bits, the binary fraction of a second in the low 32. STAMP carries every
//! timestamp in this form when the Z bit of its error estimate is 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 (the NTP era 0 epoch) to 1970-01-01.
const UNIX_OFFSET: u64 = 2_208_988_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Times before 1970 never occur on a running clock; they map to the
    /// Unix epoch rather than failing.
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_unix.as_secs().wrapping_add(UNIX_OFFSET) & 0xffff_ffff;
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        Self((seconds << 32) | fraction)
    }

    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// How much later `self` is than `earlier`, or `None` if it is not.
    /// Wrapping arithmetic keeps this right across the 2036 era rollover for
    /// intervals shorter than 68 years.
    pub fn since(self, earlier: NtpTimestamp) -> Option<Duration> {
        let diff = self.0.wrapping_sub(earlier.0) as i64;
        (diff >= 0).then(|| to_duration(diff as u64))
    }

    /// The signed difference `self - other` in seconds.
    pub fn diff_secs(self, other: NtpTimestamp) -> f64 {
        let diff = self.0.wrapping_sub(other.0) as i64;
        diff as f64 / 4_294_967_296.0
    }
}

fn to_duration(fixed: u64) -> Duration {
    let secs = fixed >> 32;
    let nanos = ((fixed & 0xffff_ffff) * 1_000_000_000) >> 32;
    Duration::new(secs, nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_and_fractions() {
        let epoch = NtpTimestamp::from_system_time(UNIX_EPOCH);
        assert_eq!(epoch.seconds(), 2_208_988_800);
        assert_eq!(epoch.fraction(), 0);
        let half = NtpTimestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(half.seconds(), 2_208_988_801);
        assert_eq!(half.fraction(), 0x8000_0000);
    }

    #[test]
    fn differences() {
        let t0 = NtpTimestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let t1 = NtpTimestamp::from_system_time(
            UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(2500),
        );
        let since = t1.since(t0).unwrap();
        assert!((since.as_secs_f64() - 0.0025).abs() < 1e-8, "{since:?}");
        assert_eq!(t0.since(t1), None);
        assert!((t0.diff_secs(t1) + 0.0025).abs() < 1e-8);
        // Across the era rollover (2036-02-07).
        let before = NtpTimestamp(0xffff_ffff_0000_0000);
        let after = NtpTimestamp(0x0000_0001_0000_0000);
        assert_eq!(after.since(before), Some(Duration::from_secs(2)));
    }
}
