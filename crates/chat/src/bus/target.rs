//! What `--bus redis://…` names, checked before anything connects: plain
//! `redis://` only to a loopback host (its traffic, the chat's included,
//! would cross the network in clear), `rediss://` (TLS) anywhere, and no
//! password in the URL, since the URL is on the command line. The password
//! comes from the environment, as redis-cli takes it.

use std::net::IpAddr;

use super::BusError;

/// The environment variable holding the Redis password.
pub const PASSWORD_ENV: &str = "NETKIT_REDIS_PASSWORD";
/// redis-cli's own variable, read when [`PASSWORD_ENV`] is not set.
pub const REDISCLI_ENV: &str = "REDISCLI_AUTH";

/// Redis's port unless the URL names another.
const DEFAULT_PORT: u16 = 6379;

/// A checked Redis address.
#[derive(Clone)]
pub(super) struct Target {
    /// The URL given to the client, password included: never shown.
    pub url: String,
    /// `redis://HOST:PORT/DB` (or `rediss://`), for messages.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("shown", &self.shown)
            .finish()
    }
}

impl Target {
    /// Parses `url`, taking the password from `password` (the environment's).
    pub fn parse(url: &str, password: Option<String>) -> Result<Self, BusError> {
        let invalid = |why: &str| BusError::Target(format!("--bus: {why}"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else {
            return Err(invalid("expected redis://HOST:PORT[/DB] or rediss://…"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, _)) if userinfo.contains(':') => {
                return Err(invalid(&format!(
                    "the URL holds a password, and the command line is no place for one: \
                     remove it and set {PASSWORD_ENV} (or {REDISCLI_ENV})"
                )));
            }
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, authority),
        };
        let (host, port) = split_port(hostport)
            .ok_or_else(|| invalid("expected redis://HOST:PORT[/DB] with a numeric port"))?;
        if host.is_empty() {
            return Err(invalid("the URL names no host"));
        }
        if !tls && !is_loopback(host) {
            return Err(invalid(
                "plain redis:// only to a loopback host (127.0.0.1, ::1, localhost): \
                 use rediss:// (TLS) to reach Redis on another machine",
            ));
        }
        let db = if path.is_empty() {
            0
        } else {
            path.parse::<u32>()
                .map_err(|_| invalid("the database after the host must be a number"))?
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let port = port.unwrap_or(DEFAULT_PORT);
        let credentials = match (user, password) {
            (user, Some(password)) => {
                format!("{}:{}@", encode(user.unwrap_or("")), encode(&password))
            }
            (Some(user), None) => format!("{}@", encode(user)),
            (None, None) => String::new(),
        };
        Ok(Self {
            url: format!("{scheme}://{credentials}{host}:{port}/{db}"),
            shown: format!("{scheme}://{host}:{port}/{db}"),
        })
    }
}

/// The password from the environment: [`PASSWORD_ENV`], else redis-cli's.
pub(super) fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV)
        .or_else(|_| std::env::var(REDISCLI_ENV))
        .ok()
        .filter(|password| !password.is_empty())
}

/// `host` and its port, if any; an IPv6 host keeps its brackets.
fn split_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let after_host = match hostport.rfind(']') {
        Some(end) => end + 1,
        None => 0,
    };
    match hostport[after_host..].rfind(':') {
        Some(colon) => {
            let colon = after_host + colon;
            let port = hostport[colon + 1..].parse().ok()?;
            Some((&hostport[..colon], Some(port)))
        }
        None => Some((hostport, None)),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match Target::parse(url, None) {
            Err(BusError::Target(why)) => why,
            Err(err) => panic!("{url}: {err}"),
            Ok(_) => panic!("{url} accepted"),
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        let why = refused("redis://:s3cret@127.0.0.1:6379");
        assert!(
            why.contains("password") && why.contains(PASSWORD_ENV),
            "{why}"
        );
        assert!(!why.contains("s3cret"), "{why}");
        let why = refused("rediss://chat:s3cret@redis.example.com");
        assert!(!why.contains("s3cret"), "{why}");
    }

    #[test]
    fn plain_only_on_loopback_tls_anywhere() {
        assert!(refused("redis://redis.example.com:6379").contains("rediss://"));
        assert!(refused("redis://10.0.0.1").contains("loopback"));
        assert!(refused("http://127.0.0.1").contains("redis://"));
        assert!(refused("redis://127.0.0.1:x").contains("port"));
        assert!(refused("redis://127.0.0.1/db").contains("number"));
        let target = Target::parse("redis://127.0.0.1", None).unwrap();
        assert_eq!(target.shown, "redis://127.0.0.1:6379/0");
        let target = Target::parse("redis://[::1]:7000/3", None).unwrap();
        assert_eq!(target.shown, "redis://[::1]:7000/3");
        let target = Target::parse(
            "rediss://chat@redis.example.com/2",
            Some("p@ss:w/rd".into()),
        )
        .unwrap();
        assert_eq!(target.shown, "rediss://redis.example.com:6379/2");
        assert_eq!(
            target.url,
            "rediss://chat:p%40ss%3Aw%2Frd@redis.example.com:6379/2"
        );
        assert!(!format!("{target:?}").contains("p@ss"));
    }
}
