//! `netkit mail send`: flags to a draft and a session, the transcript on
//! the terminal, and one exit code per stage.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use smtp::{
    AuthConfig, ClientConfig, Credentials, Dns, Draft, Envelope, ExtraHeader, Mailbox, Mechanism,
    Message, Password, Security, Server, Stage,
};

use super::transcript::Transcript;
use crate::duration;

/// Where the password comes from; never the command line.
const PASSWORD_VAR: &str = "NETKIT_SMTP_PASSWORD";

pub const AFTER_HELP: &str = "\
Examples:
  netkit mail send --server 127.0.0.1:2525 --from me@example.org --to you@example.org \\
      --subject 'Hello' --body 'Hi there'
  netkit mail send --server smtp.example.org:587 --tls --user me@example.org \\
      --from me@example.org --to you@example.org --body-file note.txt --attach report.pdf
  netkit mail send --from me@example.org --to you@example.org --html-file page.html \\
      --attach logo.png --dump        (the HTML uses <img src=\"cid:logo.png\">)
  netkit mail send --from me@example.org --to someone@example.net   (MX lookup, port 25)

The password for --user comes from NETKIT_SMTP_PASSWORD or a prompt on the terminal
(/dev/tty, so the body can come from stdin with --body -).

Exit status:
   0  delivered (to every recipient, or some with the others reported refused)
   1  other failure (unreadable file, bad address, ...)
   2  usage error
  20  connect: DNS/MX lookup or TCP connection failed
  21  greeting: the server did not greet with 220
  22  EHLO: both EHLO and HELO refused
  23  MAIL: the sender was refused (or the message is over the server's SIZE)
  24  RCPT: no recipient was accepted
  25  DATA: the DATA command was refused
  26  message: sending the message failed, or the server refused it
  28  AUTH: authentication failed or was not possible
  29  TLS: STARTTLS missing or refused, or the handshake/certificate failed";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthChoice {
    Plain,
    Login,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Sender address, as `addr` or 'Name <addr>' (envelope and From:)
    #[arg(long, value_name = "ADDR")]
    from: Mailbox,
    /// Recipient (To:); repeat for more
    #[arg(long, value_name = "ADDR")]
    to: Vec<Mailbox>,
    /// Copy recipient (Cc:); repeat for more
    #[arg(long, value_name = "ADDR")]
    cc: Vec<Mailbox>,
    /// Blind copy recipient: in the envelope only, never in the headers
    #[arg(long, value_name = "ADDR")]
    bcc: Vec<Mailbox>,
    /// SMTP server as HOST[:PORT] (port 25, or 465 with --tls-on-connect);
    /// without it, each recipient domain's MX is looked up
    #[arg(long, value_name = "HOST[:PORT]")]
    server: Option<String>,
    /// Port for MX hosts and for a --server given without one
    /// (default 25, or 465 with --tls-on-connect)
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Text body; `-` reads it from stdin
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    body: Option<String>,
    /// Text body from a file
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// HTML body; with a text body the message is multipart/alternative.
    /// Images it refers to as cid:FILENAME are attached inline
    #[arg(long, value_name = "FILE")]
    html_file: Option<PathBuf>,
    /// Attach a file (content type from its name, base64); repeat for more
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// Add a header, as 'Name: value' (it replaces a generated one of the
    /// same name, e.g. Subject); repeat for more
    #[arg(long, value_name = "HEADER")]
    header: Vec<ExtraHeader>,

    /// Require STARTTLS (fail if the server does not offer it)
    #[arg(long, conflicts_with_all = ["tls_on_connect", "no_starttls"])]
    tls: bool,
    /// TLS from the start of the connection (implicit TLS, port 465)
    #[arg(long, conflicts_with = "no_starttls")]
    tls_on_connect: bool,
    /// Do not use STARTTLS even when the server offers it
    #[arg(long)]
    no_starttls: bool,
    /// Trust the CA certificates in this PEM file as well as the system's
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Do not verify the server's certificate (the session is still
    /// encrypted, but anyone could be at the other end)
    #[arg(long)]
    insecure: bool,

    /// Authenticate as this user (password from NETKIT_SMTP_PASSWORD or a prompt)
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// SASL mechanism; by default the first of PLAIN, LOGIN the server offers
    #[arg(long, value_enum, requires = "user")]
    auth: Option<AuthChoice>,
    /// Allow sending the password over a connection without TLS
    #[arg(long)]
    allow_plaintext_auth: bool,

    /// DNS server for MX and address lookups, as HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    dns: Option<SocketAddr>,
    /// Host name to give in EHLO (default: this machine's name)
    #[arg(long, value_name = "NAME", value_parser = parse_ehlo)]
    ehlo: Option<String>,
    /// How long to wait to connect and for each reply
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    timeout: Duration,

    /// Show only errors
    #[arg(long, short)]
    quiet: bool,
    /// Do not show the message lines in the transcript
    #[arg(long)]
    hide_data: bool,
    /// Print the composed message instead of sending it
    #[arg(long)]
    dump: bool,
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let message = compose(&args)?;
    if args.dump {
        dump(&message).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let recipients: Vec<Mailbox> = args
        .to
        .iter()
        .chain(&args.cc)
        .chain(&args.bcc)
        .cloned()
        .collect();
    if recipients.is_empty() {
        bail!("no recipient: give at least one --to, --cc or --bcc");
    }
    let config = client_config(&args).await?;
    let mut transcript = Transcript::new(args.quiet);
    let dns = match args.dns {
        Some(addr) => Some(Dns::new(Some(addr))?),
        None => None,
    };

    // Without --server, each recipient domain is a delivery of its own.
    let routes: Vec<(Option<String>, Vec<Mailbox>)> = match &args.server {
        Some(_) => vec![(None, recipients)],
        None => smtp::by_domain(recipients)
            .into_iter()
            .map(|(domain, group)| (Some(domain), group))
            .collect(),
    };
    let mut failure = None;
    for (domain, recipients) in routes {
        let envelope = Envelope {
            from: args.from.clone(),
            recipients,
        };
        let outcome = match &domain {
            None => {
                let server = server_from_flag(&args, dns.as_ref()).await;
                match server {
                    Ok(server) => {
                        smtp::send(&server, &config, &envelope, &message, &mut transcript).await
                    }
                    Err(err) => Err(err),
                }
            }
            Some(domain) => {
                let port = default_port(&args);
                match system_or(dns.as_ref()) {
                    Ok(dns) => {
                        smtp::send_to_domain(
                            &dns,
                            domain,
                            port,
                            &config,
                            &envelope,
                            &message,
                            &mut transcript,
                        )
                        .await
                    }
                    Err(err) => Err(err),
                }
            }
        };
        match outcome {
            Ok(delivery) => {
                let accepted: Vec<_> = delivery
                    .accepted
                    .iter()
                    .map(|m| m.address.as_str())
                    .collect();
                transcript.note(&format!(
                    "delivered to {} ({})",
                    accepted.join(", "),
                    delivery.reply
                ));
                for (recipient, reply) in &delivery.rejected {
                    transcript.problem(&format!("not delivered to {}: {reply}", recipient.address));
                }
            }
            Err(err) => {
                transcript.problem(&format!("{} failed: {err}", err.stage));
                failure.get_or_insert(err.stage);
            }
        }
    }
    Ok(match failure {
        None => ExitCode::SUCCESS,
        Some(stage) => ExitCode::from(exit_code(stage)),
    })
}

/// The exit code for a stage (documented in AFTER_HELP; swaks' numbers).
fn exit_code(stage: Stage) -> u8 {
    match stage {
        Stage::Connect => 20,
        Stage::Greeting => 21,
        Stage::Ehlo => 22,
        Stage::Mail => 23,
        Stage::Rcpt => 24,
        Stage::Data => 25,
        Stage::Message => 26,
        Stage::Auth => 28,
        Stage::Tls => 29,
    }
}

fn compose(args: &SendArgs) -> anyhow::Result<Message> {
    let text =
        match (&args.body, &args.body_file) {
            (Some(body), _) if body == "-" => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the body from stdin (it must be UTF-8 text)")?;
                Some(text)
            }
            (Some(body), _) => Some(body.clone()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read {} (it must be UTF-8 text)", path.display())
            })?),
            (None, None) => None,
        };
    let html =
        match &args.html_file {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read {} (it must be UTF-8 text)", path.display())
            })?),
            None => None,
        };
    let draft = Draft {
        from: Some(args.from.clone()),
        to: args.to.clone(),
        cc: args.cc.clone(),
        subject: args.subject.clone(),
        text,
        html,
        attachments: args.attach.clone(),
        headers: args.header.clone(),
    };
    Ok(draft.compose()?)
}

async fn dump(message: &Message) -> anyhow::Result<()> {
    let mut chunks = message.chunks();
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = chunks
        .next()
        .await
        .map_err(|(path, err)| anyhow::anyhow!("cannot read {}: {err}", path.display()))?
    {
        stdout.write_all(chunk).context("cannot write to stdout")?;
    }
    stdout.flush().context("cannot write to stdout")
}

async fn client_config(args: &SendArgs) -> anyhow::Result<ClientConfig> {
    let security = if args.tls_on_connect {
        Security::Implicit
    } else if args.tls {
        Security::RequireStartTls
    } else if args.no_starttls {
        Security::Plaintext
    } else {
        Security::Opportunistic
    };
    let auth = match &args.user {
        Some(user) => Some(AuthConfig {
            mechanism: args.auth.map(|choice| match choice {
                AuthChoice::Plain => Mechanism::Plain,
                AuthChoice::Login => Mechanism::Login,
            }),
            credentials: Credentials {
                user: user.clone(),
                password: password(user).await?,
            },
        }),
        None => None,
    };
    if args.insecure {
        eprintln!("*** warning: --insecure: the server's certificate will not be verified");
    }
    Ok(ClientConfig {
        helo_name: args.ehlo.clone().unwrap_or_else(smtp::local_helo_name),
        security,
        tls: tls::ClientOptions {
            insecure: args.insecure,
            ca_file: args.cacert.clone(),
        },
        auth,
        allow_plaintext_auth: args.allow_plaintext_auth,
        timeout: args.timeout,
        show_body: !args.hide_data,
    })
}

async fn password(user: &str) -> anyhow::Result<Password> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return Ok(Password::new(password));
    }
    // The terminal, not stdin: with `--body -` stdin is the message.
    if std::fs::File::open("/dev/tty").is_err() {
        bail!(
            "--user {user} needs a password: set {PASSWORD_VAR} or run on a terminal (passwords are never taken from the command line)"
        );
    }
    let prompt = format!("Password for {user}: ");
    let password = tokio::task::spawn_blocking(move || crate::prompt::hidden(&prompt))
        .await?
        .context("cannot read the password")?;
    Ok(Password::new(password))
}

fn default_port(args: &SendArgs) -> u16 {
    args.port
        .unwrap_or(if args.tls_on_connect { 465 } else { 25 })
}

/// The EHLO argument goes on the wire as it is: a domain or an address
/// literal, one word of visible characters.
fn parse_ehlo(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic()) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not a host name (e.g. client.example.org or [192.0.2.1])",
            text.escape_default()
        ))
    }
}

/// `--server HOST[:PORT]`, resolved.
async fn server_from_flag(args: &SendArgs, dns: Option<&Dns>) -> Result<Server, smtp::Error> {
    let flag = args.server.as_deref().unwrap_or_default();
    let (host, port) = split_host_port(flag, default_port(args)).map_err(|detail| {
        smtp::Error::new(
            Stage::Connect,
            smtp::ErrorKind::Resolve {
                host: flag.to_owned(),
                detail,
            },
        )
    })?;
    let addrs = resolve(&host, port, dns).await?;
    Ok(Server { host, addrs })
}

async fn resolve(host: &str, port: u16, dns: Option<&Dns>) -> Result<Vec<SocketAddr>, smtp::Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let ips = match dns {
        Some(dns) => dns.addresses(host).await?,
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| {
                smtp::Error::new(
                    Stage::Connect,
                    smtp::ErrorKind::Resolve {
                        host: host.to_owned(),
                        detail: err.to_string(),
                    },
                )
            })?
            .map(|addr| addr.ip())
            .collect(),
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("`{port}` is not a port number"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing `]` after an IPv6 address".to_owned())?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("unexpected `{after}` after `]`")),
        };
        return Ok((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => Ok((host.to_owned(), parse_port(port)?)),
        _ if text.is_empty() => Err("empty server name".to_owned()),
        _ => Ok((text.to_owned(), default_port)),
    }
}

/// The resolver given with --dns, or the system's.
fn system_or(dns: Option<&Dns>) -> Result<Dns, smtp::Error> {
    match dns {
        Some(dns) => Ok(dns.clone()),
        None => Dns::new(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_ehlo, split_host_port};

    #[test]
    fn ehlo_names() {
        assert_eq!(parse_ehlo("[127.0.0.1]"), Ok("[127.0.0.1]".into()));
        assert!(parse_ehlo("").is_err());
        assert!(parse_ehlo("x\r\nRSET").is_err());
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("mx.example", 25),
            Ok(("mx.example".into(), 25))
        );
        assert_eq!(
            split_host_port("mx.example:587", 25),
            Ok(("mx.example".into(), 587))
        );
        assert_eq!(split_host_port("[::1]:2525", 25), Ok(("::1".into(), 2525)));
        assert_eq!(split_host_port("[::1]", 465), Ok(("::1".into(), 465)));
        assert_eq!(split_host_port("::1", 25), Ok(("::1".into(), 25)));
        assert!(split_host_port("mx:port", 25).is_err());
        assert!(split_host_port("", 25).is_err());
    }
}
