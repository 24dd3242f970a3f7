//! What `web get` shows: heads as curl's `-i` prints them, the `-v`
//! transcript (credentials masked), and progress bars.

use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Version};
use indicatif::{ProgressBar, ProgressStyle};
use web::Event;

pub fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The status line and headers as curl's `-i` prints them.
pub fn head_text(version: Version, status: http::StatusCode, headers: &HeaderMap) -> String {
    let mut text = format!("{} {}", version_text(version), status.as_u16());
    if let Some(reason) = status
        .canonical_reason()
        .filter(|_| version != Version::HTTP_2)
    {
        text.push(' ');
        text.push_str(reason);
    }
    text.push_str("\r\n");
    for (name, value) in headers {
        text.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str("\r\n");
    text
}

/// A header's value as transcripts show it: credentials keep their scheme
/// and lose the rest (`Authorization: Basic ****`).
pub fn shown_value(name: &HeaderName, value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    if name == AUTHORIZATION || name == PROXY_AUTHORIZATION {
        match text.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} ****"),
            None => "****".to_owned(),
        }
    } else {
        text.into_owned()
    }
}

/// One event as `-v` shows it: `*` for the connection, `>` for what was
/// sent, `<` for what came back.
pub fn transcript(event: &Event) -> String {
    match event {
        Event::Resolved { host, addrs } => {
            let addrs: Vec<String> = addrs.iter().map(|addr| addr.ip().to_string()).collect();
            format!("* Host {host} was resolved: {}\n", addrs.join(", "))
        }
        Event::Connecting { addr } => format!("*   Trying {addr}...\n"),
        Event::Connected { addr } => format!("* Connected to {addr}\n"),
        Event::Reused { authority } => {
            format!("* Re-using existing connection with host {authority}\n")
        }
        Event::Tls { description, alpn } => format!(
            "* TLS session: {description}, ALPN: {}\n",
            alpn.as_deref().unwrap_or("none")
        ),
        Event::Request(head) => {
            let mut text = format!(
                "> {} {} {}\n",
                head.method,
                head.target,
                version_text(head.version)
            );
            for (name, value) in &head.headers {
                text.push_str(&format!("> {name}: {}\n", shown_value(name, value)));
            }
            text.push_str(">\n");
            text
        }
        Event::Response(head) => {
            let lines = head_text(head.version, head.status, &head.headers);
            let mut text = String::new();
            for line in lines.trim_end_matches("\r\n").split("\r\n") {
                text.push_str("< ");
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("<\n");
            text
        }
        Event::Redirect { location } => format!("* Following the redirect to {location}\n"),
    }
}

pub fn progress_bar(length: Option<u64>) -> ProgressBar {
    match length {
        Some(length) => {
            let bar = ProgressBar::new(length);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar
        }
        None => {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                    .expect("valid template"),
            );
            spinner
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_look_like_curl() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("5"));
        assert_eq!(
            head_text(Version::HTTP_11, http::StatusCode::OK, &headers),
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
        );
        assert!(
            head_text(Version::HTTP_2, http::StatusCode::OK, &headers)
                .starts_with("HTTP/2 200\r\n")
        );
    }

    #[test]
    fn credentials_are_masked() {
        let basic = HeaderValue::from_static("Basic dXNlcjpodW50ZXIy");
        assert_eq!(shown_value(&AUTHORIZATION, &basic), "Basic ****");
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(shown_value(&PROXY_AUTHORIZATION, &bearer), "Bearer ****");
        let other = HeaderValue::from_static("text/html");
        assert_eq!(shown_value(&http::header::ACCEPT, &other), "text/html");
    }
}
