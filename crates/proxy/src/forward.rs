//! One request, from the client's head to the response: the proxy's own
//! pages, CONNECT, requests the cache may answer (GET and HEAD) and those it
//! only forwards. Every answer is logged once, when its body is done.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE, HOST, HeaderValue, LOCATION, RANGE,
};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector, HttpInfo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::access::{AccessRecord, CacheCode, Hierarchy};
use crate::body::{self, Body};
use crate::cache::Cache;
use crate::headers::{X_CACHE, add_via, our_hops, remove_hop_by_hop};
use crate::lookup::{self, Lookup};
use crate::origin::{self, Failure};
use crate::stats::{Counted, Stats};
use crate::target::Target;
use crate::{Config, pages, purge, tunnel};

/// netkit proxies a request may pass through; more means a loop.
const MAX_HOPS: usize = 5;

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    pub config: Config,
    pub cache: Cache,
    pub client: Client<HttpConnector, Body>,
    pub stats: Stats,
    pub access_log: mpsc::UnboundedSender<AccessRecord>,
    /// Cancelled when the server stops: ends CONNECT tunnels.
    pub shutdown: CancellationToken,
}

impl State {
    pub fn snapshot(&self) -> crate::Snapshot {
        self.stats
            .snapshot(self.cache.usage(), self.config.cache_size)
    }
}

/// How a request was answered: decides the `X-Cache` header, the access log
/// code and what the stats count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Hit,
    CollapsedHit,
    Revalidated,
    Refreshed,
    /// Revalidation answered with a 5xx, passed on.
    RefreshFailed,
    Miss,
    Bypass,
    Denied,
    Invalid,
    Tunnel,
}

impl Answer {
    fn code(self) -> CacheCode {
        match self {
            Answer::Hit => CacheCode::Hit,
            Answer::CollapsedHit => CacheCode::CollapsedHit,
            Answer::Revalidated => CacheCode::RefreshUnmodified,
            Answer::Refreshed => CacheCode::RefreshModified,
            Answer::RefreshFailed => CacheCode::RefreshFailed,
            Answer::Miss | Answer::Bypass => CacheCode::Miss,
            Answer::Denied => CacheCode::Denied,
            Answer::Invalid => CacheCode::None,
            Answer::Tunnel => CacheCode::Tunnel,
        }
    }

    fn x_cache(self) -> &'static str {
        match self {
            Answer::Hit | Answer::CollapsedHit => "HIT",
            Answer::Revalidated => "REVALIDATED",
            Answer::Refreshed | Answer::RefreshFailed | Answer::Miss => "MISS",
            Answer::Bypass | Answer::Denied | Answer::Invalid | Answer::Tunnel => "BYPASS",
        }
    }

    fn counted(self, body_len: u64) -> Counted {
        match self {
            Answer::Hit | Answer::CollapsedHit => Counted::Hit { bytes: body_len },
            Answer::Revalidated => Counted::Revalidation { bytes: body_len },
            Answer::Refreshed | Answer::RefreshFailed | Answer::Miss => Counted::Miss,
            Answer::Bypass | Answer::Invalid => Counted::Bypass,
            Answer::Denied => Counted::Denied,
            Answer::Tunnel => Counted::Tunnel,
        }
    }
}

/// The request as the access log records it.
#[derive(Debug, Clone)]
pub struct Exchange {
    started: Instant,
    client: IpAddr,
    method: Method,
    url: String,
}

impl Exchange {
    pub fn new<B>(client: IpAddr, request: &Request<B>) -> Exchange {
        Exchange {
            started: Instant::now(),
            client,
            method: request.method().clone(),
            url: request.uri().to_string(),
        }
    }

    /// The log line for a request whose response is not sent through
    /// `finish` (a tunnel, logged when it closes).
    pub fn record(
        &self,
        answer: Answer,
        status: u16,
        bytes: u64,
        hierarchy: Hierarchy,
    ) -> AccessRecord {
        AccessRecord {
            time: SystemTime::now(),
            elapsed: self.started.elapsed(),
            client: self.client,
            code: answer.code(),
            status,
            bytes,
            method: self.method.to_string(),
            url: self.url.clone(),
            hierarchy,
            content_type: None,
        }
    }

    /// Labels the response, counts it, and logs it once its body is done.
    pub fn finish(
        self,
        state: &State,
        mut response: Response<Body>,
        answer: Answer,
        hierarchy: Hierarchy,
    ) -> Response<Body> {
        let headers = response.headers_mut();
        add_via(headers);
        headers.insert(X_CACHE, HeaderValue::from_static(answer.x_cache()));
        // What the body will carry: a HEAD's `Content-Length` sends nothing.
        let body_len = match self.method {
            Method::HEAD => 0,
            _ => response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        state.stats.count(answer.counted(body_len));
        let head_bytes = head_size(&response);
        let record = AccessRecord {
            time: SystemTime::now(),
            elapsed: self.started.elapsed(),
            client: self.client,
            code: answer.code(),
            status: response.status().as_u16(),
            bytes: head_bytes,
            method: self.method.to_string(),
            url: self.url,
            hierarchy,
            content_type: response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let log = state.access_log.clone();
        let started = self.started;
        response.map(move |body| {
            body::Counted::new(body, move |sent| {
                let _ = log.send(AccessRecord {
                    time: SystemTime::now(),
                    elapsed: started.elapsed(),
                    bytes: record.bytes + sent,
                    ..record
                });
            })
            .boxed_unsync()
        })
    }
}

/// Bytes of the status line and headers as hyper writes them.
fn head_size(response: &Response<Body>) -> u64 {
    let headers: usize = response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (17 + headers + 2) as u64
}

/// The answer to a client outside `--allow`.
pub fn deny<B>(state: &State, client: IpAddr, request: &Request<B>) -> Response<Body> {
    let exchange = Exchange::new(client, request);
    let page = pages::error(
        StatusCode::FORBIDDEN,
        &format!("{client} is not allowed to use this proxy (see --allow)."),
    );
    exchange.finish(state, page, Answer::Denied, Hierarchy::None)
}

pub async fn handle(
    state: Arc<State>,
    client: IpAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let mut exchange = Exchange::new(client, &request);
    if request.method() == Method::CONNECT {
        return tunnel::open(state, exchange, request).await;
    }
    let target = match Target::parse(request.uri()) {
        Ok(target) => target,
        Err(err) => {
            let page = pages::error(StatusCode::BAD_REQUEST, &err.to_string());
            return exchange.finish(&state, page, Answer::Invalid, Hierarchy::None);
        }
    };
    exchange.url = target.url();
    if target.is_proxy_itself() {
        let page = own_page(&state, &target, request.method(), request.headers());
        return exchange.finish(&state, page, Answer::Bypass, Hierarchy::None);
    }
    if our_hops(request.headers()) >= MAX_HOPS {
        // A request that keeps coming back (the proxy asked to fetch from
        // itself) would otherwise recurse until the URL runs out.
        let page = pages::error(
            StatusCode::LOOP_DETECTED,
            "This request has passed through netkit proxies too many times: a forwarding loop.",
        );
        return exchange.finish(&state, page, Answer::Invalid, Hierarchy::None);
    }
    if request.method().as_str() == purge::PURGE {
        if !client.is_loopback() {
            // As Squid is usually set up (`http_access allow localhost
            // PURGE`): only the proxy's own host may drop entries.
            let page = pages::error(
                StatusCode::FORBIDDEN,
                "PURGE is accepted only from the proxy's own host.",
            );
            return exchange.finish(&state, page, Answer::Denied, Hierarchy::None);
        }
        let purged = state.cache.purge(&target.url());
        let status = if purged > 0 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let page = pages::json_response(status, format!("{{\"purged\": {purged}}}\n"));
        return exchange.finish(&state, page, Answer::Bypass, Hierarchy::None);
    }
    if declared_length(request.headers()).is_some_and(|len| len > state.config.max_body) {
        let page = too_large(&state);
        return exchange.finish(&state, page, Answer::Denied, Hierarchy::None);
    }

    let cacheable = (request.method() == Method::GET || request.method() == Method::HEAD)
        && !request.headers().contains_key(RANGE);
    if cacheable && lookup::is_plain(request.headers()) {
        let head_only = request.method() == Method::HEAD;
        if let Some(response) =
            lookup::fast_hit(&state, &exchange.url, request.headers(), head_only)
        {
            return exchange.finish(&state, response, Answer::Hit, Hierarchy::None);
        }
    }

    let (mut parts, incoming) = request.into_parts();
    prepare_request(&mut parts, &target);
    let body = limit_body(incoming, state.config.max_body);
    if cacheable {
        let lookup = Lookup::new(state.clone(), target, parts);
        return lookup.answer(exchange, body).await;
    }

    let unsafe_method = !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let request = Request::from_parts(parts, body);
    match origin::send(&state, request).await {
        Ok(response) => {
            if unsafe_method
                && (response.status().is_success() || response.status().is_redirection())
            {
                invalidate(&state.cache, &target, response.headers());
            }
            let (response, peer) = from_origin(&state, response);
            exchange.finish(&state, response, Answer::Bypass, peer)
        }
        Err(failure) => failure_page(&state, exchange, &target, failure),
    }
}

/// RFC 9111 §4.4: a successful unsafe request invalidates the target URL,
/// and the `Location` and `Content-Location` URLs on the same origin.
fn invalidate(cache: &Cache, target: &Target, response: &HeaderMap) {
    cache.purge(&target.url());
    for name in [LOCATION, CONTENT_LOCATION] {
        let Some(location) = response.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let url = if location.starts_with('/') && !location.starts_with("//") {
            Target {
                origin: target.origin.clone(),
                path_and_query: location.to_owned(),
            }
            .url()
        } else {
            match location.parse::<Uri>().map(|uri| Target::parse(&uri)) {
                Ok(Ok(other)) if other.origin == target.origin => other.url(),
                _ => continue,
            }
        };
        cache.purge(&url);
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn limit_body(incoming: Incoming, max: u64) -> Body {
    http_body_util::Limited::new(incoming, max as usize).boxed_unsync()
}

pub fn too_large(state: &State) -> Response<Body> {
    pages::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "The request body is larger than this proxy accepts ({} bytes, see --max-body).",
            state.config.max_body
        ),
    )
}

/// What the origin must see: the target in the request line, its own
/// `Host`, no hop-by-hop fields, and our `Via`.
fn prepare_request(parts: &mut Parts, target: &Target) {
    parts.uri = target.uri();
    remove_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        HOST,
        HeaderValue::from_str(&target.origin.authority())
            .expect("a validated host is a header value"),
    );
    add_via(&mut parts.headers);
}

/// An origin response ready to go to the client, and where it came from.
pub fn from_origin(state: &State, response: Response<Incoming>) -> (Response<Body>, Hierarchy) {
    let peer = peer_of(&response);
    let (mut parts, incoming) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    let body = body::Deadline::new(incoming, state.config.origin_timeout).boxed_unsync();
    (Response::from_parts(parts, body), peer)
}

pub fn peer_of<B>(response: &Response<B>) -> Hierarchy {
    match response.extensions().get::<HttpInfo>() {
        Some(info) => Hierarchy::Direct(info.remote_addr().ip().to_string()),
        None => Hierarchy::Direct("-".into()),
    }
}

/// The 502, 504 or 413 page for a request the origin did not answer.
pub fn failure_page(
    state: &State,
    exchange: Exchange,
    target: &Target,
    failure: Failure,
) -> Response<Body> {
    let page = match &failure {
        Failure::BodyTooLarge => too_large(state),
        other => pages::error(other.status(), &other.describe(&target.origin, state)),
    };
    let answer = match failure {
        Failure::BodyTooLarge => Answer::Denied,
        _ => Answer::Miss,
    };
    let peer = Hierarchy::Direct(target.origin.host.connect_name());
    exchange.finish(state, page, answer, peer)
}

/// `http://netkit.proxy/...`: the stats as JSON, or HTML for browsers.
fn own_page(
    state: &State,
    target: &Target,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let path = target.path_and_query.split('?').next().unwrap_or("/");
    if method != Method::GET && method != Method::HEAD {
        return pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The proxy's own pages are read-only.",
        );
    }
    match path {
        "/stats" | "/stats/" | "/" => {
            let snapshot = state.snapshot();
            let wants_html = headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("text/html"));
            if wants_html {
                pages::html_response(StatusCode::OK, snapshot.to_html())
            } else {
                pages::json_response(StatusCode::OK, snapshot.to_json())
            }
        }
        _ => pages::error(
            StatusCode::NOT_FOUND,
            "The proxy serves only http://netkit.proxy/stats itself.",
        ),
    }
}
