//! The lab's text probes and heartbeats: any datagram parses or is refused
//! cleanly, and a parsed one, written out again, parses to the same value
//! (times to the microsecond and intervals to the millisecond it is written
//! with).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use udping::wire::text::{MAX_TEXT_LEN, TextRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = TextRepr::parse(data) else {
        return;
    };
    let written = TextRepr {
        time: repr.time.map(|t| Duration::new(t.as_secs(), t.subsec_micros() * 1000)),
        // Intervals are written capped at u32::MAX seconds, to the millisecond.
        interval: repr
            .interval
            .map(|i| i.min(Duration::from_secs(u64::from(u32::MAX))))
            .map(|i| Duration::new(i.as_secs(), i.subsec_millis() * 1_000_000))
            .filter(|i| !i.is_zero()),
        ..repr
    };
    // Times past what the text can carry are not round-tripped.
    if written.time.is_some_and(|t| t.as_secs() >= 10u64.pow(11)) {
        return;
    }
    let mut buf = [0u8; MAX_TEXT_LEN];
    let n = written.emit(&mut buf, 0);
    assert_eq!(TextRepr::parse(&buf[..n]), Ok(TextRepr { time: written.time.or(Some(Duration::ZERO)), ..written }));
});
