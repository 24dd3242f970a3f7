//! The lab's text formats: `Ping <seq> <time>` probes, echoed back upper-cased
//! (`PING <seq> <time>`), and `Heartbeat <seq> <time>` beats, where `<time>`
//! is the sender's clock in seconds since the Unix epoch. netkit's beats add
//! `interval=<seconds>`, the sender's own cadence, so a monitor can judge
//! each client by it; the lab's servers read the first three words only.

use std::io::{Cursor, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::wire::WireError;

const PING: &str = "Ping";
const HEARTBEAT: &str = "Heartbeat";
const INTERVAL: &str = "interval=";

/// The longest text probe without padding: the word, a u32, a time with
/// microseconds and an interval, so a probe always fits a buffer of this size.
pub const MAX_TEXT_LEN: usize = 64;
/// Announced intervals are capped so the text stays within `MAX_TEXT_LEN`.
const MAX_INTERVAL: Duration = Duration::from_secs(u32::MAX as u64);

/// What a text datagram says, whichever side wrote it and in whatever case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextRepr {
    pub kind: TextKind,
    pub sequence: u32,
    /// Seconds since the Unix epoch, as the sender's clock read it.
    pub time: Option<Duration>,
    /// The sender's heartbeat interval, when it announces one.
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Ping,
    Heartbeat,
}

impl TextKind {
    fn word(self) -> &'static str {
        match self {
            TextKind::Ping => PING,
            TextKind::Heartbeat => HEARTBEAT,
        }
    }
}

impl TextRepr {
    /// Parses `<word> <seq> [<time>] [interval=<seconds>] ...`; anything
    /// else after the time (padding) is ignored. Replies that carry no sequence number, such as `pong`,
    /// are `NoSequence`.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotText)?;
        let mut words = text.split_ascii_whitespace();
        let kind = match words.next() {
            Some(word) if word.eq_ignore_ascii_case(PING) => TextKind::Ping,
            Some(word) if word.eq_ignore_ascii_case(HEARTBEAT) => TextKind::Heartbeat,
            _ => return Err(WireError::NoSequence),
        };
        let sequence = words
            .next()
            .and_then(|word| word.parse().ok())
            .ok_or(WireError::NoSequence)?;
        let time = words.next().and_then(parse_time);
        let interval = words.next().and_then(|word| {
            let (key, value) = word.split_at_checked(INTERVAL.len())?;
            key.eq_ignore_ascii_case(INTERVAL)
                .then(|| parse_time(value))
                .flatten()
                .filter(|interval| !interval.is_zero())
        });
        Ok(Self {
            kind,
            sequence,
            time,
            interval,
        })
    }

    /// Writes `<Word> <seq> <time>` into `buf`, padded with ` xxx...` up to
    /// `size` bytes when `size` is larger; returns the length written.
    /// `buf` must hold at least `max(size, MAX_TEXT_LEN)` bytes.
    pub fn emit(&self, buf: &mut [u8], size: usize) -> usize {
        let time = self.time.unwrap_or_default();
        let mut cursor = Cursor::new(&mut buf[..]);
        write!(
            cursor,
            "{} {} {}.{:06}",
            self.kind.word(),
            self.sequence,
            time.as_secs(),
            time.subsec_micros()
        )
        .expect("buffer holds MAX_TEXT_LEN");
        if let Some(interval) = self.interval {
            let interval = interval.min(MAX_INTERVAL);
            write!(
                cursor,
                " {INTERVAL}{}.{:03}",
                interval.as_secs(),
                interval.subsec_millis()
            )
            .expect("buffer holds MAX_TEXT_LEN");
        }
        let len = cursor.position() as usize;
        if size > len + 1 {
            buf[len] = b' ';
            buf[len + 1..size].fill(b'x');
            return size;
        }
        len
    }
}

/// The current time as the lab's clients send it.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Decimal seconds, `1763729137` or `1763729137.4567891`, read exactly:
/// digits past nanoseconds are dropped rather than rounded through a float.
fn parse_time(word: &str) -> Option<Duration> {
    let (whole, fraction) = word.split_once('.').unwrap_or((word, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut nanos = 0u32;
    for (place, digit) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - place as u32);
    }
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lab_probe_round_trip() {
        let probe = TextRepr {
            kind: TextKind::Ping,
            sequence: 7,
            time: Some(Duration::new(1_763_729_137, 123_456_000)),
            interval: None,
        };
        let mut buf = [0u8; 64];
        let n = probe.emit(&mut buf, 0);
        assert_eq!(&buf[..n], b"Ping 7 1763729137.123456");
        // The lab server's reply is the same text upper-cased.
        let reply = buf[..n].to_ascii_uppercase();
        assert_eq!(TextRepr::parse(&reply).unwrap(), probe);
    }

    #[test]
    fn padding_and_python_forms() {
        let probe = TextRepr {
            kind: TextKind::Heartbeat,
            sequence: 0,
            time: Some(Duration::from_secs(5)),
            interval: None,
        };
        let mut buf = [0u8; 64];
        let n = probe.emit(&mut buf, 32);
        assert_eq!(&buf[..n], b"Heartbeat 0 5.000000 xxxxxxxxxxx");
        assert_eq!(TextRepr::parse(&buf[..n]).unwrap().sequence, 0);
        // Python's str(time.time()) and a time with no fraction.
        let beat = TextRepr::parse(b"heartbeat 12 1763729137.4567891\n").unwrap();
        assert_eq!(beat.kind, TextKind::Heartbeat);
        assert_eq!(beat.sequence, 12);
        assert_eq!(beat.time.unwrap().as_secs(), 1_763_729_137);
        assert_eq!(TextRepr::parse(b"PING 3").unwrap().time, None);
        // A time Python formats with ctime() is not a number: still a probe.
        let ctime = TextRepr::parse(b"PING 4 SAT NOV 21 12:00:00 2026").unwrap();
        assert_eq!((ctime.sequence, ctime.time), (4, None));
    }

    #[test]
    fn heartbeats_announce_their_interval() {
        let beat = TextRepr {
            kind: TextKind::Heartbeat,
            sequence: 9,
            time: Some(Duration::from_secs(5)),
            interval: Some(Duration::from_millis(200)),
        };
        let mut buf = [0u8; MAX_TEXT_LEN];
        let n = beat.emit(&mut buf, 0);
        assert_eq!(&buf[..n], b"Heartbeat 9 5.000000 interval=0.200");
        assert_eq!(TextRepr::parse(&buf[..n]).unwrap(), beat);
        // Padding is not an interval, and neither is a zero one.
        assert_eq!(
            TextRepr::parse(b"Heartbeat 9 5 xxxx").unwrap().interval,
            None
        );
        assert_eq!(
            TextRepr::parse(b"Heartbeat 9 5 interval=0")
                .unwrap()
                .interval,
            None
        );
        // The longest beat still fits.
        let longest = TextRepr {
            sequence: u32::MAX,
            time: Some(Duration::new(u32::MAX as u64 * 4, 999_999_999)),
            interval: Some(Duration::MAX),
            ..beat
        };
        let n = longest.emit(&mut buf, 0);
        assert!(n <= MAX_TEXT_LEN);
    }

    #[test]
    fn replies_without_sequence() {
        for reply in [
            &b"pong"[..],
            b"PONG 1",
            b"Ping",
            b"Ping -1 2",
            b"",
            b"\xff\xfe",
        ] {
            assert!(TextRepr::parse(reply).is_err(), "{reply:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = TextRepr::parse(&bytes);
        }

        #[test]
        fn emitted_probes_parse(sequence: u32, secs in 0u64..5_000_000_000, micros in 0u32..1_000_000, size in 0usize..80) {
            let probe = TextRepr { kind: TextKind::Ping, sequence, time: Some(Duration::new(secs, micros * 1000)), interval: None };
            let mut buf = [0u8; 128];
            let n = probe.emit(&mut buf, size);
            prop_assert!(n >= size.min(MAX_TEXT_LEN).min(n));
            prop_assert_eq!(TextRepr::parse(&buf[..n]).unwrap(), probe);
        }
    }
}
