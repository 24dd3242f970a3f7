//! Answering from a stored response: the head a hit sends (dated, and a
//! 304 when the client already holds the response), and the fast hit path
//! that skips the caching policy for plain requests to fresh entries.

use std::time::SystemTime;

use http::header::{AGE, CACHE_CONTROL, CONTENT_LENGTH, DATE, HeaderValue, PRAGMA, VARY};
use http::{HeaderMap, Response, StatusCode};

use crate::body::{self, Body};
use crate::cache::{Entry, HitTemplate, unix_seconds};
use crate::conditional::client_has_current;
use crate::state::State;

/// What a hit sends besides the body.
pub enum HitHead {
    WithBody(http::response::Parts),
    /// A HEAD, or a 304 for a client that already has this response.
    Bodiless(Response<Body>),
}

/// Dates the head and answers the client's own conditional request.
pub fn finish_hit_head(
    mut head: http::response::Parts,
    request: &HeaderMap,
    head_only: bool,
) -> HitHead {
    head.headers.insert(DATE, http_date(SystemTime::now()));
    if head.status == StatusCode::OK && client_has_current(request, &head.headers) {
        head.status = StatusCode::NOT_MODIFIED;
        head.headers.remove(CONTENT_LENGTH);
        return HitHead::Bodiless(Response::from_parts(head, body::empty()));
    }
    if head_only {
        return HitHead::Bodiless(Response::from_parts(head, body::empty()));
    }
    HitHead::WithBody(head)
}

/// The hit path without the caching policy: a plain GET or HEAD (no
/// `Cache-Control`, no `Pragma`) for an entry whose [`HitTemplate`] is still
/// fresh and whose body is in memory. Anything else returns `None` and
/// takes the full path.
pub fn fast_hit(
    state: &State,
    url: &str,
    request: &HeaderMap,
    head_only: bool,
) -> Option<Response<Body>> {
    let now = SystemTime::now();
    for candidate in state.cache.candidates(url) {
        let Some(template) = candidate.entry.template.get() else {
            continue;
        };
        if now >= template.fresh_until || (candidate.body.is_none() && !head_only) {
            continue;
        }
        let (mut head, ()) = Response::new(()).into_parts();
        head.status = template.status;
        head.headers = template.headers.clone();
        let age = now
            .duration_since(template.born)
            .unwrap_or_default()
            .as_secs();
        head.headers.insert(AGE, HeaderValue::from(age));
        return Some(match finish_hit_head(head, request, head_only) {
            HitHead::Bodiless(response) => response,
            HitHead::WithBody(head) => {
                let bytes = candidate.body.expect("checked above");
                Response::from_parts(head, body::full(bytes))
            }
        });
    }
    None
}

/// Whether a request leaves freshness entirely to the cache.
pub fn is_plain(request: &HeaderMap) -> bool {
    !request.contains_key(CACHE_CONTROL) && !request.contains_key(PRAGMA)
}

/// Remembers what a fresh hit for a plain request sends, for [`fast_hit`].
pub fn remember_template(entry: &Entry, head: &http::response::Parts, now: SystemTime) {
    if head.headers.contains_key(VARY) {
        return;
    }
    entry.template.get_or_init(|| {
        let policy = &entry.meta.policy;
        let mut headers = head.headers.clone();
        headers.remove(AGE);
        headers.remove(DATE);
        HitTemplate {
            status: head.status,
            headers,
            fresh_until: now + policy.time_to_live(now),
            born: now.checked_sub(policy.age(now)).unwrap_or(now),
        }
    });
}

/// `Date` for now, formatted once per second per thread: a hit path
/// formatting dates would spend more time on them than on the response.
fn http_date(now: SystemTime) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, HeaderValue)> =
            const { std::cell::RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let second = unix_seconds(now);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != second {
            let text = httpdate::fmt_http_date(now);
            *last = (
                second,
                HeaderValue::from_str(&text).expect("an HTTP date is a header value"),
            );
        }
        last.1.clone()
    })
}
