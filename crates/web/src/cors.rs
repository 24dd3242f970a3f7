//! Cross-origin resource sharing as the Fetch standard has browsers check
//! it: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is
//! answered with what may follow, and an ordinary response says which
//! origin may read it. A file server only allows `GET` and `HEAD`.
//!
//! Credentials (Basic auth, cookies) go only to listed origins: Fetch
//! refuses `Access-Control-Allow-Credentials: true` beside the wildcard
//! origin, so `--cors` serves credential-less requests only, while a
//! listed origin is echoed with `Access-Control-Allow-Credentials: true`
//! on preflights and responses alike.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::pages;

/// How long a browser may reuse a preflight answer (Chromium caps it at
/// two hours).
const MAX_AGE: HeaderValue = HeaderValue::from_static("7200");

/// Response headers a page may read beyond the CORS-safelisted ones:
/// those a script needs for revalidation and ranges (a video or PDF
/// viewer reading a file in parts).
const EXPOSE: HeaderValue = HeaderValue::from_static("ETag, Content-Range, Accept-Ranges");

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any page may read the site (it holds nothing private).
    Any,
    /// Only these serialized origins (`https://app.example`), compared
    /// exactly as browsers send them.
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// The `Access-Control-Allow-Origin` value for a request from
    /// `origin`, or `None` when that origin is not allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            CorsOrigins::Any => Some(HeaderValue::from_static("*")),
            CorsOrigins::List(list) => list.contains(origin).then(|| origin.clone()),
        }
    }

    /// Says which origin may read the response, and with credentials
    /// when it was listed.
    fn grant(&self, origin: HeaderValue, out: &mut HeaderMap) {
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let CorsOrigins::List(_) = self {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Whether the request is a CORS preflight.
pub fn is_preflight<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(ORIGIN)
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: `204` with the allowed methods, the
/// requested headers and a max-age when the origin is allowed; `403`
/// without any CORS header (so the browser refuses) when it is not.
pub fn preflight<B>(origins: &CorsOrigins, request: &Request<B>) -> Response<Body> {
    let headers = request.headers();
    let allowed = headers.get(ORIGIN).and_then(|origin| origins.allow(origin));
    let mut response = match allowed {
        Some(origin) => {
            let mut response = Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .expect("valid parts");
            let out = response.headers_mut();
            origins.grant(origin, out);
            out.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD"),
            );
            // Any request header may be sent: they only select among
            // representations of public files.
            if let Some(asked) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
            out.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE);
            out.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            response
        }
        None => pages::error(
            StatusCode::FORBIDDEN,
            "This origin may not read this site's responses.",
        ),
    };
    // The answer depends on these request headers, so caches must key on them.
    response.headers_mut().append(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    response
}

/// Adds `Access-Control-Allow-Origin` to an ordinary response when the
/// request came from an allowed origin, and `Vary: Origin` whenever the
/// answer depends on the origin.
pub fn decorate(origins: &CorsOrigins, request: &HeaderMap, response: &mut HeaderMap) {
    if let CorsOrigins::List(_) = origins {
        // One Vary line: some clients read only the first.
        let vary = match response.get(VARY).map(HeaderValue::as_bytes) {
            Some(existing) => HeaderValue::from_bytes(&[existing, b", Origin"].concat())
                .unwrap_or(HeaderValue::from_static("Origin")),
            None => HeaderValue::from_static("Origin"),
        };
        response.insert(VARY, vary);
    }
    if let Some(origin) = request.get(ORIGIN).and_then(|origin| origins.allow(origin)) {
        origins.grant(origin, response);
        response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_request(origin: &str) -> Request<()> {
        Request::options("/data.json")
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(ACCESS_CONTROL_REQUEST_HEADERS, "x-token")
            .body(())
            .unwrap()
    }

    #[test]
    fn allowed_and_refused_preflights() {
        let origins = CorsOrigins::List(vec![HeaderValue::from_static("http://a.test")]);
        let request = preflight_request("http://a.test");
        assert!(is_preflight(&request));
        let ok = preflight(&origins, &request);
        assert_eq!(ok.status(), 204);
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "http://a.test");
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_HEADERS], "x-token");
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD");
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(ok.headers()[VARY].to_str().unwrap().contains("Origin"));
        let refused = preflight(&origins, &preflight_request("http://b.test"));
        assert_eq!(refused.status(), 403);
        assert!(!refused.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(
            !refused
                .headers()
                .contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
        let any = preflight(&CorsOrigins::Any, &preflight_request("http://b.test"));
        assert_eq!(any.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        // Fetch forbids credentials beside the wildcard.
        assert!(!any.headers().contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }

    #[test]
    fn responses_name_the_origin_and_what_it_may_read() {
        let origins = CorsOrigins::List(vec![HeaderValue::from_static("http://a.test")]);
        let mut request = HeaderMap::new();
        request.insert(ORIGIN, HeaderValue::from_static("http://a.test"));
        let mut response = HeaderMap::new();
        response.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        decorate(&origins, &request, &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "http://a.test");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(response[VARY], "Accept-Encoding, Origin");
        assert!(
            response[ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap()
                .contains("ETag")
        );

        let mut other = HeaderMap::new();
        other.insert(ORIGIN, HeaderValue::from_static("http://b.test"));
        let mut response = HeaderMap::new();
        decorate(&origins, &other, &mut response);
        assert_eq!(response.len(), 1, "only Vary: {response:?}");

        let mut response = HeaderMap::new();
        decorate(&CorsOrigins::Any, &other, &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(!response.contains_key(VARY));
    }

    #[test]
    fn a_plain_options_is_no_preflight() {
        let request = Request::options("/").body(()).unwrap();
        assert!(!is_preflight(&request));
    }
}
