//! Routing one request: to the proxy's own pages, to a CONNECT tunnel, to
//! the cache (GET and HEAD, by `hit` or `lookup`), or straight to the origin
//! for everything the cache only forwards. The answer is labelled and logged
//! by `exchange`.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_LOCATION, HOST, HeaderValue, LOCATION, RANGE};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::access::Hierarchy;
use crate::body::Body;
use crate::cache::Cache;
use crate::exchange::{Answer, Exchange, failure_page, from_origin, too_large};
use crate::headers::{add_via, our_hops, remove_hop_by_hop};
use crate::lookup::Lookup;
use crate::state::State;
use crate::target::Target;
use crate::{ForwardedFor, hit, origin, pages, purge, tunnel};

const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// netkit proxies a request may pass through; more means a loop.
const MAX_HOPS: usize = 5;

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
    exchange.log_as(target.url());
    if target.is_proxy_itself() {
        let page = own_page(&state, &target, request.method(), request.headers());
        return exchange.finish(&state, page, Answer::Bypass, Hierarchy::None);
    }
    let port = target.origin.port;
    if !state
        .config
        .safe_ports
        .iter()
        .any(|safe| safe.contains(&port))
    {
        let page = pages::error(
            StatusCode::FORBIDDEN,
            &format!("This proxy does not fetch plain HTTP from port {port} (see --safe-ports)."),
        );
        return exchange.finish(&state, page, Answer::Denied, Hierarchy::None);
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

    let cacheable = request.method() == Method::GET || request.method() == Method::HEAD;
    if cacheable && !request.headers().contains_key(RANGE) && hit::is_plain(request.headers()) {
        let head_only = request.method() == Method::HEAD;
        if let Some(response) = hit::fast_hit(&state, exchange.url(), request.headers(), head_only)
        {
            return exchange.finish(&state, response, Answer::Hit, Hierarchy::None);
        }
    }

    let (mut parts, incoming) = request.into_parts();
    prepare_request(&mut parts, &target, client, state.config.forwarded_for);
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

/// What the origin must see: the target in the request line, its own
/// `Host`, no hop-by-hop fields, our `Via`, and `X-Forwarded-For` as
/// configured.
fn prepare_request(parts: &mut Parts, target: &Target, client: IpAddr, mode: ForwardedFor) {
    parts.uri = target.uri();
    remove_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        HOST,
        HeaderValue::from_str(&target.origin.authority())
            .expect("a validated host is a header value"),
    );
    add_via(&mut parts.headers);
    forwarded_for(&mut parts.headers, client, mode);
}

/// Appends `client` to `X-Forwarded-For` as Squid does (one field: the
/// chain so far, then the client), or leaves or removes the field.
fn forwarded_for(headers: &mut HeaderMap, client: IpAddr, mode: ForwardedFor) {
    match mode {
        ForwardedFor::Transparent => {}
        ForwardedFor::Delete => {
            headers.remove(X_FORWARDED_FOR);
        }
        ForwardedFor::Append => {
            let mut chain: Vec<String> = headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            chain.push(client.to_canonical().to_string());
            let value = HeaderValue::from_str(&chain.join(", "))
                .expect("visible text and addresses are a header value");
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
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
