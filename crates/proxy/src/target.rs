//! The request targets a forward proxy accepts, checked once so the rest of
//! the proxy handles only a validated origin and path:
//! - absolute-form, from browsers and `curl -x`: `GET http://example.com/a`;
//! - the lab's path form, from a plain client: `GET /example.com:8080/a`
//!   (also `GET /http://example.com/a`);
//! - authority-form, for CONNECT: `CONNECT example.com:443`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use http::Uri;
use http::uri::Authority;

/// The host name the proxy answers for itself (`http://netkit.proxy/stats`).
pub const SELF_HOST: &str = "netkit.proxy";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not a valid host name or address")]
    Host(String),
    #[error("`{0}` is not a valid port")]
    Port(String),
    #[error("only http:// URLs are fetched through the proxy (use CONNECT for https)")]
    Scheme,
    #[error("user names and passwords in URLs are not forwarded")]
    UserInfo,
    #[error("the request names no host: use an absolute URL or /HOST[:PORT]/PATH")]
    NoHost,
    #[error("CONNECT needs HOST:PORT")]
    Connect,
}

/// A host as it appears in a URL, validated: lower-case DNS name or IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    pub fn parse(text: &str) -> Result<Host, TargetError> {
        let invalid = || TargetError::Host(text.to_owned());
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(invalid)?;
            return inner.parse().map(Host::V6).map_err(|_| invalid());
        }
        if let Ok(v4) = text.parse() {
            return Ok(Host::V4(v4));
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(invalid());
        }
        Ok(Host::Name(name.to_ascii_lowercase()))
    }

    /// The name to resolve or the address to connect to, without brackets.
    pub fn connect_name(&self) -> String {
        match self {
            Host::Name(name) => name.clone(),
            Host::V4(ip) => ip.to_string(),
            Host::V6(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

/// A host and port: where a request or tunnel goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub host: Host,
    pub port: u16,
}

impl Origin {
    fn parse(authority: &str, default_port: Option<u16>) -> Result<Origin, TargetError> {
        if authority.contains('@') {
            return Err(TargetError::UserInfo);
        }
        let parsed: Authority = authority
            .parse()
            .map_err(|_| TargetError::Host(authority.to_owned()))?;
        let host = Host::parse(parsed.host())?;
        // The authority is the host and an optional `:port`; read the port
        // ourselves so an out-of-range one is an error, not the default.
        let port = match &authority[parsed.host().len()..] {
            "" => default_port.ok_or(TargetError::Connect)?,
            rest => {
                let digits = rest.strip_prefix(':').unwrap_or(rest);
                match digits.parse::<u16>() {
                    Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => port,
                    _ => return Err(TargetError::Port(digits.to_owned())),
                }
            }
        };
        Ok(Origin { host, port })
    }

    /// `host` or `host:port`, leaving out the default HTTP port, as the
    /// `Host` header and the cache key write it.
    pub fn authority(&self) -> String {
        if self.port == 80 {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An http:// resource: the origin and the path with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub origin: Origin,
    pub path_and_query: String,
}

impl Target {
    /// The request target of a proxied request, in absolute-form or the
    /// lab's path form.
    pub fn parse(uri: &Uri) -> Result<Target, TargetError> {
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                if !scheme.eq_ignore_ascii_case("http") {
                    return Err(TargetError::Scheme);
                }
                let origin = Origin::parse(authority.as_str(), Some(80))?;
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                Ok(Target::new(origin, path))
            }
            (None, None) => {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                Target::parse_path_form(path)
            }
            _ => Err(TargetError::NoHost),
        }
    }

    /// `/host[:port]/rest` or `/http://host[:port]/rest`.
    fn parse_path_form(path: &str) -> Result<Target, TargetError> {
        let rest = path.strip_prefix('/').ok_or(TargetError::NoHost)?;
        if let Some(scheme_end) = rest.find("://") {
            let scheme = &rest[..scheme_end];
            if scheme.eq_ignore_ascii_case("http") {
                return Target::parse_path_form(&rest[scheme_end + 2..]);
            }
            if scheme.eq_ignore_ascii_case("https") {
                return Err(TargetError::Scheme);
            }
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(TargetError::NoHost);
        }
        let origin = Origin::parse(authority, Some(80))?;
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Target::new(origin, &path))
    }

    fn new(origin: Origin, path_and_query: &str) -> Target {
        let path_and_query = if path_and_query.is_empty() {
            "/".to_owned()
        } else {
            path_and_query.to_owned()
        };
        Target {
            origin,
            path_and_query,
        }
    }

    /// The absolute URL: the cache key and what the access log shows.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.origin.authority(), self.path_and_query)
    }

    pub fn uri(&self) -> Uri {
        self.url()
            .parse()
            .expect("a validated host and an already parsed path form a URI")
    }

    /// Whether the request is for the proxy's own pages.
    pub fn is_proxy_itself(&self) -> bool {
        matches!(&self.origin.host, Host::Name(name) if name == SELF_HOST)
    }
}

/// The `host:port` of a CONNECT request; the port is required.
pub fn parse_connect(uri: &Uri) -> Result<Origin, TargetError> {
    if uri.scheme().is_some() || uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(TargetError::Connect);
    }
    let authority = uri.authority().ok_or(TargetError::Connect)?;
    Origin::parse(authority.as_str(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target(uri: &str) -> Result<Target, TargetError> {
        Target::parse(&uri.parse().unwrap())
    }

    fn url(uri: &str) -> String {
        target(uri).unwrap().url()
    }

    #[test]
    fn absolute_form() {
        assert_eq!(url("http://Example.COM/a?b=c"), "http://example.com/a?b=c");
        assert_eq!(url("http://example.com"), "http://example.com/");
        assert_eq!(url("http://example.com:80/x"), "http://example.com/x");
        assert_eq!(
            url("http://example.com:8080/x"),
            "http://example.com:8080/x"
        );
        assert_eq!(url("http://[::1]:8080/x"), "http://[::1]:8080/x");
        assert_eq!(url("http://127.0.0.1/"), "http://127.0.0.1/");
        assert_eq!(target("https://example.com/"), Err(TargetError::Scheme));
        assert_eq!(target("ftp://example.com/"), Err(TargetError::Scheme));
        assert_eq!(
            target("http://user:pw@example.com/"),
            Err(TargetError::UserInfo)
        );
    }

    #[test]
    fn path_form() {
        assert_eq!(url("/www.example.com/a"), "http://www.example.com/a");
        assert_eq!(url("/www.example.com"), "http://www.example.com/");
        assert_eq!(url("/www.example.com?q=1"), "http://www.example.com/?q=1");
        assert_eq!(url("/localhost:8080/a/b?c"), "http://localhost:8080/a/b?c");
        assert_eq!(url("/127.0.0.1:9/"), "http://127.0.0.1:9/");
        assert_eq!(url("/[::1]:9/x"), "http://[::1]:9/x");
        assert_eq!(url("/http://example.com/a"), "http://example.com/a");
        assert_eq!(target("/https://example.com/a"), Err(TargetError::Scheme));
        assert_eq!(target("/"), Err(TargetError::NoHost));
        assert_eq!(target("//x"), Err(TargetError::NoHost));
        assert!(
            "/exa mple.com/".parse::<Uri>().is_err(),
            "hyper refuses spaces"
        );
        assert!(matches!(
            target("/exa%20mple.com/"),
            Err(TargetError::Host(_))
        ));
        assert!(matches!(target("/-bad.com/"), Err(TargetError::Host(_))));
        assert!(matches!(target("/host:0/"), Err(TargetError::Port(_))));
        assert!(matches!(target("/host:99999/"), Err(TargetError::Port(_))));
        assert!(matches!(target("/host:/"), Err(TargetError::Port(_))));
        assert_eq!(target("/u@host/"), Err(TargetError::UserInfo));
    }

    #[test]
    fn proxy_itself() {
        assert!(
            target("http://netkit.proxy/stats")
                .unwrap()
                .is_proxy_itself()
        );
        assert!(target("/NETKIT.PROXY/stats").unwrap().is_proxy_itself());
        assert!(!target("http://example.com/").unwrap().is_proxy_itself());
    }

    #[test]
    fn connect_authority() {
        let origin = parse_connect(&"example.com:443".parse().unwrap()).unwrap();
        assert_eq!(origin.to_string(), "example.com:443");
        let origin = parse_connect(&"[::1]:8443".parse().unwrap()).unwrap();
        assert_eq!(origin.host, Host::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(origin.port, 8443);
        assert!(parse_connect(&"example.com".parse().unwrap()).is_err());
        assert!(parse_connect(&"http://example.com:443/".parse().unwrap()).is_err());
        assert!(parse_connect(&"/path".parse().unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn any_uri_parses_or_errs(text in "\\PC{0,80}") {
            if let Ok(uri) = text.parse::<Uri>() {
                if let Ok(target) = Target::parse(&uri) {
                    // Every accepted target makes a URI that parses back the same.
                    let again = Target::parse(&target.uri()).unwrap();
                    prop_assert_eq!(again, target);
                }
                let _ = parse_connect(&uri);
            }
        }

        #[test]
        fn path_form_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Target::parse_path_form(&text);
            let _ = Origin::parse(&text, None);
            let _ = Host::parse(&text);
        }

        #[test]
        fn valid_names_round_trip(
            host in "[a-z]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}",
            port in 1u16..,
            path in "(/[a-zA-Z0-9._~%-]{0,12}){0,4}(\\?[a-z=&]{0,10})?",
        ) {
            let uri: Uri = format!("/{host}:{port}{path}").parse().unwrap();
            let target = Target::parse(&uri).unwrap();
            prop_assert_eq!(target.origin.host, Host::Name(host.clone()));
            prop_assert_eq!(target.origin.port, port);
        }
    }
}
