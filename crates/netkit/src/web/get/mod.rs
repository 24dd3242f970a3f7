//! `netkit web get` (also `netkit curl`): curl's everyday flags. The body
//! goes to stdout or `-o FILE`; heads and transcripts go where curl puts
//! them (`-i` on stdout, `-v` on stderr); failures end with curl's exit
//! codes.

mod body;
mod cookies;
mod exit;
mod flags;
mod output;
mod render;
mod report;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use http::header::{AUTHORIZATION, COOKIE, REFERER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method};
use web::{Client, ClientConfig, ClientRequest, Event, HttpVersion, IpFamily, MAX_REDIRECTS, Url};

use crate::duration;
use body::BodyFlags;
pub use exit::WRITE_ERROR;
use exit::{Failure, TIMEOUT, exit_code};
use report::Exchange;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The URLs to fetch, one after the other on one connection where they
    /// share an origin (http:// is assumed when no scheme is given)
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Write the body to FILE instead of stdout (once per URL, in order)
    #[arg(short, long, value_name = "FILE")]
    output: Vec<PathBuf>,
    /// Write the body to a file named as the URL's last path segment
    /// (once per URL, after those given -o)
    #[arg(short = 'O', long, action = clap::ArgAction::Count)]
    remote_name: u8,
    /// -O for every URL
    #[arg(long)]
    remote_name_all: bool,
    /// Create the directories an output file needs
    #[arg(long)]
    create_dirs: bool,
    /// Resume a partial download: `-C -` continues from the output file's size
    #[arg(short = 'C', long, value_name = "OFFSET", allow_hyphen_values = true)]
    continue_at: Option<String>,
    /// Print the status line and headers before the body
    #[arg(short = 'i', long)]
    include: bool,
    /// Send HEAD and print the status line and headers only
    #[arg(short = 'I', long, conflicts_with = "request")]
    head: bool,
    /// Show the connection, and the request and response heads (`> `, `< `)
    /// on stderr, credentials masked
    #[arg(short, long)]
    verbose: bool,
    /// No progress bar
    #[arg(short, long)]
    silent: bool,
    /// Show errors (they always are; accepted for curl's -sS)
    #[arg(short = 'S', long)]
    show_error: bool,
    /// Follow redirects (at most 10, or --max-redirs)
    #[arg(short = 'L', long)]
    location: bool,
    /// Redirects followed at most with -L
    #[arg(long, value_name = "N")]
    max_redirs: Option<usize>,
    /// Add or replace a request header, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The User-Agent header
    #[arg(short = 'A', long, value_name = "NAME")]
    user_agent: Option<String>,
    /// The Referer header
    #[arg(short = 'e', long, value_name = "URL")]
    referer: Option<String>,
    /// Basic authentication as USER; the password comes from
    /// NETKIT_HTTP_PASSWORD or is asked for on the terminal (never on the
    /// command line, where every user of the machine can read it)
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
    /// A bearer token read from @FILE (@- for stdin) or env:VARIABLE
    #[arg(long, value_name = "SOURCE")]
    oauth2_bearer: Option<String>,
    /// Send cookies: 'name=value; ...' as given, or from a cookie file
    #[arg(short = 'b', long, value_name = "DATA|FILE")]
    cookie: Option<String>,
    /// Write every cookie to FILE at the end, in curl's Netscape format
    #[arg(short = 'c', long, value_name = "FILE")]
    cookie_jar: Option<PathBuf>,
    /// Send the request through this HTTP proxy (http://HOST:PORT)
    #[arg(short = 'x', long, value_name = "URL")]
    proxy: Option<String>,
    /// Ask for a byte range only, e.g. 0-99, 100-, -500
    #[arg(short = 'r', long, value_name = "A-B", allow_hyphen_values = true)]
    range: Option<String>,
    /// Use this method (default: GET; POST with data; PUT with -T)
    #[arg(short = 'X', long, value_name = "METHOD")]
    request: Option<String>,
    /// Form data to POST, as application/x-www-form-urlencoded; @FILE or @-
    /// reads it (newlines removed); repeats are joined with &
    #[arg(short, long, value_name = "DATA", allow_hyphen_values = true)]
    data: Vec<String>,
    /// Like --data, but files are sent exactly as they are
    #[arg(long, value_name = "DATA", allow_hyphen_values = true)]
    data_binary: Vec<String>,
    /// Like --data, URL-encoded: content, =content, name=content, @file, name@file
    #[arg(long, value_name = "DATA", allow_hyphen_values = true)]
    data_urlencode: Vec<String>,
    /// POST JSON (inline or @FILE), with Content-Type and Accept application/json
    #[arg(long, value_name = "DATA", allow_hyphen_values = true)]
    json: Vec<String>,
    /// A multipart/form-data part: name=value, name=<file, or
    /// name=@file[;type=TYPE][;filename=NAME]
    #[arg(short = 'F', long, value_name = "NAME=VALUE")]
    form: Vec<String>,
    /// PUT this file, streamed (a URL ending in / gets the file's name)
    #[arg(short = 'T', long, value_name = "FILE")]
    upload_file: Option<PathBuf>,
    /// Put the --data in the query string and send GET
    #[arg(short = 'G', long)]
    get: bool,
    /// Ask for a compressed response (gzip, deflate, brotli, zstd) and decode
    /// it as it arrives
    #[arg(long)]
    compressed: bool,
    /// Accept any TLS certificate (for test servers only)
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Trust the certificates in this PEM file (CAs, or a server's own)
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Speak HTTP/1.1 only
    #[arg(long = "http1.1", conflicts_with = "http2")]
    http1: bool,
    /// Speak HTTP/2 only (with prior knowledge on http:// URLs)
    #[arg(long)]
    http2: bool,
    /// Use these addresses for HOST:PORT: HOST:PORT:ADDR[,ADDR]
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,
    /// Connect to HOST2:PORT2 for HOST1:PORT1 (empty parts match or keep)
    #[arg(long, value_name = "HOST1:PORT1:HOST2:PORT2")]
    connect_to: Vec<String>,
    /// IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Limit for resolving, connecting and the TLS handshake
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Give up on a transfer that takes longer than this (exit 28)
    #[arg(short = 'm', long, value_name = "DURATION", value_parser = duration::parse)]
    max_time: Option<Duration>,
    /// Try a transfer again up to N times after a transient failure: a
    /// timeout, or HTTP 408, 429, 500, 502, 503 or 504
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry: u32,
    /// Wait this long between tries (default: 1 s, doubling each time)
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    retry_delay: Option<Duration>,
    /// Retry only within this long from the first try
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    retry_max_time: Option<Duration>,
    /// Read the body at most this fast: bytes per second, or with k, M, G
    #[arg(long, value_name = "RATE", value_parser = flags::parse_rate)]
    limit_rate: Option<u64>,
    /// Fail with exit 22 on an HTTP status of 400 or more, printing no body
    #[arg(short = 'f', long, conflicts_with = "fail_with_body")]
    fail: bool,
    /// Fail with exit 22 on an HTTP status of 400 or more, after printing the body
    #[arg(long)]
    fail_with_body: bool,
    /// After each transfer, print FORMAT with curl's %{variables} (@FILE reads it)
    #[arg(short = 'w', long, value_name = "FORMAT")]
    write_out: Option<String>,
    /// Print one JSON object per transfer on stdout describing the exchange
    /// (the body is included when there is no -o)
    #[arg(long)]
    json_output: bool,
}

/// Runs every transfer; failures are printed here and the command ends
/// with curl's exit code for the last one.
pub async fn get(args: GetArgs) -> ExitCode {
    let result = run(&args).await;
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("netkit: {}", crate::error_chain(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// What every transfer of one command shares.
struct Session<'a> {
    args: &'a GetArgs,
    client: Client,
    headers: HeaderMap,
    built: body::Built,
    method: Method,
}

async fn run(args: &GetArgs) -> anyhow::Result<u8> {
    let session = Session::new(args)?;
    let mut code = 0;
    for (index, url) in args.urls.iter().enumerate() {
        let result = session.transfer_with_retries(index, url).await;
        if result != 0 {
            code = result;
        }
    }
    if let (Some(path), Some(store)) = (&args.cookie_jar, session.client.cookies()) {
        cookies::save(&store, path)?;
    }
    Ok(code)
}

impl<'a> Session<'a> {
    fn new(args: &'a GetArgs) -> anyhow::Result<Self> {
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
            max_redirects: match (args.location, args.max_redirs) {
                (false, _) => 0,
                (true, Some(limit)) => limit,
                (true, None) => MAX_REDIRECTS,
            },
            resolve: args
                .resolve
                .iter()
                .map(|text| flags::parse_resolve(text))
                .collect::<anyhow::Result<_>>()?,
            connect_to: args
                .connect_to
                .iter()
                .map(|text| flags::parse_connect_to(text))
                .collect::<anyhow::Result<_>>()?,
            family: match (args.ipv4, args.ipv6) {
                (true, _) => Some(IpFamily::V4),
                (_, true) => Some(IpFamily::V6),
                _ => None,
            },
        };
        let mut client = Client::new(config)?;
        let mut headers = HeaderMap::new();
        if args.cookie.is_some() || args.cookie_jar.is_some() {
            let (store, literal) = cookies::load(args.cookie.as_deref())?;
            client = client.with_cookies(store);
            if let Some(literal) = literal {
                headers.insert(
                    COOKIE,
                    HeaderValue::from_str(&literal).context("invalid --cookie")?,
                );
            }
        }
        if let Some(agent) = &args.user_agent {
            headers.insert(
                USER_AGENT,
                HeaderValue::from_str(agent).context("invalid --user-agent")?,
            );
        }
        if let Some(referer) = &args.referer {
            headers.insert(
                REFERER,
                HeaderValue::from_str(referer).context("invalid --referer")?,
            );
        }
        if let Some(user) = &args.user {
            headers.insert(AUTHORIZATION, flags::basic_auth(user)?);
        }
        if let Some(source) = &args.oauth2_bearer {
            let token = flags::secret(source)?;
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the bearer token is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if args.compressed {
            headers.insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("deflate, gzip, br, zstd"),
            );
        }
        if let Some(range) = &args.range {
            let value = HeaderValue::from_str(&format!("bytes={range}"))
                .with_context(|| format!("invalid --range {range}"))?;
            headers.insert(http::header::RANGE, value);
        }
        let flags = BodyFlags {
            data: &args.data,
            data_binary: &args.data_binary,
            data_urlencode: &args.data_urlencode,
            json: &args.json,
            form: &args.form,
            upload: args.upload_file.as_deref(),
        };
        let built = flags.build(args.get)?;
        // Explicit -H headers win over those the flags imply.
        let mut all = built.headers.clone();
        all.extend(headers);
        let explicit = flags::parse_headers(&args.headers)?;
        for name in explicit.keys() {
            all.remove(name);
            for value in explicit.get_all(name) {
                all.append(name.clone(), value.clone());
            }
        }
        let method = match (&args.request, args.head) {
            (Some(name), _) => Method::from_bytes(name.as_bytes())
                .with_context(|| format!("`{name}` is not a valid method"))?,
            (None, true) => Method::HEAD,
            (None, false) if args.upload_file.is_some() => Method::PUT,
            (None, false) if !flags.is_empty() && !args.get => Method::POST,
            (None, false) => Method::GET,
        };
        Ok(Self {
            args,
            client,
            headers: all,
            built,
            method,
        })
    }

    fn request(&self, text: &str) -> anyhow::Result<ClientRequest> {
        let mut url = Client::parse_url(text)?;
        if let Some(query) = &self.built.query {
            let joined = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
                _ => query.clone(),
            };
            url.set_query(Some(&joined));
        }
        if let Some(path) = &self.args.upload_file
            && url.path().ends_with('/')
            && let Some(name) = path.file_name()
        {
            url = url
                .join(
                    &percent_encoding::utf8_percent_encode(
                        &name.to_string_lossy(),
                        body::UNRESERVED,
                    )
                    .to_string(),
                )
                .context("invalid upload URL")?;
        }
        let mut request = ClientRequest::new(self.method.clone(), url);
        request.headers = self.headers.clone();
        request.body = self.built.body.clone();
        Ok(request)
    }

    /// Where URL number `index` goes: its -o, or its remote name, or stdout.
    fn destination(&self, index: usize, url: &Url) -> anyhow::Result<Option<PathBuf>> {
        if let Some(path) = self.args.output.get(index) {
            return Ok(Some(path.clone()));
        }
        let remote = index < self.args.output.len() + usize::from(self.args.remote_name)
            || self.args.remote_name_all;
        if !remote {
            return Ok(None);
        }
        let name = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Failure::new(WRITE_ERROR, format!("{url} has no file name for -O")))?;
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        if name.contains('/') || name == ".." {
            bail!("{url}: the remote name `{name}` is not a file name");
        }
        Ok(Some(PathBuf::from(name.into_owned())))
    }

    /// One URL, tried again as `--retry` says.
    async fn transfer_with_retries(&self, index: usize, text: &str) -> u8 {
        let args = self.args;
        let first = Instant::now();
        let mut delay = args.retry_delay.unwrap_or(Duration::from_secs(1));
        let mut left = args.retry;
        loop {
            let mut exchange = Exchange::new(text);
            let outcome = match args.max_time {
                Some(limit) => {
                    match tokio::time::timeout(
                        limit,
                        self.transfer(index, text, &mut exchange, left > 0),
                    )
                    .await
                    {
                        Ok(outcome) => outcome,
                        Err(_) => Err(Failure::new(
                            TIMEOUT,
                            format!("transfer took longer than --max-time {limit:?}"),
                        )
                        .into()),
                    }
                }
                None => self.transfer(index, text, &mut exchange, left > 0).await,
            };
            exchange.finish();
            let (code, retry_after) = match &outcome {
                Ok(output::Done::Complete) => (0, None),
                Ok(output::Done::Retry { status, after }) => {
                    (0, Some((format!("HTTP error {status}"), *after)))
                }
                Err(err) => {
                    let code = exit_code(err);
                    exchange.exit_code = code;
                    exchange.error = Some(crate::error_chain(err));
                    let transient = exit::is_transient(code).then(|| (err.to_string(), None));
                    (code, transient)
                }
            };
            if let Some((why, after)) = retry_after.filter(|_| left > 0) {
                let wait = after.unwrap_or(delay);
                let within = args
                    .retry_max_time
                    .is_none_or(|limit| first.elapsed() + wait <= limit);
                if within {
                    eprintln!(
                        "Warning: Problem : {why}. Will retry in {} seconds. {left} retries left.",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    left -= 1;
                    if args.retry_delay.is_none() {
                        delay = (delay * 2).min(Duration::from_secs(600));
                    }
                    continue;
                }
            }
            if let Err(err) = &outcome {
                eprintln!("netkit: {}", crate::error_chain(err));
            }
            self.report(&exchange);
            return code;
        }
    }

    /// `-w` and `--json-output` for a finished transfer.
    fn report(&self, exchange: &Exchange) {
        let mut stdout = std::io::stdout().lock();
        if let Some(format) = &self.args.write_out {
            let format = match format.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
                None => format.clone(),
            };
            let _ = stdout.write_all(exchange.write_out(&format).as_bytes());
        }
        if self.args.json_output {
            let _ = writeln!(stdout, "{}", exchange.json(exchange_body(exchange)));
        }
        let _ = stdout.flush();
    }

    async fn transfer(
        &self,
        index: usize,
        text: &str,
        exchange: &mut Exchange,
        may_retry: bool,
    ) -> anyhow::Result<output::Done> {
        let request = self.request(text)?;
        exchange.size_upload = request.body.len();
        let destination = self.destination(index, &request.url)?;
        output::transfer(self, request, destination, exchange, may_retry).await
    }
}

fn exchange_body(exchange: &Exchange) -> Option<serde_json::Value> {
    output::captured_body(exchange)
}

/// Renders events as `-v` and `-i` ask, and records them for reports.
/// With an output file (`to_file`), `-i` heads are kept in the exchange
/// for that file, as curl writes them there rather than to stdout.
fn observer<'e>(
    args: &GetArgs,
    exchange: &'e mut Exchange,
    to_file: bool,
) -> impl FnMut(Event) + Send + use<'e> {
    let verbose = args.verbose;
    // Like curl, -i shows every head received: redirects followed and a
    // proxy's answer to CONNECT included.
    let include = args.include || args.head;
    move |event: Event| {
        exchange.observe(&event);
        if verbose {
            eprint!("{}", render::transcript(&event));
        }
        if let (true, Event::Response(head)) = (include, &event) {
            let text = render::head_text(head.version, head.status, &head.headers);
            if to_file {
                exchange.heads.extend_from_slice(text.as_bytes());
            } else {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        }
    }
}

fn show_progress(args: &GetArgs) -> bool {
    !args.silent && std::io::stderr().is_terminal()
}
