//! Small HTML bodies for error responses.

use http::{Response, StatusCode, header};

use crate::body::Body;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// An error response with a short page saying what went wrong; `detail`
/// is plain text and is escaped here.
pub fn error(status: StatusCode, detail: &str) -> Response<Body> {
    let html = error_html(status, detail);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_LENGTH, html.len())
        .body(Body::full(html))
        .expect("static parts are valid")
}

/// The page of an error response; `detail` is plain text and is escaped
/// here.
pub fn error_html(status: StatusCode, detail: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let detail = escape_html(detail);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{code} {reason}</title></head>\n\
         <body>\n<h1>{code} {reason}</h1>\n<p>{detail}</p>\n<hr>\n<address>netkit web</address>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn error_pages_name_the_status() {
        let response = error(StatusCode::NOT_FOUND, "no <such> file");
        assert_eq!(response.status(), 404);
        let Body::Full(Some(bytes)) = response.body() else {
            panic!("a full body")
        };
        let html = std::str::from_utf8(bytes).unwrap();
        assert!(html.contains("<title>404 Not Found</title>"));
        assert!(html.contains("no &lt;such&gt; file"));
    }
}
