//! `netkit mail send`: flags to a draft and a session, the transcript on
//! the terminal, and one exit code per stage.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use smtp::{
    AuthConfig, ClientConfig, Credentials, Dns, Draft, Envelope, ExtraHeader, Mailbox, Mechanism,
    Message, Observer, Password, Security, Server, Stage,
};

use super::report::JsonReport;
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
  netkit mail send --server 127.0.0.1:2525 --raw message.eml -t --json
      (the message as it is, recipients from To/Cc/Bcc, Bcc removed; one JSON object)

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
    /// Sender address, as `addr` or 'Name <addr>' (envelope and From:;
    /// with --raw the envelope only)
    #[arg(
        long,
        value_name = "ADDR",
        required_unless_present = "extract_recipients"
    )]
    from: Option<Mailbox>,
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

    /// Send this RFC 5322 message as it is (`-` reads stdin) instead of
    /// composing one; the envelope comes from --from/--to/--cc/--bcc
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["subject", "body", "body_file", "html_file", "attach", "header"])]
    raw: Option<PathBuf>,
    /// With --raw: the recipients from the message's To, Cc and Bcc (and
    /// the sender from From unless --from), Bcc removed before sending,
    /// as `sendmail -t`
    #[arg(short = 't', long = "extract-recipients", requires = "raw", conflicts_with_all = ["to", "cc", "bcc"])]
    extract_recipients: bool,
    /// Print one JSON object instead of the transcript: each stage with the
    /// commands and replies and its duration in ms, the TLS version, the
    /// recipients' fates, the queue ID
    #[arg(long)]
    json: bool,
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let (message, from, recipients) = match &args.raw {
        Some(source) => raw(&args, source)?,
        None => {
            let from = args.from.clone().context("--from is required")?;
            let recipients = args
                .to
                .iter()
                .chain(&args.cc)
                .chain(&args.bcc)
                .cloned()
                .collect();
            (compose(&args, &from)?, from, recipients)
        }
    };
    if args.dump {
        dump(&message).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if recipients.is_empty() {
        bail!("no recipient: give at least one --to, --cc or --bcc (or To/Cc/Bcc headers with -t)");
    }
    let config = client_config(&args).await?;
    let mut output = if args.json {
        Output::Json(JsonReport::default())
    } else {
        Output::Text(Transcript::new(args.quiet))
    };
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
            from: from.clone(),
            recipients,
        };
        if let Output::Json(report) = &mut output {
            report.begin(domain.as_deref());
        }
        let observer = output.observer();
        let outcome = match &domain {
            None => match server_from_flag(&args, dns.as_ref()).await {
                Ok(server) => smtp::send(&server, &config, &envelope, &message, observer).await,
                Err(err) => Err(err),
            },
            Some(domain) => match system_or(dns.as_ref()) {
                Ok(dns) => {
                    let port = default_port(&args);
                    smtp::send_to_domain(&dns, domain, port, &config, &envelope, &message, observer)
                        .await
                }
                Err(err) => Err(err),
            },
        };
        if let Err(err) = &outcome {
            failure.get_or_insert(err.stage);
        }
        output.outcome(&outcome);
    }
    let code = failure.map_or(0, exit_code);
    if let Output::Json(report) = output {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, &report.finish(code))?;
        writeln!(stdout).context("cannot write to stdout")?;
    }
    Ok(ExitCode::from(code))
}

/// How the session is shown: the transcript, or one JSON object at the end.
enum Output {
    Text(Transcript),
    Json(JsonReport),
}

impl Output {
    fn observer(&mut self) -> &mut dyn Observer {
        match self {
            Output::Text(transcript) => transcript,
            Output::Json(report) => report,
        }
    }

    fn outcome(&mut self, outcome: &Result<smtp::Delivery, smtp::Error>) {
        let transcript = match self {
            Output::Json(report) => return report.end(outcome),
            Output::Text(transcript) => transcript,
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
            Err(err) => transcript.problem(&format!("{} failed: {err}", err.stage)),
        }
    }
}

/// `--raw FILE|-`: the message as it is, its envelope from the flags or,
/// with -t, from its own headers (`sendmail -t`), Bcc then taken out.
fn raw(args: &SendArgs, source: &Path) -> anyhow::Result<(Message, Mailbox, Vec<Mailbox>)> {
    let mut bytes = Vec::new();
    if source == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the message from stdin")?;
    } else {
        bytes =
            std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    }
    if !args.extract_recipients {
        let from = args
            .from
            .clone()
            .context("--raw needs --from, or -t to read From:")?;
        let recipients = args
            .to
            .iter()
            .chain(&args.cc)
            .chain(&args.bcc)
            .cloned()
            .collect();
        return Ok((Message::from_bytes(bytes), from, recipients));
    }
    let headers = smtp::header_envelope(&bytes).context("cannot read the message's addresses")?;
    let from = match (&args.from, headers.from.first()) {
        (Some(from), _) | (None, Some(from)) => from.clone(),
        (None, None) => bail!("the message has no From: header; give --from"),
    };
    let bytes = smtp::without_bcc(&bytes);
    Ok((Message::from_bytes(bytes), from, headers.recipients))
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

fn compose(args: &SendArgs, from: &Mailbox) -> anyhow::Result<Message> {
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
        from: Some(from.clone()),
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
