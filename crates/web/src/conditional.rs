//! Conditional requests (RFC 9110 §13): entity tags, and the order in which
//! the four preconditions are evaluated (§13.2.2).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderValue, Method};

/// The validators of one representation: a strong entity tag (with its
/// quotes, as sent in `ETag`) and the modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub etag: String,
    /// Whole seconds, as `Last-Modified` can carry no more.
    pub modified: SystemTime,
    /// `etag` and `modified` as header values, made once: a kept file's
    /// (`files::cache`) serve every response without formatting.
    pub etag_header: HeaderValue,
    pub last_modified: HeaderValue,
}

impl Validators {
    /// A strong tag from what changes when a file changes: its size and its
    /// modification time to the nanosecond (nginx uses the same idea).
    pub fn for_file(len: u64, modified: SystemTime, suffix: &str) -> Self {
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::new(
            format!(
                "\"{len:x}-{:x}.{:x}{suffix}\"",
                since.as_secs(),
                since.subsec_nanos()
            ),
            whole_seconds(modified),
        )
    }

    /// `etag` with its quotes; `modified` in whole seconds.
    pub fn new(etag: String, modified: SystemTime) -> Self {
        Self {
            etag_header: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("")),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified))
                .unwrap_or(HeaderValue::from_static("")),
            etag,
            modified,
        }
    }

    /// The same representation under another content coding is other bytes,
    /// so it needs another strong tag.
    pub fn with_coding(&self, coding: &str) -> Self {
        let inner = self.etag.trim_end_matches('"');
        Self::new(format!("{inner}-{coding}\""), self.modified)
    }
}

pub fn whole_seconds(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// What the preconditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and send the representation (or a range of it).
    Proceed,
    /// 304: the client's cached copy is current.
    NotModified,
    /// 412: the client's assumption about the resource does not hold.
    Failed,
}

/// Evaluates the preconditions in the order of RFC 9110 §13.2.2.
pub fn evaluate(method: &Method, headers: &HeaderMap, current: &Validators) -> Precondition {
    let safe = method == Method::GET || method == Method::HEAD;
    if let Some(value) = list_header(headers, IF_MATCH) {
        if !matches_any(&value, &current.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if header_date(headers, IF_UNMODIFIED_SINCE)
        .is_some_and(|since| current.modified > since)
    {
        return Precondition::Failed;
    }
    if let Some(value) = list_header(headers, IF_NONE_MATCH) {
        if matches_any(&value, &current.etag, Comparison::Weak) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe
        && header_date(headers, IF_MODIFIED_SINCE).is_some_and(|since| current.modified <= since)
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether a `Range` may be honoured given `If-Range` (§13.1.5): the tag
/// must match strongly, or the date must equal `Last-Modified` exactly.
pub fn if_range_holds(headers: &HeaderMap, current: &Validators) -> bool {
    let Some(value) = header_text(headers, IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return !value.starts_with("W/") && value == current.etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == current.modified)
}

#[derive(Clone, Copy)]
enum Comparison {
    Strong,
    Weak,
}

/// Whether a header's list of entity tags (or `*`) matches `current`.
fn matches_any(list: &str, current: &str, comparison: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let current_opaque = current;
    list.split(',').map(str::trim).any(|tag| {
        let (weak, opaque) = match tag.strip_prefix("W/") {
            Some(opaque) => (true, opaque),
            None => (false, tag),
        };
        match comparison {
            Comparison::Strong => !weak && opaque == current_opaque,
            Comparison::Weak => opaque == current_opaque,
        }
    })
}

fn header_text(headers: &HeaderMap, name: http::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A list-valued header sent on several field lines, combined into one
/// value as RFC 9110 §5.3 allows a recipient to.
pub fn list_header(headers: &HeaderMap, name: http::HeaderName) -> Option<Cow<'_, str>> {
    let mut values = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let first = values.next()?;
    let mut combined = Cow::Borrowed(first);
    for value in values {
        let all = combined.to_mut();
        all.push_str(", ");
        all.push_str(value);
    }
    Some(combined)
}

/// An invalid date makes the header count as absent (§13.1.3).
fn header_date(headers: &HeaderMap, name: http::HeaderName) -> Option<SystemTime> {
    header_text(headers, name).and_then(|text| httpdate::parse_http_date(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn validators() -> Validators {
        Validators::for_file(1234, UNIX_EPOCH + Duration::new(1_700_000_000, 5), "")
    }

    fn eval(method: Method, pairs: &[(&'static str, &str)]) -> Precondition {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        evaluate(&method, &headers, &validators())
    }

    const THEN: &str = "Tue, 14 Nov 2023 22:13:20 GMT"; // == modified
    const BEFORE: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const AFTER: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    #[test]
    fn tags_are_strong_and_distinct_per_coding() {
        let v = validators();
        assert_eq!(v.etag, "\"4d2-6553f100.5\"");
        assert_eq!(v.with_coding("br").etag, "\"4d2-6553f100.5-br\"");
        assert_eq!(v.modified, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(httpdate::fmt_http_date(v.modified), THEN);
    }

    #[test]
    fn if_none_match() {
        let tag = validators().etag;
        assert_eq!(
            eval(Method::GET, &[("if-none-match", &tag)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::HEAD, &[("if-none-match", &tag)]),
            Precondition::NotModified
        );
        let weak = format!("\"x\", W/{tag}");
        assert_eq!(
            eval(Method::GET, &[("if-none-match", &weak)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "*")]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "\"other\"")]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Method::POST, &[("if-none-match", &tag)]),
            Precondition::Failed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            eval(Method::GET, &[("if-modified-since", THEN)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::GET, &[("if-modified-since", AFTER)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::GET, &[("if-modified-since", BEFORE)]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-modified-since", "yesterday")]),
            Precondition::Proceed
        );
        // If-None-Match takes precedence over If-Modified-Since.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-none-match", "\"other\""), ("if-modified-since", AFTER)]
            ),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since() {
        let tag = validators().etag;
        assert_eq!(
            eval(Method::GET, &[("if-match", &tag)]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-match", "*")]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-match", "\"other\"")]),
            Precondition::Failed
        );
        // If-Match uses the strong comparison: a weak tag never matches.
        let weak = format!("W/{tag}");
        assert_eq!(
            eval(Method::GET, &[("if-match", &weak)]),
            Precondition::Failed
        );
        assert_eq!(
            eval(Method::GET, &[("if-unmodified-since", THEN)]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-unmodified-since", BEFORE)]),
            Precondition::Failed
        );
        // If-Match takes precedence over If-Unmodified-Since.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-match", &tag), ("if-unmodified-since", BEFORE)]
            ),
            Precondition::Proceed
        );
        // A list may come on several field lines.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-none-match", "\"x\""), ("if-none-match", &tag)]
            ),
            Precondition::NotModified
        );
        assert_eq!(
            eval(Method::GET, &[("if-match", "\"x\""), ("if-match", &tag)]),
            Precondition::Proceed
        );
        // A failed If-Match wins over a matching If-None-Match.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-match", "\"x\""), ("if-none-match", &tag)]
            ),
            Precondition::Failed
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            name in proptest::sample::select(vec![
                "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
            ]),
            value in "[ -~]{0,60}",
        ) {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
            let _ = evaluate(&Method::GET, &headers, &validators());
            let _ = if_range_holds(&headers, &validators());
        }
    }

    #[test]
    fn if_range() {
        let v = validators();
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_RANGE, HeaderValue::from_str(value).unwrap());
            if_range_holds(&headers, &v)
        };
        assert!(if_range_holds(&HeaderMap::new(), &v));
        assert!(check(&v.etag));
        assert!(!check(&format!("W/{}", v.etag)));
        assert!(!check("\"other\""));
        assert!(check(THEN));
        assert!(!check(AFTER));
        assert!(!check("garbage"));
    }
}
