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
        let etag = opaque(etag.trim());
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(entity_tags)
            .any(|tag| tag == "*" || tag == etag);
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

/// An entity tag without its weakness: `W/"x"` and `"x"` compare equal
/// (the weak comparison `If-None-Match` uses).
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The entity tags of an `If-None-Match` value (RFC 9110 §8.8.3), quotes
/// kept and weakness dropped, or `*`. A tag may hold commas, so the list is
/// read tag by tag rather than split; reading stops at anything malformed.
fn entity_tags(value: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if let Some(after) = rest.strip_prefix('*') {
            tags.push("*");
            rest = after;
            continue;
        }
        let tag = opaque(rest);
        let Some(end) = tag.strip_prefix('"').and_then(|body| body.find('"')) else {
            return tags;
        };
        tags.push(&tag[..end + 2]);
        rest = &tag[end + 2..];
    }
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
        // A comma inside a tag is part of it.
        let comma = headers(&[("etag", "\"a,b\"")]);
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"x\", \"a,b\"")]),
            &comma
        ));
        assert!(!client_has_current(
            &headers(&[("if-none-match", "\"a\", \"b\"")]),
            &comma
        ));
        assert_eq!(
            super::entity_tags(" W/\"1\",\"2\" ,* \"3"),
            ["\"1\"", "\"2\"", "*"]
        );
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

    proptest::proptest! {
        #[test]
        fn any_header_bytes_are_judged_without_panic(
            inm in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            ims in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            etag in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            let headers = |pairs: [(http::HeaderName, &Vec<u8>); 2]| -> HeaderMap {
                pairs
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, http::HeaderValue::from_bytes(value).ok()?)))
                    .collect()
            };
            let request = headers([(IF_NONE_MATCH, &inm), (IF_MODIFIED_SINCE, &ims)]);
            let response = headers([(ETAG, &etag), (LAST_MODIFIED, &ims)]);
            let _ = client_has_current(&request, &response);
        }

        #[test]
        fn a_tag_matches_itself_in_a_list(tag in "[!#-~]{1,16}", other in "[!#-~]{1,16}") {
            let tag = format!("\"{tag}\"");
            let list = format!("\"{other}\", W/{tag}");
            let mut request = HeaderMap::new();
            request.insert(IF_NONE_MATCH, list.parse().unwrap());
            let mut response = HeaderMap::new();
            response.insert(ETAG, tag.parse().unwrap());
            proptest::prop_assert!(client_has_current(&request, &response));
        }
    }
}
