//! Byte ranges of a stored response (RFC 9110 §14): a GET with `Range`
//! for a cached object is answered from the cache with 206, when its
//! `If-Range` (if any) names the stored response. One range is served;
//! several, or a syntax this does not read, get the whole response, as the
//! RFC allows.

use http::header::{
    CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderValue, IF_RANGE, LAST_MODIFIED, RANGE,
};
use http::response::Parts;
use http::{HeaderMap, StatusCode};

/// What to send of a stored body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    Whole,
    /// Bytes `first..=last`.
    Part {
        first: u64,
        last: u64,
    },
    /// No byte of the body is in the range: 416.
    Unsatisfiable,
}

/// The part of the stored response (fields `stored`, body of `len` bytes)
/// that `request` asks for.
pub fn select(request: &HeaderMap, stored: &HeaderMap, len: u64) -> Selected {
    let Some(range) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Selected::Whole;
    };
    if let Some(condition) = request.get(IF_RANGE) {
        let Ok(condition) = condition.to_str() else {
            return Selected::Whole;
        };
        if !names_stored(condition.trim(), stored) {
            return Selected::Whole;
        }
    }
    parse(range, len)
}

/// Whether an `If-Range` value names the stored response: its strong ETag,
/// or exactly its `Last-Modified` date (RFC 9110 §13.1.5).
fn names_stored(condition: &str, stored: &HeaderMap) -> bool {
    let field = |name| {
        stored
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if condition.starts_with('"') {
        field(ETAG).is_some_and(|etag| etag.trim() == condition)
    } else if condition.starts_with("W/") {
        false
    } else {
        field(LAST_MODIFIED).is_some_and(|modified| modified.trim() == condition)
    }
}

/// Makes `head` (of a 200 with a body of `len` bytes) the head of what
/// `selected` sends: 206 with the part's `Content-Range` and length, or 416.
pub fn mark(head: &mut Parts, selected: Selected, len: u64) {
    let (status, range, length) = match selected {
        Selected::Whole => return,
        Selected::Part { first, last } => (
            StatusCode::PARTIAL_CONTENT,
            format!("bytes {first}-{last}/{len}"),
            last - first + 1,
        ),
        Selected::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("bytes */{len}"),
            0,
        ),
    };
    head.status = status;
    head.headers.insert(
        CONTENT_RANGE,
        HeaderValue::from_str(&range).expect("digits are a header value"),
    );
    head.headers
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
}

fn parse(range: &str, len: u64) -> Selected {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Selected::Whole;
    };
    if spec.contains(',') {
        return Selected::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Selected::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (number(first), number(last), last.trim().is_empty()) {
        // `-N`: the last N bytes.
        (None, Some(suffix), _) if first.trim().is_empty() => {
            if suffix == 0 || len == 0 {
                Selected::Unsatisfiable
            } else {
                Selected::Part {
                    first: len.saturating_sub(suffix),
                    last: len - 1,
                }
            }
        }
        (Some(first), None, true) if first < len => Selected::Part {
            first,
            last: len - 1,
        },
        (Some(first), Some(last), _) if first <= last && first < len => Selected::Part {
            first,
            last: last.min(len - 1),
        },
        (Some(first), Some(last), _) if first > last => Selected::Whole,
        (Some(_), _, _) => Selected::Unsatisfiable,
        _ => Selected::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(range: &str, if_range: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, range.parse().unwrap());
        if let Some(value) = if_range {
            headers.insert(IF_RANGE, value.parse().unwrap());
        }
        headers
    }

    fn stored() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ETAG, "\"v1\"".parse().unwrap());
        headers.insert(
            LAST_MODIFIED,
            "Tue, 01 Oct 2024 10:00:00 GMT".parse().unwrap(),
        );
        headers
    }

    #[test]
    fn single_ranges() {
        let part = |first, last| Selected::Part { first, last };
        let s = stored();
        assert_eq!(select(&request("bytes=0-9", None), &s, 100), part(0, 9));
        assert_eq!(select(&request("bytes=90-", None), &s, 100), part(90, 99));
        assert_eq!(select(&request("bytes=-5", None), &s, 100), part(95, 99));
        assert_eq!(select(&request("bytes=-500", None), &s, 100), part(0, 99));
        assert_eq!(
            select(&request("bytes=50-500", None), &s, 100),
            part(50, 99)
        );
        let none = Selected::Unsatisfiable;
        assert_eq!(select(&request("bytes=100-", None), &s, 100), none);
        assert_eq!(select(&request("bytes=-0", None), &s, 100), none);
        assert_eq!(select(&request("bytes=0-", None), &s, 0), none);
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-2",
            "bytes=x-",
            "bytes=",
        ] {
            assert_eq!(
                select(&request(whole, None), &s, 100),
                Selected::Whole,
                "{whole}"
            );
        }
        assert_eq!(select(&HeaderMap::new(), &s, 100), Selected::Whole);
    }

    #[test]
    fn if_range_must_name_the_stored_response() {
        let s = stored();
        let part = Selected::Part { first: 0, last: 9 };
        assert_eq!(select(&request("bytes=0-9", Some("\"v1\"")), &s, 100), part);
        let date = "Tue, 01 Oct 2024 10:00:00 GMT";
        assert_eq!(select(&request("bytes=0-9", Some(date)), &s, 100), part);
        for other in ["\"v2\"", "W/\"v1\"", "Wed, 02 Oct 2024 10:00:00 GMT"] {
            assert_eq!(
                select(&request("bytes=0-9", Some(other)), &s, 100),
                Selected::Whole,
                "{other}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn a_part_lies_inside_the_body(range in "bytes=[0-9-]{0,12}", len in 0u64..1000) {
            if let Ok(value) = range.parse() {
                let mut headers = HeaderMap::new();
                headers.insert(RANGE, value);
                if let Selected::Part { first, last } = select(&headers, &HeaderMap::new(), len) {
                    proptest::prop_assert!(first <= last && last < len);
                }
            }
        }
    }
}
