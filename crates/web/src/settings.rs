//! A site's settings beyond its files: extra response headers, a
//! Cache-Control policy, CORS and Basic auth. With none set (the
//! default) a request goes straight to `respond` and costs nothing more.

use std::net::IpAddr;

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, ETAG, HOST, LAST_MODIFIED, LOCATION,
};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use crate::basic_auth::{BasicAuth, Gate};
use crate::body::Body;
use crate::cors::{self, CorsOrigins};
use crate::files::Site;
use crate::pages;
use crate::path_rules::{self, PathRule};
use crate::respond;

#[derive(Debug, Clone, Default)]
pub struct SiteSettings {
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Cache-Control` of successful and not-modified responses.
    pub cache_control: Option<HeaderValue>,
    /// Headers and Cache-Control per path pattern, winning over the two
    /// above; checked with `path_rules::check`.
    pub rules: Vec<PathRule>,
    pub cors: Option<CorsOrigins>,
    pub auth: Option<BasicAuth>,
    /// A single-page app: unknown paths without a file extension get
    /// `/index.html` with 200.
    pub spa: bool,
    /// Unknown paths get this file (a URL path under the root) with 200.
    pub fallback: Option<String>,
    /// Error statuses answered with a file of the site (URL path), with
    /// the status kept.
    pub error_pages: Vec<(StatusCode, String)>,
    /// Answer every request with a permanent redirect to HTTPS on this
    /// port (for the cleartext listeners of a site that has TLS ones).
    pub redirect_to_https: Option<u16>,
}

/// A `Name: value` header as given on the command line, checked.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} has characters a header cannot hold"))?;
    Ok((name, value))
}

/// What happens to a request before its response is made.
#[derive(Debug)]
pub enum Admission {
    /// Serve it with `answer`.
    Serve,
    /// Send this instead (a CORS preflight, a challenge, a throttle).
    Answer(Response<Body>),
    /// Serve it once the credentials are checked.
    Check(CredentialCheck),
}

impl SiteSettings {
    /// Whether any setting needs work per request.
    fn is_plain(&self) -> bool {
        self.headers.is_empty()
            && self.cache_control.is_none()
            && self.rules.is_empty()
            && self.cors.is_none()
            && self.auth.is_none()
            && !self.spa
            && self.fallback.is_none()
            && self.error_pages.is_empty()
            && self.redirect_to_https.is_none()
    }

    pub fn admit<B>(&self, request: &Request<B>, client: IpAddr) -> Admission {
        if let Some(port) = self.redirect_to_https {
            let mut response = to_https(request, port);
            self.add_headers(request, &mut response);
            return Admission::Answer(response);
        }
        if let Some(origins) = &self.cors {
            // Browsers never send credentials with a preflight.
            if cors::is_preflight(request) {
                let mut response = cors::preflight(origins, request);
                self.add_headers(request, &mut response);
                return Admission::Answer(response);
            }
        }
        let Some(auth) = &self.auth else {
            return Admission::Serve;
        };
        match auth.gate(request, client) {
            Gate::Verify { user, password } => Admission::Check(CredentialCheck {
                auth: auth.clone(),
                client,
                user,
                password,
            }),
            Gate::Refuse(mut response) => {
                self.decorate(request, &mut response);
                Admission::Answer(response)
            }
        }
    }

    /// The response to an admitted request.
    pub fn answer<B>(&self, site: &Site, request: &Request<B>) -> Response<Body> {
        let mut response = respond::respond(site, request);
        if self.is_plain() {
            return response;
        }
        let fallback = (response.status() == StatusCode::NOT_FOUND)
            .then(|| self.fallback_for(request.uri().path()))
            .flatten();
        if let Some(target) = fallback {
            let rewritten = respond::respond(site, &rewrite(request, target, true));
            if rewritten.status().is_success() || rewritten.status() == StatusCode::NOT_MODIFIED {
                response = rewritten;
            }
        }
        let status = response.status();
        if let Some((_, page)) = self.error_pages.iter().find(|(code, _)| *code == status) {
            let page = respond::respond(site, &rewrite(request, page, false));
            if page.status() == StatusCode::OK {
                response = as_error_page(page, status);
            }
        }
        self.decorate(request, &mut response);
        response
    }

    /// The file served instead of a missing `path`, if any.
    fn fallback_for(&self, path: &str) -> Option<&str> {
        if let Some(fallback) = &self.fallback {
            return Some(fallback);
        }
        let last = path.rsplit('/').next().unwrap_or("");
        (self.spa && !last.contains('.')).then_some("/index.html")
    }

    /// A response made outside `answer` (a refused login, an upload's
    /// outcome), with the site's headers added.
    pub fn decorated<B>(
        &self,
        request: &Request<B>,
        mut response: Response<Body>,
    ) -> Response<Body> {
        self.decorate(request, &mut response);
        response
    }

    fn decorate<B>(&self, request: &Request<B>, response: &mut Response<Body>) {
        if let Some(origins) = &self.cors {
            cors::decorate(origins, request.headers(), response.headers_mut());
        }
        if let Some(policy) = &self.cache_control
            && is_cacheable(response.status())
        {
            response.headers_mut().insert(CACHE_CONTROL, policy.clone());
        }
        self.add_headers(request, response);
    }

    /// The site-wide headers, then those of the path rules that match.
    fn add_headers<B>(&self, request: &Request<B>, response: &mut Response<Body>) {
        let cacheable = is_cacheable(response.status());
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if self.rules.is_empty() {
            return;
        }
        let path = path_rules::matched_path(request.uri().path());
        for rule in self.rules.iter().filter(|rule| rule.pattern.matches(&path)) {
            for (name, value) in &rule.headers {
                headers.insert(name.clone(), value.clone());
            }
            if let Some(policy) = rule.cache_control.as_ref().filter(|_| cacheable) {
                headers.insert(CACHE_CONTROL, policy.clone());
            }
        }
    }
}

/// Whether a response with this status gets the Cache-Control policy:
/// errors keep their own (none), so a 404 is not cached for a year.
fn is_cacheable(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::NOT_MODIFIED
}

/// `308` to the same host and target on `https://` at `port` (308 keeps
/// the method, unlike 301).
fn to_https<B>(request: &Request<B>, port: u16) -> Response<Body> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(HOST)?
                .to_str()
                .ok()
                .map(str::to_owned)
        });
    let Some(host) = authority.as_deref().and_then(host_of) else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "This address only redirects to HTTPS, which needs a Host header.",
        );
    };
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{target}");
    let mut response = pages::error(
        StatusCode::PERMANENT_REDIRECT,
        &format!("This site is served over HTTPS: {location}"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The host of an authority, without its port (`[::1]` keeps brackets).
fn host_of(authority: &str) -> Option<&str> {
    let authority = authority.rsplit('@').next()?;
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The request for `target` instead, with the same method. `keep_all`
/// keeps every header (conditional and range requests apply to what is
/// served in the path's place); otherwise only those choosing the
/// representation are kept, since an error page is never conditional.
fn rewrite<B>(request: &Request<B>, target: &str, keep_all: bool) -> Request<()> {
    let mut rewritten = Request::new(());
    *rewritten.method_mut() = request.method().clone();
    *rewritten.version_mut() = request.version();
    *rewritten.uri_mut() = target.parse().unwrap_or_default();
    if keep_all {
        *rewritten.headers_mut() = request.headers().clone();
    } else {
        for name in [HOST, ACCEPT_ENCODING] {
            if let Some(value) = request.headers().get(&name) {
                rewritten.headers_mut().insert(name, value.clone());
            }
        }
    }
    rewritten
}

/// A page of the site sent with an error status: its validators go, as
/// the page stands for the error, not for a file.
fn as_error_page(mut page: Response<Body>, status: StatusCode) -> Response<Body> {
    *page.status_mut() = status;
    for name in [ETAG, LAST_MODIFIED, ACCEPT_RANGES] {
        page.headers_mut().remove(name);
    }
    page
}

/// Credentials waiting to be checked.
#[derive(Debug)]
pub struct CredentialCheck {
    auth: BasicAuth,
    client: IpAddr,
    user: String,
    password: Vec<u8>,
}

impl CredentialCheck {
    /// Checks on a blocking thread (hashes are slow by design): `Ok` to
    /// serve the request, or the fresh challenge a wrong password gets
    /// (to pass through `SiteSettings::decorated`).
    pub async fn run(self) -> Result<(), Response<Body>> {
        let Self {
            auth,
            client,
            user,
            password,
        } = self;
        let checker = auth.clone();
        let verified =
            tokio::task::spawn_blocking(move || checker.verify(client, &user, &password))
                .await
                .unwrap_or(false);
        if verified {
            return Ok(());
        }
        tracing::info!(%client, "failed Basic auth login");
        Err(auth.challenge())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_ports() {
        assert_eq!(host_of("example.com:8080"), Some("example.com"));
        assert_eq!(host_of("[::1]:80"), Some("[::1]"));
        assert_eq!(host_of("example.com"), Some("example.com"));
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn header_flags_are_checked() {
        let (name, value) = parse_header("X-Frame-Options: DENY").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-frame-options", "DENY")
        );
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .contains("Name: value")
        );
        assert!(
            parse_header("Bad Name: x")
                .unwrap_err()
                .contains("not a valid header name")
        );
        assert!(parse_header("X-A: line\nbreak").is_err());
    }
}
