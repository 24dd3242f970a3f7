//! Byte ranges (RFC 9110 §14): parsing `Range: bytes=...` against a
//! representation's length.

use std::ops::Range;

/// More ranges than this in one request are answered with the whole
/// representation: many tiny or overlapping ranges are a known way to make
/// a server do a lot of work for a small request.
const MAX_RANGES: usize = 32;

/// What a `Range` header asks for, given the length of the representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable header: send the whole representation with 200. An
    /// unparseable header or another unit is ignored, as §14.2 requires.
    Whole,
    /// One or more satisfiable ranges, in the order asked, coalesced when
    /// they overlap.
    Ranges(Vec<Range<u64>>),
    /// 416: not one of the ranges overlaps the representation.
    Unsatisfiable,
}

pub fn parse(header: &str, len: u64) -> RangeRequest {
    // Range units are case-insensitive (§14.1).
    let header = header.trim();
    let Some(set) = header
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &header[6..])
    else {
        return RangeRequest::Whole;
    };
    let mut ranges = Vec::new();
    let mut specs = 0;
    for spec in set.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        specs += 1;
        if specs > MAX_RANGES {
            return RangeRequest::Whole;
        }
        match parse_spec(spec, len) {
            Spec::Invalid => return RangeRequest::Whole,
            Spec::Unsatisfiable => {}
            Spec::Range(range) => ranges.push(range),
        }
    }
    if specs == 0 {
        return RangeRequest::Whole;
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Ranges(coalesce(ranges))
}

enum Spec {
    Range(Range<u64>),
    Unsatisfiable,
    Invalid,
}

fn parse_spec(spec: &str, len: u64) -> Spec {
    let Some((first, last)) = spec.split_once('-') else {
        return Spec::Invalid;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-N`: the last N bytes.
        let Some(suffix) = number(last) else {
            return Spec::Invalid;
        };
        if suffix == 0 || len == 0 {
            return Spec::Unsatisfiable;
        }
        return Spec::Range(len.saturating_sub(suffix)..len);
    }
    let Some(start) = number(first) else {
        return Spec::Invalid;
    };
    let end = if last.is_empty() {
        len
    } else {
        match number(last) {
            Some(last) if last >= start => last.saturating_add(1).min(len),
            _ => return Spec::Invalid,
        }
    };
    if start >= len {
        return Spec::Unsatisfiable;
    }
    Spec::Range(start..end)
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Overlapping or adjacent ranges are merged (§14.2 allows it), which also
/// bounds the response to the size of the representation.
fn coalesce(ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let overlapping = ranges.iter().enumerate().any(|(i, a)| {
        ranges[i + 1..]
            .iter()
            .any(|b| a.start <= b.end && b.start <= a.end)
    });
    if !overlapping {
        return ranges;
    }
    let mut sorted = ranges;
    sorted.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// The `Content-Range` value for one range of a representation.
pub fn content_range(range: &Range<u64>, len: u64) -> String {
    format!("bytes {}-{}/{len}", range.start, range.end - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(header: &str, len: u64) -> Vec<Range<u64>> {
        match parse(header, len) {
            RangeRequest::Ranges(ranges) => ranges,
            other => panic!("{header}: {other:?}"),
        }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(ranges("bytes=0-99", 1000), vec![0..100]);
        assert_eq!(ranges("bytes=900-", 1000), vec![900..1000]);
        assert_eq!(ranges("bytes=-100", 1000), vec![900..1000]);
        assert_eq!(ranges("bytes=-5000", 1000), vec![0..1000]);
        assert_eq!(ranges("bytes=990-5000", 1000), vec![990..1000]);
        assert_eq!(ranges("bytes=999-999", 1000), vec![999..1000]);
        assert_eq!(ranges(" bytes= 1 - 2 ", 1000), vec![1..3]);
        assert_eq!(ranges("Bytes=0-0", 1000), vec![0..1]);
        assert_eq!(ranges("BYTES=-1", 1000), vec![999..1000]);
    }

    #[test]
    fn multiple_ranges_keep_order_unless_they_overlap() {
        assert_eq!(ranges("bytes=500-599,0-9", 1000), vec![500..600, 0..10]);
        assert_eq!(ranges("bytes=0-9,5-20,-10", 1000), vec![0..21, 990..1000]);
        assert_eq!(ranges("bytes=0-9,10-19", 1000), vec![0..20]);
        // Unsatisfiable parts are dropped when others are satisfiable.
        assert_eq!(ranges("bytes=0-1,5000-6000", 1000), vec![0..2]);
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse("bytes=1000-", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), RangeRequest::Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes=",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=1",
            "bytes=--1",
            "bytes=+1-2",
            "0-1",
        ] {
            assert_eq!(parse(ignored, 1000), RangeRequest::Whole, "{ignored}");
        }
        let many = format!("bytes={}", vec!["0-0"; 40].join(","));
        assert_eq!(parse(&many, 1000), RangeRequest::Whole);
    }

    #[test]
    fn content_range_is_inclusive() {
        assert_eq!(content_range(&(0..100), 1000), "bytes 0-99/1000");
    }

    proptest! {
        #[test]
        fn ranges_always_lie_inside(header in "bytes=[0-9,\\- ]{0,30}", len in 0u64..5000) {
            if let RangeRequest::Ranges(ranges) = parse(&header, len) {
                prop_assert!(!ranges.is_empty());
                for range in ranges {
                    prop_assert!(range.start < range.end);
                    prop_assert!(range.end <= len);
                }
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(header in "\\PC*", len in any::<u64>()) {
            let _ = parse(&header, len);
        }
    }
}
