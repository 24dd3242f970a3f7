//! `netkit web get`: a small curl. The body goes to stdout or `-o FILE`;
//! heads and transcripts go where curl puts them (`-i` on stdout, `-v` on
//! stderr).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use indicatif::{ProgressBar, ProgressStyle};
use web::{Client, ClientConfig, ClientError, ClientRequest, Event, HttpVersion, MAX_REDIRECTS};

use crate::duration;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The URL to fetch (http:// is assumed when no scheme is given)
    url: String,
    /// Write the body to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the status line and headers before the body
    #[arg(short = 'i', long)]
    include: bool,
    /// Send HEAD and print the status line and headers only
    #[arg(short = 'I', long, conflicts_with = "request")]
    head: bool,
    /// Show the connection, and the request and response heads (`> `, `< `) on stderr
    #[arg(short, long)]
    verbose: bool,
    /// Follow redirects (at most 10)
    #[arg(short = 'L', long)]
    location: bool,
    /// Add or replace a request header, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Send the request through this HTTP proxy (http://HOST:PORT)
    #[arg(short = 'x', long, value_name = "URL")]
    proxy: Option<String>,
    /// Ask for a byte range only, e.g. 0-99, 100-, -500
    #[arg(long, value_name = "A-B", allow_hyphen_values = true)]
    range: Option<String>,
    /// Use this method instead of GET (the request has no body)
    #[arg(short = 'X', long, value_name = "METHOD")]
    request: Option<String>,
    /// Fail with exit 22 on an HTTP status of 400 or more, printing no body
    #[arg(short = 'f', long, conflicts_with = "fail_with_body")]
    fail: bool,
    /// Fail with exit 22 on an HTTP status of 400 or more, after printing the body
    #[arg(long)]
    fail_with_body: bool,
    /// Accept any TLS certificate (for test servers only)
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Trust the CA certificates in this PEM file, besides the system's
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Speak HTTP/1.1 only
    #[arg(long = "http1.1", conflicts_with = "http2")]
    http1: bool,
    /// Speak HTTP/2 only (with prior knowledge on http:// URLs)
    #[arg(long)]
    http2: bool,
    /// Limit for resolving, connecting and the TLS handshake
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Give up if the whole transfer takes longer than this
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    max_time: Option<Duration>,
}

/// Runs the transfer; failures are printed here and end with curl's exit
/// code for them.
pub async fn get(args: GetArgs) -> ExitCode {
    let result = match args.max_time {
        Some(limit) => tokio::time::timeout(limit, transfer(args))
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    TIMEOUT,
                    format!("transfer took longer than --max-time {limit:?}"),
                )
                .into())
            }),
        None => transfer(args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netkit: {}", crate::error_chain(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// curl's exit codes (curl(1), EXIT CODES) for the failures `web get` has.
const UNSUPPORTED_PROTOCOL: u8 = 1;
const MALFORMED_URL: u8 = 3;
const COULD_NOT_RESOLVE: u8 = 6;
const COULD_NOT_CONNECT: u8 = 7;
const WEIRD_SERVER_REPLY: u8 = 8;
const HTTP_ERROR: u8 = 22;
pub const WRITE_ERROR: u8 = 23;
const TIMEOUT: u8 = 28;
const TLS_HANDSHAKE: u8 = 35;
const TOO_MANY_REDIRECTS: u8 = 47;
const RECEIVE_ERROR: u8 = 56;
const UNTRUSTED_CERTIFICATE: u8 = 60;

/// A failure that carries its own exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.code;
        }
        if let Some(err) = cause.downcast_ref::<ClientError>() {
            return client_code(err);
        }
        if let Some(err) = cause.downcast_ref::<std::io::Error>()
            && err.kind() == std::io::ErrorKind::BrokenPipe
        {
            return WRITE_ERROR;
        }
    }
    1
}

fn client_code(err: &ClientError) -> u8 {
    match err {
        ClientError::InvalidUrl(_) | ClientError::InvalidProxy(_) => MALFORMED_URL,
        ClientError::UnsupportedScheme(_) => UNSUPPORTED_PROTOCOL,
        ClientError::InvalidRequest(_) | ClientError::TlsConfig(_) => 1,
        ClientError::Resolve { .. } => COULD_NOT_RESOLVE,
        ClientError::Refused { .. } | ClientError::Connect { .. } => COULD_NOT_CONNECT,
        ClientError::ConnectTimeout { .. }
        | ClientError::TlsTimeout { .. }
        | ClientError::ProxyTimeout { .. } => TIMEOUT,
        ClientError::Tls { .. } if err.is_untrusted_certificate() => UNTRUSTED_CERTIFICATE,
        ClientError::Tls { .. } => TLS_HANDSHAKE,
        ClientError::SpeaksTls { .. } => WEIRD_SERVER_REPLY,
        ClientError::Http { .. } | ClientError::ProxyRefused { .. } => RECEIVE_ERROR,
        ClientError::TooManyRedirects(_) => TOO_MANY_REDIRECTS,
        ClientError::BadRedirect(_) => MALFORMED_URL,
    }
}

async fn transfer(args: GetArgs) -> anyhow::Result<ExitCode> {
    let url = Client::parse_url(&args.url)?;
    let proxy = match &args.proxy {
        Some(text) => Some(Client::parse_url(text).context("invalid --proxy")?),
        None => None,
    };
    let config = ClientConfig {
        tls: tls::ClientOptions {
            insecure: args.insecure,
            ca_file: args.cacert.clone(),
        },
        proxy,
        version: if args.http2 {
            HttpVersion::Http2
        } else if args.http1 {
            HttpVersion::Http1
        } else {
            HttpVersion::Auto
        },
        connect_timeout: args.connect_timeout,
        max_redirects: if args.location { MAX_REDIRECTS } else { 0 },
    };
    let client = Client::new(config)?;
    let method = if args.head {
        Method::HEAD
    } else {
        match &args.request {
            Some(name) => Method::from_bytes(name.as_bytes())
                .with_context(|| format!("`{name}` is not a valid method"))?,
            None => Method::GET,
        }
    };
    let mut headers = parse_headers(&args.headers)?;
    if let Some(range) = &args.range {
        let value = HeaderValue::from_str(&format!("bytes={range}"))
            .with_context(|| format!("invalid --range {range}"))?;
        headers.insert(http::header::RANGE, value);
    }
    let request = ClientRequest {
        method,
        url: url.clone(),
        headers,
    };

    let verbose = args.verbose;
    // Like curl, -i shows every head received: redirects followed and a
    // proxy's answer to CONNECT included.
    let include = args.include || args.head;
    let mut render = move |event: Event| {
        if verbose {
            eprint!("{}", transcript(&event));
        }
        if let (true, Event::Response(head)) = (include, &event) {
            let mut stdout = std::io::stdout().lock();
            let _ =
                stdout.write_all(head_text(head.version, head.status, &head.headers).as_bytes());
            let _ = stdout.flush();
        }
    };
    let mut response = client.send(request, &mut render).await?;
    let failed =
        (response.status.as_u16() >= 400 && (args.fail || args.fail_with_body)).then(|| {
            Failure::new(
                HTTP_ERROR,
                format!(
                    "HTTP {} {} from {}",
                    response.status.as_u16(),
                    response.status.canonical_reason().unwrap_or(""),
                    response.url
                ),
            )
        });
    let failed = match failed {
        Some(failure) if args.fail => return Err(failure.into()),
        failed => failed,
    };
    if args.head {
        return match failed {
            Some(failure) => Err(failure.into()),
            None => Ok(ExitCode::SUCCESS),
        };
    }

    let length = response
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    let (mut out, progress): (Box<dyn Write>, Option<ProgressBar>) = match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let progress = std::io::stderr()
                .is_terminal()
                .then(|| progress_bar(length));
            (
                Box::new(BufWriter::with_capacity(256 * 1024, file)),
                progress,
            )
        }
        None => (
            Box::new(BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout().lock(),
            )),
            None,
        ),
    };
    let written = async {
        while let Some(chunk) = response.chunk().await? {
            out.write_all(&chunk).map_err(write_error)?;
            if let Some(progress) = &progress {
                progress.inc(chunk.len() as u64);
            }
        }
        out.flush().map_err(write_error)?;
        anyhow::Ok(())
    }
    .await;
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    written?;
    match failed {
        Some(failure) => Err(failure.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn write_error(err: std::io::Error) -> anyhow::Error {
    Failure::new(WRITE_ERROR, format!("cannot write the body: {err}")).into()
}

fn parse_headers(lines: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("header `{line}` is not 'Name: value'");
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("`{}` is not a valid header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("invalid value for header {name}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn progress_bar(length: Option<u64>) -> ProgressBar {
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

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The status line and headers as curl's `-i` prints them.
fn head_text(version: Version, status: http::StatusCode, headers: &HeaderMap) -> String {
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

/// One event as `-v` shows it: `*` for the connection, `>` for what was
/// sent, `<` for what came back.
fn transcript(event: &Event) -> String {
    match event {
        Event::Connecting { addr } => format!("*   Trying {addr}...\n"),
        Event::Connected { addr } => format!("* Connected to {addr}\n"),
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
                text.push_str(&format!(
                    "> {name}: {}\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_from_the_command_line() {
        let headers = parse_headers(&["X-One: 1".into(), "Accept:text/html ".into()]).unwrap();
        assert_eq!(headers["x-one"], "1");
        assert_eq!(headers["accept"], "text/html");
        assert!(parse_headers(&["no colon".into()]).is_err());
        assert!(parse_headers(&["bad name: x".into()]).is_err());
    }

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
}
