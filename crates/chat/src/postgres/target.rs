//! What `--db postgres://…` names, checked before anything connects: a
//! user, one host, and no password in the URL, since the URL is on the
//! command line. The password comes from the environment or a passfile,
//! as libpq finds it. A connection that leaves the machine uses TLS with
//! the server's certificate verified; plain connections are for loopback
//! and Unix sockets only. libpq's `sslmode` and `sslrootcert` say so, read
//! here since tokio-postgres knows only part of them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use tls::rustls::ClientConfig;
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};

use super::{CONNECT_TIMEOUT, passfile};
use crate::store::StoreError;

/// The environment variable holding the database password (libpq's).
pub const PASSWORD_ENV: &str = "PGPASSWORD";

/// PostgreSQL's port unless the URL names another.
const DEFAULT_PORT: u16 = 5432;

/// A checked connection configuration.
pub(super) struct Target {
    pub config: Config,
    /// The TLS client configuration, when the connection uses TLS.
    pub tls: Option<Arc<ClientConfig>>,
    /// `postgres://USER@HOST:PORT/DB`, for messages.
    pub shown: String,
}

/// libpq's `sslmode` values, as netkit follows them: any mode asking for
/// TLS gets it with the certificate verified (netkit never trusts an
/// unverified server); the others are plain, which only loopback allows.
fn wants_tls(mode: &str) -> Option<bool> {
    match mode {
        "disable" | "allow" | "prefer" => Some(false),
        "require" | "verify-ca" | "verify-full" => Some(true),
        _ => None,
    }
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None, None);
    };
    let (mut mode, mut root, mut rest) = (None, None, Vec::new());
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || percent_decode_str(value).decode_utf8_lossy().into_owned();
        match key {
            "sslmode" => mode = Some(decoded()),
            "sslrootcert" => root = Some(decoded()),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, mode, root)
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Target(format!("--db postgres://…: {why}"));
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("expected postgres://USER@HOST:PORT/DBNAME"));
        }
        let (url, mode, root) = split_tls_params(url);
        let asked = match mode.as_deref() {
            None => None,
            Some(mode) => Some(wants_tls(mode).ok_or_else(|| {
                invalid("sslmode is one of disable, allow, prefer, require, verify-ca, verify-full")
            })?),
        };
        // The parser's message never repeats the URL, so no password is
        // echoed from here.
        let mut config: Config = url
            .parse()
            .map_err(|err| invalid(&format!("{err}: expected postgres://USER@HOST:PORT/DBNAME")))?;
        if config.get_password().is_some() {
            return Err(invalid(&format!(
                "the URL holds a password, and the command line is no place for one: \
                 remove it and set {PASSWORD_ENV} or use a passfile (PGPASSFILE or ~/.pgpass)"
            )));
        }
        let user = config
            .get_user()
            .ok_or_else(|| invalid("the URL names no user: postgres://USER@HOST:PORT/DBNAME"))?
            .to_owned();
        let Some(host) = config.get_hosts().first().cloned() else {
            return Err(invalid(
                "the URL names no host: postgres://USER@HOST:PORT/DBNAME",
            ));
        };
        if config.get_hosts().len() > 1 {
            return Err(invalid("give one host"));
        }
        let local = config.get_hostaddrs().iter().all(IpAddr::is_loopback) && is_local(&host);
        // Another machine is reached over TLS unless told otherwise, and
        // told otherwise is refused.
        let tls = asked.unwrap_or(!local);
        if !tls && !local {
            return Err(invalid(
                "a plain connection must stay on this machine (127.0.0.1, ::1, localhost or a \
                 Unix socket): drop sslmode, or use sslmode=verify-full, to reach another host over TLS",
            ));
        }
        if tls && matches!(host, Host::Unix(_)) {
            return Err(invalid("a Unix socket takes no TLS: drop sslmode"));
        }
        if root.is_some() && !tls {
            return Err(invalid(
                "sslrootcert is for TLS connections: drop it, or set sslmode=verify-full",
            ));
        }
        let tls = if tls {
            let options = tls::ClientOptions {
                insecure: false,
                ca_file: root.map(PathBuf::from),
            };
            let client =
                tls::client_config(&options, &[]).map_err(|err| invalid(&format!("TLS: {err}")))?;
            config.ssl_mode(SslMode::Require);
            Some(client)
        } else {
            config.ssl_mode(SslMode::Disable);
            None
        };
        let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
        let dbname = config.get_dbname().unwrap_or(&user).to_owned();
        // libpq matches a socket connection's entries as `localhost`.
        let host_name = match &host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(_) => "localhost".to_owned(),
        };
        let password = match std::env::var(PASSWORD_ENV) {
            Ok(password) => Some(password),
            Err(_) => passfile::find(&host_name, port, &dbname, &user)?,
        };
        if let Some(password) = password {
            config.password(password);
        }
        config
            .dbname(&dbname)
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("netkit chat");
        let shown_host = match &host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        };
        let shown = format!("postgres://{user}@{shown_host}:{port}/{dbname}");
        Ok(Self {
            config,
            shown: if tls.is_some() {
                format!("{shown} (TLS)")
            } else {
                shown
            },
            tls,
        })
    }
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match Target::parse(url) {
            Err(StoreError::Target(why)) => why,
            Err(err) => panic!("{url}: {err}"),
            Ok(_) => panic!("{url} accepted"),
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        let why = refused("postgres://chat:s3cret@127.0.0.1:5433/chat");
        assert!(why.contains("password"), "{why}");
        assert!(!why.contains("s3cret"), "{why}");
        let why = refused("postgres://chat@127.0.0.1/chat?password=s3cret");
        assert!(!why.contains("s3cret"), "{why}");
    }

    #[test]
    fn plain_only_on_this_machine_and_tls_verified_elsewhere() {
        for url in [
            "postgres://chat@db.example.com/chat?sslmode=disable",
            "postgres://chat@10.1.2.3:5432/chat?sslmode=prefer",
            "postgres://chat@localhost/chat?hostaddr=10.0.0.1&sslmode=allow",
        ] {
            assert!(refused(url).contains("plain connection"), "{url}");
        }
        assert!(refused("postgres://chat@127.0.0.1/chat?sslmode=sometimes").contains("sslmode"));
        assert!(
            refused("postgres://chat@%2Frun%2Fpostgresql/chat?sslmode=require").contains("Unix")
        );
        assert!(
            refused("postgres://chat@127.0.0.1/chat?sslrootcert=ca.pem").contains("sslrootcert")
        );
        let missing =
            refused("postgres://chat@db.example.com/chat?sslrootcert=%2Fnowhere%2Fca.pem");
        assert!(missing.contains("/nowhere/ca.pem"), "{missing}");
        for url in [
            "postgres://chat@db.example.com/chat",
            "postgres://chat@10.1.2.3:5432/chat?sslmode=require&application_name=x",
            "postgres://chat@127.0.0.1/chat?sslmode=verify-full",
        ] {
            let target = Target::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
            assert_eq!(target.config.get_ssl_mode(), SslMode::Require, "{url}");
            assert!(target.tls.is_some(), "{url}");
            assert!(target.shown.ends_with("(TLS)"), "{}", target.shown);
        }
        assert!(refused("postgres://127.0.0.1/chat").contains("user"));
        assert!(refused("mysql://chat@127.0.0.1/chat").contains("postgres://"));
        for url in [
            "postgres://chat@127.0.0.1:5433/chat",
            "postgresql://chat@[::1]:5433/chat",
            "postgres://chat@localhost/chat?sslmode=disable",
            "postgres://chat@%2Frun%2Fpostgresql/chat",
        ] {
            let target = Target::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
            assert_eq!(target.config.get_ssl_mode(), SslMode::Disable);
            assert!(target.tls.is_none());
        }
        let target = Target::parse("postgres://chat@127.0.0.1/rooms").unwrap();
        assert_eq!(target.shown, "postgres://chat@127.0.0.1:5432/rooms");
    }
}
