//! `Range: bytes=...` (RFC 9110 §14) against any length: every range answered
//! is non-empty and inside the representation, and there are never more than
//! the server's limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use web::range::{RangeRequest, parse};

fuzz_target!(|input: (&str, u64)| {
    let (header, len) = input;
    if let RangeRequest::Ranges(ranges) = parse(header, len) {
        assert!(!ranges.is_empty() && ranges.len() <= 32, "{ranges:?}");
        for range in &ranges {
            assert!(range.start < range.end && range.end <= len, "{range:?} of {len}");
        }
    }
});
