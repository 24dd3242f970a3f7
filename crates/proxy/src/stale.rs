//! When a stale response may be served (RFC 5861, RFC 9111 §4.2.4):
//! `stale-if-error` (a response or request directive, or the proxy's
//! `--stale-if-error` default) lets a stale response stand in when its
//! revalidation fails; `stale-while-revalidate` lets it go out at once while
//! it is refreshed in the background.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::CACHE_CONTROL;
use http_cache_semantics::CachePolicy;

use crate::cache::Meta;

/// The value of `directive=SECONDS` in `headers`' `Cache-Control`.
fn seconds(headers: &HeaderMap, directive: &str) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| item.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(directive))
        .and_then(|(_, value)| value.trim().trim_matches('"').parse().ok())
        .map(Duration::from_secs)
}

/// Whether the stored response forbids serving it stale at all: `no-cache`,
/// `must-revalidate`, `proxy-revalidate` or `s-maxage` (RFC 9111 §4.2.4).
fn forbidden(stored: &HeaderMap) -> bool {
    stored
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            item.split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .any(|name| {
            matches!(
                name.as_str(),
                "no-cache" | "must-revalidate" | "proxy-revalidate" | "s-maxage"
            )
        })
}

/// Whether `policy` has been stale for less than `window` at `now`: it was
/// fresh `window` ago.
fn stale_within(policy: &CachePolicy, now: SystemTime, window: Duration) -> bool {
    !window.is_zero()
        && now
            .checked_sub(window)
            .is_some_and(|then| policy.time_to_live(then) > Duration::ZERO)
}

/// Whether `meta` may answer `request` now that its revalidation failed.
pub fn if_error(meta: &Meta, request: &HeaderMap, default: Duration, now: SystemTime) -> bool {
    if forbidden(&meta.headers) {
        return false;
    }
    let window = [
        seconds(&meta.headers, "stale-if-error"),
        seconds(request, "stale-if-error"),
        Some(default),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or_default();
    stale_within(&meta.policy, now, window)
}

/// Whether `meta` may go out stale while it is refreshed.
pub fn while_revalidate(meta: &Meta, now: SystemTime) -> bool {
    let window = seconds(&meta.headers, "stale-while-revalidate").unwrap_or_default();
    !forbidden(&meta.headers) && stale_within(&meta.policy, now, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(cache_control: &'static str) -> Meta {
        let mut meta = crate::cache::sample("http://example.com/a", b"x");
        let request = http::Request::get("http://example.com/a").body(()).unwrap();
        let response = http::Response::builder()
            .header("cache-control", cache_control)
            .body(())
            .unwrap();
        let at = SystemTime::now() - Duration::from_secs(100);
        meta.policy = CachePolicy::new_options(
            &request,
            &response,
            at,
            http_cache_semantics::CacheOptions {
                shared: true,
                ..Default::default()
            },
        );
        meta.headers = response.headers().clone();
        meta
    }

    #[test]
    fn windows() {
        let now = SystemTime::now();
        let none = HeaderMap::new();
        // Stored 100 s ago, fresh for 10: stale for 90 s.
        let m = meta("max-age=10, stale-if-error=120, stale-while-revalidate=60");
        assert!(if_error(&m, &none, Duration::ZERO, now));
        assert!(!while_revalidate(&m, now), "stale for longer than 60 s");
        let m = meta("max-age=10, stale-while-revalidate=120");
        assert!(while_revalidate(&m, now));
        assert!(!if_error(&m, &none, Duration::ZERO, now));
        assert!(if_error(&m, &none, Duration::from_secs(95), now));
        let mut asked = HeaderMap::new();
        asked.insert(CACHE_CONTROL, "stale-if-error=300".parse().unwrap());
        assert!(if_error(&m, &asked, Duration::ZERO, now));
        let m = meta("max-age=10, must-revalidate, stale-if-error=1000");
        assert!(!if_error(&m, &asked, Duration::from_secs(1000), now));
    }
}
