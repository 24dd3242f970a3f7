//! The vocabulary of one exchange between a client and the proxy: how a
//! request was answered ([`Answer`]), the record that labels, counts and
//! logs its response ([`Exchange`]), and the responses every path shares:
//! an origin's response made ready for the client, and the page for an
//! origin that did not answer.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpInfo;

use crate::access::{AccessRecord, CacheCode, Hierarchy};
use crate::body::{self, Body};
use crate::headers::{X_CACHE, add_via, remove_hop_by_hop};
use crate::origin::Failure;
use crate::pages;
use crate::state::State;
use crate::stats::Counted;
use crate::target::Target;

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
    /// Revalidation failed; the stale copy stood in (stale-if-error).
    StaleIfError,
    /// The stale copy went out while it is refreshed
    /// (stale-while-revalidate).
    StaleWhileRevalidate,
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
            Answer::StaleIfError => CacheCode::RefreshFailedOld,
            Answer::StaleWhileRevalidate => CacheCode::StaleHit,
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
            Answer::StaleIfError | Answer::StaleWhileRevalidate => "STALE",
            Answer::Refreshed | Answer::RefreshFailed | Answer::Miss => "MISS",
            Answer::Bypass | Answer::Denied | Answer::Invalid | Answer::Tunnel => "BYPASS",
        }
    }

    fn counted(self, body_len: u64) -> Counted {
        match self {
            Answer::Hit
            | Answer::CollapsedHit
            | Answer::StaleIfError
            | Answer::StaleWhileRevalidate => Counted::Hit { bytes: body_len },
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

    /// The URL the request is logged under.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Logs the request under `url` (the target as the cache keys it)
    /// rather than the request-target as it came.
    pub fn log_as(&mut self, url: String) {
        self.url = url;
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
        // The proxy speaks HTTP/1.1 to its clients whatever the origin
        // speaks (hyper still answers an HTTP/1.0 client in HTTP/1.0).
        *response.version_mut() = Version::HTTP_11;
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

/// The 413 page for a request body over `--max-body`.
pub fn too_large(state: &State) -> Response<Body> {
    pages::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "The request body is larger than this proxy accepts ({} bytes, see --max-body).",
            state.config.max_body
        ),
    )
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
        Failure::BodyTooLarge | Failure::OwnHost => Answer::Denied,
        _ => Answer::Miss,
    };
    let peer = Hierarchy::Direct(target.origin.host.connect_name());
    exchange.finish(state, page, answer, peer)
}
