//! The one style every JSON output of netkit follows (`--json`,
//! `--json-output`, `--log-format json`): one object per line, snake_case
//! keys, times in RFC 3339 (UTC), durations in milliseconds as floats in a
//! key ending `_ms`.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// `2026-12-05T07:52:03.123456Z`.
pub fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A duration as the float milliseconds every `_ms` key holds.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Writes one object as a line of stdout and flushes it, so a reader
/// following the stream (`| jq`) sees each event as it happens.
pub fn print_line(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ms, rfc3339};
    use std::time::{Duration, SystemTime};

    #[test]
    fn times_and_durations() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_456_056_750);
        assert_eq!(rfc3339(time), "2026-12-05T07:34:16.75Z");
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}
