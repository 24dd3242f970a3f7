//! The header fields of a stored response: as a hit sends them, as a
//! revalidation asks about them, and as a 304 selects and updates them
//! (RFC 9111 §3.2, §4.3.4). The caching policy decides
//! freshness, but its own copy of the response keeps only the last value of
//! a repeated field (two `Link` or `Vary` lines) and a 304 cannot add fields
//! to it, so the entry keeps every field itself and these functions use them.

use std::time::SystemTime;

use http::header::{
    AGE, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderValue, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
};
use http::response::Parts;
use http::{HeaderMap, HeaderName, Response, StatusCode};

use crate::cache::Meta;

/// Fields that describe the stored body, which a 304 does not replace.
const BODY_FIELDS: [HeaderName; 3] = [CONTENT_LENGTH, CONTENT_ENCODING, CONTENT_RANGE];

/// The head of a hit on `meta`: every stored field, the body's length, and
/// the response's current `Age`.
pub fn hit_head(meta: &Meta, status: StatusCode, now: SystemTime) -> Parts {
    let (mut head, ()) = Response::new(()).into_parts();
    head.status = status;
    head.headers = meta.headers.clone();
    head.headers
        .insert(AGE, HeaderValue::from(meta.policy.age(now).as_secs()));
    head.headers
        .insert(CONTENT_LENGTH, HeaderValue::from(meta.body_len));
    head
}

/// The stored fields updated by a 304's: each field the 304 carries
/// replaces every stored value of that name, or is added; those describing
/// the body stay. `update` must already be free of hop-by-hop fields.
pub fn updated_fields(stored: &HeaderMap, update: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    for name in update.keys() {
        if BODY_FIELDS.contains(name) {
            continue;
        }
        merged.remove(name);
        for value in update.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}

/// The request for the origin with the validators the policy put in its
/// revalidation request (whose copy of the other fields keeps only the last
/// value of a repeated one).
pub fn with_validators(request: &HeaderMap, revalidation: &HeaderMap) -> HeaderMap {
    let mut headers = request.clone();
    for name in [IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_RANGE] {
        headers.remove(&name);
        if let Some(value) = revalidation.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    headers
}

/// Whether a conditional request carries the stored response's own
/// validators: its ETag among `If-None-Match`, or its `Last-Modified` as
/// `If-Modified-Since` (the policy keeps a client's own validators instead).
pub fn asks_about(request: &HeaderMap, stored: &HeaderMap) -> bool {
    fn text(headers: &HeaderMap, name: http::HeaderName) -> Option<&str> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }
    let etag_asked = match (text(request, IF_NONE_MATCH), text(stored, ETAG)) {
        (Some(asked), Some(etag)) => asked.split(',').any(|tag| tag.trim() == etag),
        _ => false,
    };
    etag_asked
        || matches!(
            (text(request, IF_MODIFIED_SINCE), text(stored, LAST_MODIFIED)),
            (Some(asked), Some(modified)) if asked == modified
        )
}

/// The 304 as it selects a stored response (RFC 9111 §4.3.4). When it
/// answers a request carrying the stored response's own validators
/// (`asked_ours`), a 304 that names no validator (Python's http.server sends
/// none) selects that response: it is given the stored ones. Otherwise it
/// is left as it is, and selects only what its own validators match.
pub fn validating_view<B>(
    response: &Response<B>,
    stored: &HeaderMap,
    asked_ours: bool,
) -> Response<()> {
    let mut view = Response::new(());
    *view.status_mut() = response.status();
    *view.headers_mut() = response.headers().clone();
    let names_none =
        !response.headers().contains_key(ETAG) && !response.headers().contains_key(LAST_MODIFIED);
    if asked_ours && names_none {
        for name in [ETAG, LAST_MODIFIED] {
            if let Some(value) = stored.get(&name) {
                view.headers_mut().insert(name, value.clone());
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_304_replaces_and_adds_fields_but_not_the_body_ones() {
        let stored = headers(&[
            ("cache-control", "no-cache"),
            ("etag", "\"v1\""),
            ("link", "</a.css>; rel=preload"),
            ("link", "</b.js>; rel=preload"),
            ("content-length", "2"),
            ("content-encoding", "gzip"),
        ]);
        let update = headers(&[
            ("cache-control", "max-age=300"),
            ("cache-control", "public"),
            ("etag", "\"v1\""),
            ("x-new", "added"),
            ("content-length", "0"),
            ("content-encoding", "br"),
        ]);
        let merged = updated_fields(&stored, &update);
        assert_eq!(values(&merged, "cache-control"), ["max-age=300", "public"]);
        assert_eq!(values(&merged, "x-new"), ["added"]);
        assert_eq!(
            values(&merged, "link"),
            ["</a.css>; rel=preload", "</b.js>; rel=preload"],
            "fields the 304 leaves out stay"
        );
        assert_eq!(values(&merged, "content-length"), ["2"]);
        assert_eq!(values(&merged, "content-encoding"), ["gzip"]);
    }

    #[test]
    fn a_hit_sends_every_stored_value_and_its_own_age() {
        let mut meta = crate::cache::sample("http://example.com/a", b"hello");
        meta.headers.insert(AGE, HeaderValue::from_static("7"));
        let now = SystemTime::now();
        let head = hit_head(&meta, StatusCode::OK, now);
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers.get_all("link").iter().count(), 2);
        assert_eq!(values(&head.headers, "content-length"), ["5"]);
        let age: u64 = head.headers[AGE].to_str().unwrap().parse().unwrap();
        assert_eq!(age, meta.policy.age(now).as_secs());
        assert_eq!(head.headers.get_all(AGE).iter().count(), 1);
    }
}
