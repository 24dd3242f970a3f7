//! A client's own conditional request (`If-None-Match`, `If-Modified-Since`)
//! checked against the response the cache is about to send: when the client
//! already holds that response, a 304 saves sending the body again.

use http::HeaderMap;
use http::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

/// Whether `request` says the client already has `response` (RFC 9110 §13.1).
pub fn client_has_current(request: &HeaderMap, response: &HeaderMap) -> bool {
    if request.contains_key(IF_NONE_MATCH) {
        let Some(etag) = response.get(ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == "*" || weak_eq(tag.trim(), etag.trim()));
    }
    let date = |headers: &HeaderMap, name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    match (
        date(request, IF_MODIFIED_SINCE),
        date(response, LAST_MODIFIED),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Weak comparison: `W/"x"` and `"x"` are the same entity tag.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn entity_tags() {
        let response = headers(&[("etag", "\"v1\"")]);
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"v1\"")]),
            &response
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"v0\", W/\"v1\"")]),
            &response
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "*")]),
            &response
        ));
        assert!(!client_has_current(
            &headers(&[("if-none-match", "\"v2\"")]),
            &response
        ));
        assert!(!client_has_current(&headers(&[]), &response));
    }

    #[test]
    fn dates() {
        let response = headers(&[("last-modified", "Tue, 01 Oct 2024 10:00:00 GMT")]);
        let same = headers(&[("if-modified-since", "Tue, 01 Oct 2024 10:00:00 GMT")]);
        let earlier = headers(&[("if-modified-since", "Mon, 30 Sep 2024 10:00:00 GMT")]);
        assert!(client_has_current(&same, &response));
        assert!(!client_has_current(&earlier, &response));
        // If-None-Match wins over If-Modified-Since.
        let both = headers(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", "Tue, 01 Oct 2024 10:00:00 GMT"),
        ]);
        assert!(!client_has_current(&both, &response));
    }
}
