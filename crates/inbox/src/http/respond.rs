//! Building responses: bodies, content types, the security headers every
//! response carries, and the checks a request that changes something
//! must pass.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use crate::InboxError;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body read (a JSON list of IDs, a form).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// The inbox's own pages: only their own script, style and frames.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Anything that came in a message (a part, the raw source): never a
/// document that runs anything, whatever its type says.
pub const MESSAGE_CONTENT_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn with_type(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

pub fn json<T: Serialize>(value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("API values serialize");
    with_type(StatusCode::OK, "application/json", body)
}

pub fn page(status: StatusCode, html: String) -> Response<Body> {
    let mut response = with_type(status, "text/html; charset=utf-8", html);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

/// A JSON error for the API, plain text elsewhere.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "Error": message }).to_string();
    with_type(status, "application/json", body)
}

pub fn inbox_error(err: &InboxError) -> Response<Body> {
    match err {
        InboxError::NotFound(_) => error(StatusCode::NOT_FOUND, &err.to_string()),
        InboxError::Search(_) => error(StatusCode::BAD_REQUEST, &err.to_string()),
        _ => {
            tracing::warn!(%err, "inbox request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the inbox failed; see the server's log",
            )
        }
    }
}

/// 303 to `location` (after a form's POST).
pub fn see_other(location: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Headers every response carries.
pub fn secure(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(MESSAGE_CONTENT_POLICY));
}

/// Whether a request may change the inbox: GET and HEAD always; others
/// only from the inbox's own pages or from tools that are not browsers
/// (a browser says where a request comes from; curl says nothing).
pub fn same_origin<B>(request: &Request<B>) -> bool {
    if matches!(*request.method(), http::Method::GET | http::Method::HEAD) {
        return true;
    }
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .is_some_and(|(_, origin_host)| origin_host.as_bytes() == host.as_bytes()),
        (Some(_), None) => false,
    }
}

/// The query string's parameters (the last of a repeated name wins).
pub fn query<B>(request: &Request<B>) -> HashMap<String, String> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The request body, up to `MAX_REQUEST_BODY`.
pub async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(request.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or cut short",
        )),
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one component of a URL path or query.
pub fn component(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_the_inbox_itself_changes_things() {
        assert!(same_origin(&request(
            "GET",
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(same_origin(&request("DELETE", &[])));
        assert!(same_origin(&request(
            "POST",
            &[("sec-fetch-site", "same-origin")]
        )));
        assert!(!same_origin(&request(
            "POST",
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(!same_origin(&request(
            "POST",
            &[("sec-fetch-site", "same-site")]
        )));
        assert!(same_origin(&request(
            "POST",
            &[
                ("origin", "http://127.0.0.1:8025"),
                ("host", "127.0.0.1:8025")
            ]
        )));
        assert!(!same_origin(&request(
            "POST",
            &[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8025")
            ]
        )));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
