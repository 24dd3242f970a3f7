//! GET and HEAD: answered from the cache when a stored response is fresh,
//! revalidated with the origin when it is stale, fetched (once, however many
//! clients ask at the same time) when there is none.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, ETAG, LAST_MODIFIED, RANGE, SET_COOKIE, VARY};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy, RequestLike};
use hyper::body::Incoming;
use tracing::warn;

use crate::access::Hierarchy;
use crate::body::{self, Body, Tee};
use crate::cache::{
    BodyError, Candidate, Entry, Joined, Leader, Meta, Outcome, VariantId, follow, unix_seconds,
};
use crate::exchange::{Answer, Exchange, failure_page, from_origin, peer_of};
use crate::fill::{self, Plan};
use crate::headers::remove_hop_by_hop;
use crate::hit::{HitHead, finish_hit_head, is_plain, remember_template};
use crate::range::{self, Selected};
use crate::stale;
use crate::state::State;
use crate::stored::{asks_about, hit_head, updated_fields, validating_view, with_validators};
use crate::target::Target;
use crate::{origin, pages};

/// The request as the cache compares it with stored ones: the absolute URL,
/// GET (a HEAD is answered from a stored GET), and the headers the origin
/// would see.
#[derive(Debug, Clone)]
pub struct CacheRequest {
    uri: Uri,
    method: Method,
    headers: HeaderMap,
}

impl RequestLike for CacheRequest {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }

    fn is_same_uri(&self, other: &Uri) -> bool {
        &self.uri == other
    }

    fn method(&self) -> &Method {
        &self.method
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

pub fn policy_options() -> CacheOptions {
    CacheOptions {
        shared: true,
        ..CacheOptions::default()
    }
}

#[derive(Debug)]
pub struct Lookup {
    state: Arc<State>,
    target: Target,
    url: String,
    parts: Parts,
    key: CacheRequest,
}

impl Lookup {
    /// `parts` is the request as prepared for the origin.
    pub fn new(state: Arc<State>, target: Target, parts: Parts) -> Lookup {
        let key = CacheRequest {
            uri: parts.uri.clone(),
            method: Method::GET,
            headers: parts.headers.clone(),
        };
        Lookup {
            state,
            url: target.url(),
            target,
            parts,
            key,
        }
    }

    fn is_head(&self) -> bool {
        self.parts.method == Method::HEAD
    }

    fn is_ranged(&self) -> bool {
        self.parts.method == Method::GET && self.parts.headers.contains_key(RANGE)
    }

    /// Whether this request selects the stored variant `meta` (RFC 9111
    /// §4.1): its values of the fields the response's `Vary` names, every
    /// line of each, are those the variant was stored under. (The policy
    /// compares only the first line of each.)
    fn selects(&self, meta: &Meta) -> bool {
        selected_headers(&meta.headers, &self.key.headers)
            .is_some_and(|vary| VariantId::new(&self.url, &vary) == meta.id)
    }

    pub async fn answer(self, exchange: Exchange, body: Body) -> Response<Body> {
        let mut followed = false;
        let mut collapsed = false;
        let mut leading = None;
        let (stale, leader) = loop {
            let now = SystemTime::now();
            let mut stale = None;
            for candidate in self.state.cache.candidates(&self.url) {
                if !self.selects(&candidate.entry.meta) {
                    continue;
                }
                match candidate.entry.meta.policy.before_request(&self.key, now) {
                    BeforeRequest::Fresh(policy_head) => {
                        let head = hit_head(&candidate.entry.meta, policy_head.status, now);
                        if is_plain(&self.parts.headers) {
                            remember_template(&candidate.entry, &head, now);
                        }
                        if let Some(response) = self.serve(&candidate, head).await {
                            let answer = if collapsed {
                                Answer::CollapsedHit
                            } else {
                                Answer::Hit
                            };
                            return exchange.finish(&self.state, response, answer, Hierarchy::None);
                        }
                    }
                    BeforeRequest::Stale {
                        request,
                        matches: true,
                    } if stale.is_none() => stale = Some((candidate, request)),
                    BeforeRequest::Stale { .. } => {}
                }
            }
            if only_if_cached(&self.parts.headers) {
                // RFC 9111 §5.2.1.7: the client wants no origin contact.
                let page = pages::error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "The request allows only a cached response (only-if-cached), and the cache holds none it may use.",
                );
                return exchange.finish(&self.state, page, Answer::Miss, Hierarchy::None);
            }
            if self.is_ranged() {
                // A part of a response the cache cannot serve comes from
                // the origin as it is; a full response there still fills
                // the cache.
                break (None, None);
            }
            if let Some((candidate, _)) = &stale
                && !self.is_head()
                && stale::while_revalidate(&candidate.entry.meta, now)
            {
                let (candidate, revalidation) = stale.take().expect("checked above");
                return self
                    .serve_while_revalidating(exchange, candidate, revalidation, leading)
                    .await;
            }
            if self.is_head() || followed || leading.is_some() {
                break (stale, leading);
            }
            match self.state.cache.flights.join(&self.url) {
                // Look once more before going out: a flight that landed
                // between the look above and joining may have stored it.
                Joined::Leader(leader) => leading = Some(leader),
                Joined::Follower(waiting) => {
                    let wait = self.state.config.origin_timeout;
                    let outcome = tokio::time::timeout(wait, follow(waiting)).await;
                    followed = true;
                    collapsed = matches!(outcome, Ok(Some(Outcome::Stored)));
                }
            }
        };
        match stale {
            Some((candidate, request)) if !self.is_head() => {
                self.revalidate(exchange, candidate, request, leader).await
            }
            _ => self.fetch(exchange, body, leader, Answer::Miss).await,
        }
    }

    /// The stored response with the head `head` (from [`hit_head`]), or
    /// `None` when its body turned out damaged (the entry is then dropped).
    /// A `Range` the stored response can serve gets its part.
    async fn serve(
        &self,
        candidate: &Candidate,
        head: http::response::Parts,
    ) -> Option<Response<Body>> {
        let meta = &candidate.entry.meta;
        let mut head = match finish_hit_head(head, &self.parts.headers, self.is_head()) {
            HitHead::WithBody(head) => head,
            HitHead::Bodiless(response) => return Some(response),
        };
        let selected = match head.status {
            StatusCode::OK => range::select(&self.parts.headers, &head.headers, meta.body_len),
            _ => Selected::Whole,
        };
        range::mark(&mut head, selected, meta.body_len);
        let part = match selected {
            Selected::Whole => None,
            Selected::Part { first, last } => Some((first, last)),
            Selected::Unsatisfiable => return Some(Response::from_parts(head, body::empty())),
        };
        let body = match &candidate.body {
            Some(bytes) => body::full(match part {
                Some((first, last)) => bytes.slice(first as usize..=last as usize),
                None => bytes.clone(),
            }),
            None => match self.read_body(meta, part).await {
                Ok(body) => body,
                Err(err) => {
                    warn!(url = %meta.url, %err, "damaged cache entry: removed, fetching again");
                    self.state.cache.remove(meta.id, meta.body_hash);
                    return None;
                }
            },
        };
        Some(Response::from_parts(head, body))
    }

    /// The stored body from disk, or its bytes `part` (first, last).
    async fn read_body(&self, meta: &Meta, part: Option<(u64, u64)>) -> Result<Body, BodyError> {
        let disk = self.state.cache.disk().clone();
        let small = meta.body_len <= self.state.cache.limits().memory_object;
        let owned = meta.clone();
        if small {
            let bytes: Bytes = tokio::task::spawn_blocking(move || disk.read_body(&owned))
                .await
                .expect("reading a body does not panic")?;
            self.state.cache.remember(meta.id, bytes.clone());
            Ok(body::full(match part {
                Some((first, last)) => bytes.slice(first as usize..=last as usize),
                None => bytes,
            }))
        } else {
            let file = tokio::task::spawn_blocking(move || disk.open_checked_body(&owned))
                .await
                .expect("reading a body does not panic")?;
            match part {
                Some((first, last)) => Ok(body::file_part(file, first, last - first + 1)?),
                None => Ok(body::file(file)),
            }
        }
    }

    /// The stale `candidate` now, and one refresh of it in the background
    /// (by whoever leads the URL's flight: `leading`, or this request if no
    /// other is fetching it).
    async fn serve_while_revalidating(
        &self,
        exchange: Exchange,
        candidate: Candidate,
        revalidation: Parts,
        leading: Option<Leader>,
    ) -> Response<Body> {
        let leader = leading.or_else(|| match self.state.cache.flights.join(&self.url) {
            // A refresh that landed between the look and joining leaves
            // nothing to do.
            Joined::Leader(leader) if !self.fresh_again() => Some(leader),
            Joined::Leader(_) | Joined::Follower(_) => None,
        });
        if let Some(leader) = leader {
            let refresh = self.again();
            let refreshing = exchange.clone();
            let stored = candidate.clone();
            tokio::spawn(async move {
                let response = refresh
                    .revalidate(refreshing, stored, revalidation, Some(leader))
                    .await;
                // A new body reaches the cache only as it is read.
                let _ = response.into_body().collect().await;
            });
        }
        self.serve_stale(exchange, &candidate, Answer::StaleWhileRevalidate)
            .await
    }

    /// Whether the cache now holds a fresh response for this request.
    fn fresh_again(&self) -> bool {
        let now = SystemTime::now();
        self.state
            .cache
            .candidates(&self.url)
            .iter()
            .any(|candidate| {
                self.selects(&candidate.entry.meta)
                    && candidate.entry.meta.policy.time_to_live(now) > Duration::ZERO
            })
    }

    /// The stored response, stale: for stale-if-error and
    /// stale-while-revalidate.
    async fn serve_stale(
        &self,
        exchange: Exchange,
        candidate: &Candidate,
        answer: Answer,
    ) -> Response<Body> {
        let meta = &candidate.entry.meta;
        let head = hit_head(meta, meta.status, SystemTime::now());
        match self.serve(candidate, head).await {
            Some(response) => exchange.finish(&self.state, response, answer, Hierarchy::None),
            None => {
                self.fetch(exchange, body::empty(), None, Answer::Miss)
                    .await
            }
        }
    }

    /// Whether the stale `candidate` may stand in for a failed revalidation.
    fn may_stand_in(&self, candidate: &Candidate) -> bool {
        stale::if_error(
            &candidate.entry.meta,
            &self.parts.headers,
            self.state.config.stale_if_error,
            SystemTime::now(),
        )
    }

    /// This lookup again, for a task of its own.
    fn again(&self) -> Lookup {
        let mut request = Request::new(());
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        *request.version_mut() = self.parts.version;
        *request.headers_mut() = self.parts.headers.clone();
        Lookup::new(
            self.state.clone(),
            self.target.clone(),
            request.into_parts().0,
        )
    }

    fn origin_request(&self, headers: HeaderMap, body: Body) -> Request<Body> {
        let mut request = Request::new(body);
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        *request.headers_mut() = headers;
        request
    }

    async fn fetch(
        &self,
        exchange: Exchange,
        body: Body,
        leader: Option<Leader>,
        answer: Answer,
    ) -> Response<Body> {
        let request = self.origin_request(self.parts.headers.clone(), body);
        match origin::send(&self.state, request).await {
            Ok(response) => self.relay(exchange, response, leader, answer),
            Err(failure) => failure_page(&self.state, exchange, &self.target, failure),
        }
    }

    /// Sends the client's request with the validators the policy chose
    /// (`revalidation`); a 304 refreshes the stored entry and serves it.
    async fn revalidate(
        &self,
        exchange: Exchange,
        candidate: Candidate,
        revalidation: Parts,
        leader: Option<Leader>,
    ) -> Response<Body> {
        let headers = with_validators(&self.parts.headers, &revalidation.headers);
        let asked_ours = asks_about(&headers, &candidate.entry.meta.headers);
        let request = self.origin_request(headers, body::empty());
        let response = match origin::send(&self.state, request).await {
            Ok(response) => response,
            Err(_) if self.may_stand_in(&candidate) => {
                return self
                    .serve_stale(exchange, &candidate, Answer::StaleIfError)
                    .await;
            }
            Err(failure) => return failure_page(&self.state, exchange, &self.target, failure),
        };
        if response.status().is_server_error() && self.may_stand_in(&candidate) {
            drop(response);
            return self
                .serve_stale(exchange, &candidate, Answer::StaleIfError)
                .await;
        }
        if response.status().is_server_error() {
            // The origin failed to revalidate: its error goes to the client,
            // and the stored copy stays for when it is back.
            return self.relay(exchange, response, leader, Answer::RefreshFailed);
        }
        if response.status() != StatusCode::NOT_MODIFIED {
            return self.relay(exchange, response, leader, Answer::Refreshed);
        }
        let now = SystemTime::now();
        let old = &candidate.entry.meta;
        let answered = validating_view(&response, &old.headers, asked_ours);
        let status = match old.policy.after_response(&self.key, &answered, now) {
            AfterResponse::NotModified(_, head) => head.status,
            // The 304 names another representation than the one we asked
            // about: it validates nothing we hold, and a 304 is not an answer
            // for a client that asked for the response itself.
            AfterResponse::Modified(..) => {
                drop(response);
                return self
                    .fetch(exchange, body::empty(), leader, Answer::Refreshed)
                    .await;
            }
        };
        let peer = peer_of(&response);
        let mut update = response.headers().clone();
        remove_hop_by_hop(&mut update);
        let headers = updated_fields(&old.headers, &update);
        let mut stored = Response::new(());
        *stored.status_mut() = status;
        *stored.headers_mut() = headers;
        let policy = CachePolicy::new_options(&self.key, &stored, now, policy_options());
        let meta = Meta {
            policy,
            headers: stored.into_parts().0.headers,
            stored_at: unix_seconds(now),
            ..old.clone()
        };
        let head = hit_head(&meta, status, now);
        let storable = meta.policy.is_storable();
        if storable {
            self.store_refreshed(meta, candidate.body.clone()).await;
        }
        if let Some(leader) = leader {
            leader.finish(Outcome::Stored);
        }
        let response = self.serve(&candidate, head).await;
        if !storable {
            // The 304 forbids keeping what it validated.
            self.state.cache.remove(old.id, old.body_hash);
        }
        match response {
            Some(response) => exchange.finish(&self.state, response, Answer::Revalidated, peer),
            None => {
                self.fetch(exchange, body::empty(), None, Answer::Miss)
                    .await
            }
        }
    }

    /// Writes the refreshed metadata and indexes the entry anew.
    async fn store_refreshed(&self, meta: Meta, body: Option<Bytes>) {
        let disk = self.state.cache.disk().clone();
        let written = {
            let meta = meta.clone();
            tokio::task::spawn_blocking(move || disk.commit(&meta, None))
                .await
                .expect("writing metadata does not panic")
        };
        match written {
            Ok(size) => self.state.cache.insert(Entry::new(meta, size), body),
            Err(err) => warn!(url = %self.url, %err, "cannot store refreshed cache metadata"),
        }
    }

    /// Passes an origin response on, storing a copy when it may be stored.
    fn relay(
        &self,
        exchange: Exchange,
        response: Response<Incoming>,
        leader: Option<Leader>,
        answer: Answer,
    ) -> Response<Body> {
        let (response, peer) = from_origin(&self.state, response);
        let response = match self.plan(&response) {
            Some(plan) => {
                let copy = fill::start(self.state.clone(), plan, leader);
                response.map(|body| Tee::new(body, copy).boxed_unsync())
            }
            None => {
                if let Some(leader) = leader {
                    leader.finish(Outcome::Uncacheable);
                }
                if answer == Answer::Refreshed {
                    // The origin no longer allows what we hold.
                    self.state.cache.purge(&self.url);
                }
                response
            }
        };
        exchange.finish(&self.state, response, answer, peer)
    }

    /// Whether and how to store `response`: storable by RFC 9111 (as
    /// http-cache-semantics judges it for a shared cache), reusable (fresh
    /// for a while, or revalidatable), and within --max-object-size.
    fn plan(&self, response: &Response<Body>) -> Option<Plan> {
        if self.parts.method != Method::GET || response.status() == StatusCode::PARTIAL_CONTENT {
            return None;
        }
        let now = SystemTime::now();
        let policy = CachePolicy::new_options(&self.key, response, now, policy_options());
        if !policy.is_storable() {
            return None;
        }
        let headers = response.headers();
        // A cookie set for one user must not be handed to the next (Varnish's
        // built-in rule): such responses pass through unstored.
        if headers.contains_key(SET_COOKIE) {
            return None;
        }
        let revalidatable = headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED);
        if policy.time_to_live(now) == Duration::ZERO && !revalidatable {
            return None;
        }
        let expected_len = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if expected_len.is_some_and(|len| len > self.state.cache.limits().object) {
            return None;
        }
        let vary = selected_headers(headers, &self.key.headers)?;
        Some(Plan {
            id: VariantId::new(&self.url, &vary),
            url: self.url.clone(),
            policy,
            status: response.status(),
            headers: headers.clone(),
            expected_len,
        })
    }
}

/// Whether the request carries `Cache-Control: only-if-cached`.
fn only_if_cached(request: &HeaderMap) -> bool {
    request
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("only-if-cached"))
}

/// The request header values a response's `Vary` selects, in the order it
/// names them; `None` for `Vary: *` (never reusable).
fn selected_headers(response: &HeaderMap, request: &HeaderMap) -> Option<Vec<(String, Vec<u8>)>> {
    let mut selected = Vec::new();
    for name in response
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
    {
        if name == "*" {
            return None;
        }
        let mut value = Vec::new();
        for (i, part) in request.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(part.as_bytes());
        }
        selected.push((name, value));
    }
    Some(selected)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn vary_selects_request_headers() {
        let mut response = HeaderMap::new();
        response.insert(
            VARY,
            HeaderValue::from_static("Accept-Encoding, Accept-Language"),
        );
        let mut request = HeaderMap::new();
        request.insert("accept-encoding", HeaderValue::from_static("gzip"));
        let selected = selected_headers(&response, &request).unwrap();
        assert_eq!(
            selected,
            vec![
                ("accept-encoding".to_owned(), b"gzip".to_vec()),
                ("accept-language".to_owned(), Vec::new()),
            ]
        );
        response.insert(VARY, HeaderValue::from_static("*"));
        assert_eq!(selected_headers(&response, &request), None);
        assert_eq!(
            selected_headers(&HeaderMap::new(), &request),
            Some(Vec::new())
        );
    }

    proptest::proptest! {
        #[test]
        fn any_vary_value_selects_without_panic(
            vary in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut response = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&vary) {
                response.insert(VARY, value);
            }
            let _ = selected_headers(&response, &HeaderMap::new());
        }
    }
}
