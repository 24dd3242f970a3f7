//! `netkit mail sink`: a local test inbox.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use inbox::{Inbox, WebConfig, WebServer};
use smtp::sink::{Sink, SinkConfig};
use smtp::{Credentials, Password};
use tracing::{info, warn};
use web::BasicAuth;
use web::htpasswd::Htpasswd;

use crate::duration;
use crate::serve::{GraceArgs, LimitArgs, LogArgs, LogFormat, Shutdown};

/// The sink account's password comes from here, never from argv.
const PASSWORD_VAR: &str = "NETKIT_SINK_PASSWORD";
const DEMO_PASSWORD: &str = "demo";
const DEFAULT_WEB: &str = "127.0.0.1:8025";

pub const AFTER_HELP: &str = "\
Examples:
  netkit mail sink                                    127.0.0.1:2525, messages in ./maildir/new/
  netkit mail sink --bind 127.0.0.1:0 --maildir /tmp/inbox --require-auth
  swaks --server 127.0.0.1:2525 --to you@example.org -tls -a PLAIN -au demo -ap demo
  netkit mail sink --web 127.0.0.1:0 --max-messages 1000
  curl -s 'http://127.0.0.1:8025/api/v1/search?query=is:unread' | jq .

The web inbox (http://127.0.0.1:8025/ unless --web says otherwise, `--web off`
to go without) lists, searches and shows the messages; its JSON API is under
/api/v1/ (messages, search, message/ID, message/ID/raw, events). It keeps an
index, netkit-index.sqlite, in the Maildir's root. --web-auth-file asks for a
password on both (users from `htpasswd -B -c FILE NAME`); --web-tls-cert and
--web-tls-key (or --self-signed) serve them over HTTPS.

STARTTLS uses a self-signed certificate unless --tls-cert and --tls-key are given.
AUTH PLAIN (offered inside TLS only) accepts one account: --user (default demo)
with the password in NETKIT_SINK_PASSWORD (default demo).

One client cannot hold the sink: silent for --idle-timeout gets 421 4.4.2, one
message transfer lasts at most --data-timeout (then 421 4.7.0), a message has
at most --max-recipients (452 4.5.3 beyond) and a session at most
--max-messages (then 421 4.7.0 and the connection is closed).";

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2525")]
    bind: SocketAddr,
    /// Maildir to store messages in (created if missing)
    #[arg(long, value_name = "DIR", default_value = "maildir")]
    maildir: PathBuf,
    /// The account AUTH PLAIN accepts
    #[arg(long, value_name = "NAME", default_value = "demo")]
    user: String,
    /// Refuse MAIL until the client has authenticated
    #[arg(long)]
    require_auth: bool,
    /// PEM certificate chain for STARTTLS (default: self-signed)
    #[arg(long, alias = "cert", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, alias = "key", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Do not offer STARTTLS (and so no AUTH either)
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    no_tls: bool,
    /// Largest message accepted, e.g. 32M, 1G (advertised as SIZE)
    #[arg(long, value_name = "BYTES", default_value = "32M", value_parser = crate::size::parse)]
    max_size: u64,
    /// Name in the greeting and Received headers
    #[arg(long, value_name = "NAME", default_value = "localhost", value_parser = parse_hostname)]
    hostname: String,
    /// Disconnect a client silent for this long
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    idle_timeout: Duration,
    /// Longest one message transfer (DATA to the final dot) may take,
    /// however steadily the client sends; then 421 4.7.0 and the message
    /// is dropped
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse)]
    data_timeout: Duration,
    /// Recipients of one message; more get 452 4.5.3
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    max_recipients: u32,
    /// Messages in one session; the next MAIL gets 421 4.7.0 and the
    /// connection is closed
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_messages_per_session: u32,
    #[command(flatten)]
    limits: LimitArgs<1000, { smtp::sink::MAX_PER_CLIENT as u32 }, { smtp::sink::MAX_RATE }>,
    /// Serve the web inbox and its API here; `off` for none
    #[arg(long, value_name = "ADDR|off", default_value = DEFAULT_WEB, value_parser = parse_web)]
    web: WebAddr,
    /// PEM certificate chain: serve the web inbox over HTTPS
    #[arg(long, value_name = "FILE", requires = "web_tls_key")]
    web_tls_cert: Option<PathBuf>,
    /// PEM private key for --web-tls-cert
    #[arg(long, value_name = "FILE", requires = "web_tls_cert")]
    web_tls_key: Option<PathBuf>,
    /// Serve the web inbox over HTTPS with a self-signed certificate
    #[arg(long, visible_alias = "self-signed", conflicts_with_all = ["web_tls_cert", "web_tls_key"])]
    web_self_signed: bool,
    /// Ask for a user name and password on the web inbox and its API,
    /// checked against this htpasswd file (bcrypt lines from `htpasswd -B`,
    /// or Argon2)
    #[arg(long, value_name = "FILE")]
    web_auth_file: Option<PathBuf>,
    /// Keep at most this many messages, deleting the oldest
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    #[command(flatten)]
    grace: GraceArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// Where the web inbox listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebAddr {
    Off,
    On(SocketAddr),
}

fn parse_web(text: &str) -> Result<WebAddr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(WebAddr::Off);
    }
    text.parse().map(WebAddr::On).map_err(|_| {
        format!("`{text}` is not an address to listen on (e.g. 127.0.0.1:8025) or `off`")
    })
}

impl SinkArgs {
    pub fn log_format(&self) -> LogFormat {
        self.log.log_format
    }
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::install(&args.grace)?;
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(password) => password,
        Err(_) => {
            info!(user = %args.user, "{PASSWORD_VAR} is not set: the account's password is `{DEMO_PASSWORD}`");
            DEMO_PASSWORD.to_owned()
        }
    };
    let tls = if args.no_tls {
        None
    } else {
        let identity = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => tls::Identity::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => tls::Identity::SelfSigned,
        };
        Some(tls::server_config(&identity, &[])?)
    };
    let mut config = SinkConfig::new(Credentials {
        user: args.user.clone(),
        password: Password::new(password),
    });
    config.hostname = args.hostname.clone();
    config.tls = tls;
    config.require_auth = args.require_auth;
    config.max_message_size = args.max_size;
    config.idle_timeout = args.idle_timeout;
    config.data_timeout = args.data_timeout;
    config.max_recipients = args.max_recipients as usize;
    config.max_messages = args.max_messages_per_session as usize;
    config.limits = args.limits.limits();
    let web = web_server(&args, &mut config).await?;
    let sink = Sink::bind(args.bind, args.maildir.clone(), config).await?;
    println!("listening on {}", sink.local_addr());
    if let Some(web) = &web {
        println!("web inbox listening on {}", web.url());
    }
    info!(maildir = %args.maildir.display(), "storing messages");
    let token = shutdown.token();
    shutdown
        .run(async move {
            let web = web.map(|web| tokio::spawn(web.run(token.clone())));
            sink.run(token).await;
            if let Some(web) = web {
                web.await.context("the web inbox failed")?;
            }
            Ok(())
        })
        .await
}

/// Opens the inbox (when the web inbox or `--max-messages` needs it) and
/// binds the web inbox, pointing the sink's `on_stored` at the indexer.
async fn web_server(args: &SinkArgs, config: &mut SinkConfig) -> anyhow::Result<Option<WebServer>> {
    if args.web == WebAddr::Off && args.max_messages.is_none() {
        return Ok(None);
    }
    let maildir = args.maildir.clone();
    let max_messages = args.max_messages;
    let inbox = tokio::task::spawn_blocking(move || Inbox::open(&maildir, max_messages))
        .await?
        .with_context(|| format!("cannot open the inbox of {}", args.maildir.display()))?;
    config.on_stored = Some(inbox.indexer());
    let WebAddr::On(addr) = args.web else {
        return Ok(None);
    };
    let identity = match (&args.web_tls_cert, &args.web_tls_key) {
        (Some(cert), Some(key)) => Some(tls::Identity::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ if args.web_self_signed => Some(tls::Identity::SelfSigned),
        _ => None,
    };
    let auth = match &args.web_auth_file {
        // As `web serve --auth-file`: passwords are not sent in the clear
        // beyond this machine.
        Some(_) if identity.is_none() && !addr.ip().is_loopback() => anyhow::bail!(
            "--web-auth-file on {addr} without TLS would send passwords readable by anyone \
             on the path; add --web-tls-cert/--web-tls-key or --self-signed, or bind a \
             loopback address"
        ),
        Some(path) => {
            let users = Htpasswd::load(path)
                .with_context(|| format!("--web-auth-file {}", path.display()))?;
            if users.is_empty() {
                anyhow::bail!("--web-auth-file {}: no users", path.display());
            }
            Some(BasicAuth::new(users, "netkit mail inbox"))
        }
        None => None,
    };
    if !addr.ip().is_loopback() && auth.is_none() {
        warn!(%addr, "the web inbox is reachable from other hosts, without a password");
    }
    let web_config = WebConfig {
        tls: identity
            .map(|identity| tls::server_config(&identity, &[b"http/1.1"]))
            .transpose()?,
        auth,
    };
    match WebServer::bind(addr, inbox, web_config).await {
        Ok(web) => Ok(Some(web)),
        // Another sink has the default port: this one runs without a page
        // rather than not at all.
        Err(err) if addr.to_string() == DEFAULT_WEB => {
            warn!(%err, "no web inbox: pass --web with a free address (or 127.0.0.1:0)");
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// A name for the greeting: it goes on the wire as it is, so one word of
/// visible characters.
fn parse_hostname(text: &str) -> Result<String, String> {
    let usable = !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic());
    if usable {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not a host name (one word of visible ASCII, e.g. mx.example.org)",
            text.escape_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hostname;

    #[test]
    fn hostnames() {
        assert_eq!(
            parse_hostname("mx.example.org"),
            Ok("mx.example.org".into())
        );
        assert!(parse_hostname("").is_err());
        assert!(parse_hostname("a b").is_err());
        assert!(parse_hostname("a\r\n250 injected").is_err());
    }
}
