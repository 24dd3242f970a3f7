//! Pages the proxy writes itself: errors that say what failed, in HTML for
//! browsers, and the JSON and HTML responses of the stats page.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{self, Body};

/// An error page for `status` explaining `detail` in one sentence.
pub fn error(status: StatusCode, detail: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let detail = escape(detail);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{code} {reason}</title></head>\n\
         <body><h1>{code} {reason}</h1>\n<p>{detail}</p>\n\
         <hr><address>netkit proxy</address></body></html>\n"
    );
    html_response(status, html)
}

pub fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(body::full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn json_response(status: StatusCode, json: String) -> Response<Body> {
    let mut response = Response::new(body::full(json));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Text from requests (host names, URLs) must not become markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn error_page_escapes_what_it_quotes() {
        let page = error(StatusCode::BAD_GATEWAY, "cannot resolve <script>x</script>");
        assert_eq!(page.status(), 502);
        let text = page.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert!(text.contains("<h1>502 Bad Gateway</h1>"));
        assert!(text.contains("&lt;script&gt;"));
        assert!(!text.contains("<script>"));
    }
}
