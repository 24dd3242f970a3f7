//! Headers a proxy must rewrite: hop-by-hop fields are removed in both
//! directions (RFC 9110 §7.6.1) and every message gains a `Via` entry.

use http::HeaderMap;
use http::header::{
    CONNECTION, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};

/// What this proxy adds to `Via` (RFC 9110 §7.6.3: protocol and pseudonym).
pub const VIA_ENTRY: &str = "1.1 netkit";

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

static FIXED_HOP_BY_HOP: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-authentication-info",
];

/// Removes `Connection`, every field it names, and the fixed hop-by-hop set.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in FIXED_HOP_BY_HOP {
        headers.remove(name);
    }
}

/// How many times a request has already passed through a netkit proxy.
pub fn our_hops(headers: &HeaderMap) -> usize {
    headers
        .get_all(VIA)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter(|entry| entry.trim() == VIA_ENTRY)
        .count()
}

/// Appends this proxy to the `Via` chain.
pub fn add_via(headers: &mut HeaderMap) {
    headers.append(VIA, HeaderValue::from_static(VIA_ENTRY));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_named_and_fixed_fields() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("content-type", "text/plain"),
            ("cache-control", "max-age=5"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["cache-control", "content-type"]);
    }

    proptest::proptest! {
        #[test]
        fn any_connection_header_is_handled(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.insert(CONNECTION, value);
            }
            headers.insert("x-kept", HeaderValue::from_static("1"));
            remove_hop_by_hop(&mut headers);
            proptest::prop_assert!(!headers.contains_key(CONNECTION));
            let _ = our_hops(&headers);
        }
    }

    #[test]
    fn via_chain() {
        let mut headers = HeaderMap::new();
        headers.insert(VIA, HeaderValue::from_static("1.0 fred, 1.1 p.example.net"));
        assert_eq!(our_hops(&headers), 0);
        add_via(&mut headers);
        add_via(&mut headers);
        assert_eq!(our_hops(&headers), 2);
        headers.remove(VIA);
        headers.insert(VIA, HeaderValue::from_static("1.0 fred, 1.1 p.example.net"));
        add_via(&mut headers);
        let chain: Vec<_> = headers.get_all(VIA).iter().collect();
        assert_eq!(chain, ["1.0 fred, 1.1 p.example.net", VIA_ENTRY]);
    }
}
