//! Calendar times in UTC for logs, listings and JSON, without a date
//! library: the one conversion from seconds to calendar fields.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC broken into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Civil {
    pub fn from(time: SystemTime) -> Self {
        let secs = match time.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        };
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest / 60 % 60) as u32,
            second: (rest % 60) as u32,
        }
    }

    /// `10/Oct/2000:13:55:36 +0000`, the Common Log Format's timestamp.
    pub fn log_format(&self) -> String {
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// The moment `seconds` after the Unix epoch.
    pub fn from_unix(seconds: u64) -> Self {
        Self::from(UNIX_EPOCH + std::time::Duration::from_secs(seconds))
    }

    /// `2000-10-10T13:55:36Z`, RFC 3339 for JSON.
    pub fn rfc3339(&self) -> String {
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2000-10-10 13:55:36 UTC`, for people.
    pub fn readable(&self) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2000-10-10 13:55`, for directory listings.
    pub fn listing_format(&self) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a
/// proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let at = |secs| Civil::from(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0).log_format(), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(971_186_136).log_format(), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(at(951_782_400).listing_format(), "2000-02-29 00:00");
        assert_eq!(at(4_102_444_799).log_format(), "31/Dec/2099:23:59:59 +0000");
        // Agrees with the HTTP date formatter on an arbitrary day.
        let time = UNIX_EPOCH + Duration::from_secs(1_763_729_116);
        assert_eq!(
            httpdate::fmt_http_date(time),
            "Fri, 21 Nov 2025 12:45:16 GMT"
        );
        assert_eq!(Civil::from(time).log_format(), "21/Nov/2025:12:45:16 +0000");
        assert_eq!(Civil::from(time).rfc3339(), "2025-11-21T12:45:16Z");
        assert_eq!(Civil::from_unix(0).readable(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            Civil::from_unix(951_782_400).readable(),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            Civil::from_unix(1_700_000_000).readable(),
            "2023-11-14 22:13:20 UTC"
        );
    }
}
