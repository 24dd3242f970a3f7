//! What `--db postgres://…` names, checked before anything connects: a
//! user, loopback hosts or Unix sockets only (connections are plain, so
//! they must not leave the machine), and no password in the URL, since
//! the URL is on the command line. The password comes from the
//! environment or a passfile, as libpq finds it.

use std::net::IpAddr;
use std::time::Duration;

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
    /// `postgres://USER@HOST:PORT/DB`, for messages.
    pub shown: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Target(format!("--db postgres://…: {why}"));
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("expected postgres://USER@HOST:PORT/DBNAME"));
        }
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
        if !config.get_hostaddrs().iter().all(IpAddr::is_loopback) || !is_local(&host) {
            return Err(invalid(
                "only a loopback host (127.0.0.1, ::1, localhost) or a Unix socket: \
                 netkit does not speak TLS to PostgreSQL, so the connection must stay on this machine",
            ));
        }
        match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => {}
            _ => {
                return Err(invalid(
                    "sslmode=require is not supported: netkit connects without TLS, over loopback only",
                ));
            }
        }
        config.ssl_mode(SslMode::Disable);
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
        Ok(Self {
            config,
            shown: format!("postgres://{user}@{shown_host}:{port}/{dbname}"),
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
    fn only_loopback_or_sockets_without_tls() {
        assert!(refused("postgres://chat@db.example.com/chat").contains("loopback"));
        assert!(refused("postgres://chat@10.1.2.3:5432/chat").contains("loopback"));
        assert!(refused("postgres://chat@localhost/chat?hostaddr=10.0.0.1").contains("loopback"));
        assert!(refused("postgres://chat@127.0.0.1/chat?sslmode=require").contains("sslmode"));
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
        }
        let target = Target::parse("postgres://chat@127.0.0.1/rooms").unwrap();
        assert_eq!(target.shown, "postgres://chat@127.0.0.1:5432/rooms");
    }
}
