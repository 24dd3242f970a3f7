//! `netkit web serve`: flags (and `--config`) to `ServerConfig`, reloads
//! on SIGHUP, and the access log writer.

mod site_file;

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, CommandFactory};
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::signal::unix::{Signal, SignalKind, signal};
use web::htpasswd::Htpasswd;
use web::{
    AccessEntry, AccessLog, BasicAuth, CorsOrigins, Reloader, Root, Server, ServerConfig,
    SiteConfig, SiteSettings, UploadPolicy,
};

use crate::duration;
use crate::serve::{GraceArgs, LimitArgs, Shutdown, TlsArgs};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory to serve; without it, a small built-in site
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Read settings from this TOML file: every flag by its long name,
    /// and headers per path pattern (see the README); flags given here
    /// win. SIGHUP rereads it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, repeatable (0.0.0.0:PORT for every IPv4
    /// interface, [::]:PORT for IPv6); TLS when a certificate is given
    /// and there is no --tls-bind
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: Vec<SocketAddr>,
    /// Also listen with TLS on ADDR (repeatable); --bind addresses then
    /// stay cleartext
    #[arg(long, value_name = "ADDR")]
    tls_bind: Vec<SocketAddr>,
    /// Cleartext listeners answer every request with a 308 to the first
    /// --tls-bind address's port
    #[arg(long)]
    redirect_http_to_https: bool,
    /// Send Strict-Transport-Security (max-age in seconds) on HTTPS
    /// responses
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "31536000")]
    hsts: Option<u64>,
    /// List directories that have no index.html
    #[arg(long)]
    list: bool,
    /// Serve dotfiles (.env, .git/…); by default they are 404
    #[arg(long)]
    hidden: bool,
    /// Follow symlinks that lead outside DIR; by default they are refused
    #[arg(long)]
    follow_symlinks: bool,
    /// Close a connection whose request head (or TLS handshake) is not
    /// complete within this time; also the keep-alive idle limit
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    header_timeout: Duration,
    /// Close a connection whose client has read nothing of a response for
    /// this long
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    send_timeout: Duration,
    #[command(flatten)]
    limits: LimitArgs<1024, { web::MAX_PER_CLIENT as u32 }, 0>,
    /// Threads serving connections, each with its own event loop
    /// [default: one per CPU the process may use]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Append the access log to FILE instead of stdout
    #[arg(
        long = "access-log",
        alias = "log",
        value_name = "FILE",
        conflicts_with = "quiet"
    )]
    access_log: Option<PathBuf>,
    /// No access log
    #[arg(long, short)]
    quiet: bool,
    /// Access log lines: Combined Log Format, or one JSON object a line
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Combined)]
    log_format: LogFormat,
    /// Add this header to every response (repeatable), e.g.
    /// 'X-Frame-Options: DENY'
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = header_flag)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Cache-Control of successful responses, e.g. 'public, max-age=3600'
    #[arg(long, value_name = "POLICY", value_parser = header_value_flag)]
    cache_control: Option<HeaderValue>,
    /// Let pages from any origin read the site (CORS: Access-Control-Allow-Origin: *)
    #[arg(long, conflicts_with = "cors_origin")]
    cors: bool,
    /// Let pages from these origins read the site (CORS), e.g.
    /// https://app.example (repeatable)
    #[arg(long, value_name = "ORIGIN", num_args = 1.., value_parser = header_value_flag)]
    cors_origin: Vec<HeaderValue>,
    /// Require HTTP Basic auth with the users of this htpasswd file
    /// (bcrypt lines from `htpasswd -B`, or Argon2)
    #[arg(long, value_name = "FILE")]
    auth_file: Option<PathBuf>,
    /// The realm browsers show in their login prompt
    #[arg(long, value_name = "NAME", default_value = "netkit")]
    realm: String,
    /// Allow --auth-file over plain HTTP on an address other than
    /// loopback (passwords then cross the network readable)
    #[arg(long)]
    allow_insecure_auth: bool,
    /// A single-page app: unknown paths without a file extension get
    /// DIR/index.html with 200
    #[arg(long)]
    spa: bool,
    /// Unknown paths get this file of DIR (e.g. 200.html) with 200
    #[arg(long, value_name = "FILE", conflicts_with = "spa")]
    fallback: Option<String>,
    /// Answer an error status with a file of DIR, keeping the status
    /// (repeatable), e.g. 404=404.html
    #[arg(long, value_name = "STATUS=FILE", value_parser = error_page_flag)]
    error_page: Vec<(StatusCode, String)>,
    /// Take file uploads into listed directories: a form on each listing
    /// (multipart POST to the directory's URL); needs --list
    #[arg(long)]
    upload: bool,
    /// Let an upload replace a file of the same name (refused by default)
    #[arg(long)]
    overwrite: bool,
    /// The largest upload request taken (e.g. 512K, 100M, 2G)
    #[arg(long, value_name = "SIZE", default_value = "100M", value_parser = crate::size::parse)]
    max_upload_size: u64,
    #[command(flatten)]
    grace: GraceArgs,
}

fn error_page_flag(text: &str) -> Result<(StatusCode, String), String> {
    let (code, file) = text
        .split_once('=')
        .ok_or_else(|| "expected STATUS=FILE, e.g. 404=404.html".to_owned())?;
    let status = code
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|status| status.is_client_error() || status.is_server_error())
        .ok_or_else(|| format!("{code:?} is not an error status (400-599)"))?;
    Ok((status, file.trim().to_owned()))
}

/// A file named by --fallback or --error-page: a URL path under DIR,
/// which must exist now so a typo shows at start-up.
fn site_file(dir: &std::path::Path, flag: &str, file: &str) -> Result<String, String> {
    let relative = file.trim_start_matches('/');
    if !dir.join(relative).is_file() {
        return Err(format!("{flag} {file}: no such file in {}", dir.display()));
    }
    let path = format!("/{relative}");
    if path.parse::<http::Uri>().is_err() {
        return Err(format!(
            "{flag} {file}: name a file whose name needs no escaping in a URL"
        ));
    }
    Ok(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    Combined,
    Json,
}

fn header_flag(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    web::parse_header(text)
}

fn header_value_flag(text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text).map_err(|_| "has characters a header cannot hold".to_owned())
}

/// Misuse found after the flags parsed: exit 2, as clap does.
fn usage(message: &str) -> ExitCode {
    eprintln!("netkit: {message}");
    ExitCode::from(2)
}

/// The settings beyond files, from the flags; `Err` is a usage error.
fn site_settings(args: &ServeArgs, tls: bool) -> Result<SiteSettings, String> {
    let cors = if args.cors {
        Some(CorsOrigins::Any)
    } else if !args.cors_origin.is_empty() {
        Some(CorsOrigins::List(args.cors_origin.clone()))
    } else {
        None
    };
    let auth = match &args.auth_file {
        Some(path) => {
            let plain = args
                .bind
                .iter()
                .filter(|_| !tls || !args.tls_bind.is_empty())
                .find(|addr| !addr.ip().is_loopback());
            if let Some(addr) =
                plain.filter(|_| !args.allow_insecure_auth && !args.redirect_http_to_https)
            {
                return Err(format!(
                    "--auth-file on {addr} without TLS would send passwords readable by anyone on the path; \
                     serve HTTPS (--tls-cert/--tls-key), bind a loopback address, or pass --allow-insecure-auth"
                ));
            }
            let users = Htpasswd::load(path)
                .map_err(|err| format!("--auth-file {}: {err}", path.display()))?;
            if users.is_empty() {
                return Err(format!("--auth-file {}: no users", path.display()));
            }
            Some(BasicAuth::new(users, &args.realm))
        }
        None => None,
    };
    let dir = args.dir.as_deref().unwrap_or(std::path::Path::new("."));
    let fallback = match &args.fallback {
        Some(file) => Some(site_file(dir, "--fallback", file)?),
        None => None,
    };
    let error_pages = args
        .error_page
        .iter()
        .map(|(status, file)| Ok((*status, site_file(dir, "--error-page", file)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SiteSettings {
        spa: args.spa,
        fallback,
        error_pages,
        headers: args.headers.clone(),
        cache_control: args.cache_control.clone(),
        cors,
        auth,
        redirect_to_https: None,
        rules: Vec::new(),
    })
}

/// Flag combinations checked once the config file is merged in (clap
/// sees only the command line).
fn check_combinations(args: &ServeArgs) -> Result<(), String> {
    let needs_dir = [
        (args.spa, "--spa"),
        (args.fallback.is_some(), "--fallback"),
        (!args.error_page.is_empty(), "--error-page"),
        (args.upload, "--upload"),
    ];
    if let Some((_, flag)) = needs_dir.iter().find(|(set, _)| *set && args.dir.is_none()) {
        return Err(format!("{flag} needs a directory to serve (DIR)"));
    }
    let conflicts = [
        (args.spa && args.fallback.is_some(), "--spa and --fallback"),
        (
            args.cors && !args.cors_origin.is_empty(),
            "--cors and --cors-origin",
        ),
        (
            args.quiet && args.access_log.is_some(),
            "--quiet and --access-log",
        ),
        (
            args.tls.self_signed && args.tls.tls_cert.is_some(),
            "--self-signed and --tls-cert",
        ),
    ];
    if let Some((_, flags)) = conflicts.iter().find(|(both, _)| *both) {
        return Err(format!("{flags} cannot be used together"));
    }
    if args.upload && !args.list {
        return Err("--upload puts its form on the listings: add --list".into());
    }
    if args.overwrite && !args.upload {
        return Err("--overwrite is for --upload".into());
    }
    if args.tls.tls_cert.is_some() != args.tls.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    if args.redirect_http_to_https && args.tls_bind.is_empty() {
        return Err("--redirect-http-to-https needs --tls-bind".into());
    }
    let tls = args.tls.identity().is_some();
    if !tls && (!args.tls_bind.is_empty() || args.hsts.is_some()) {
        return Err("--tls-bind and --hsts need --tls-cert/--tls-key or --self-signed".into());
    }
    Ok(())
}

impl ServeArgs {
    /// The event log follows the access log's format.
    pub fn log_format(&self) -> crate::serve::LogFormat {
        match self.log_format {
            LogFormat::Combined => crate::serve::LogFormat::Text,
            LogFormat::Json => crate::serve::LogFormat::Json,
        }
    }
}

/// The flags with the config file merged in, and the site settings they
/// make. Made at start-up and again on each SIGHUP.
#[derive(Debug)]
struct Loaded {
    args: ServeArgs,
    settings: SiteSettings,
}

/// `given` says which flags the command line gave (they win over the
/// file); `Err` is a message for the user.
fn load(command_line: &ServeArgs, given: &ArgMatches) -> Result<Loaded, String> {
    let mut args = command_line.clone();
    let rules = match &command_line.config {
        Some(path) => site_file::apply(&mut args, given, path)?,
        None => Vec::new(),
    };
    check_combinations(&args)?;
    let mut settings = site_settings(&args, args.tls.identity().is_some())?;
    settings.rules = rules;
    Ok(Loaded { args, settings })
}

/// Which flags the command line gave: the process's arguments parsed
/// again, down to `web serve`.
fn command_line_flags() -> ArgMatches {
    let all = crate::cli::Cli::command().get_matches_from(std::env::args_os());
    all.subcommand_matches("web")
        .and_then(|web| web.subcommand_matches("serve"))
        .cloned()
        .unwrap_or_default()
}

/// The listening addresses, TLS ones first (so redirects can name the
/// port actually bound), each with whether it speaks TLS.
fn addresses(args: &ServeArgs) -> Vec<(SocketAddr, bool)> {
    let tls = args.tls.identity().is_some();
    let bind_is_tls = tls && args.tls_bind.is_empty();
    let mut all: Vec<_> = args.tls_bind.iter().map(|&addr| (addr, true)).collect();
    all.extend(args.bind.iter().map(|&addr| (addr, bind_is_tls)));
    all.sort_by_key(|&(_, secure)| !secure);
    all
}

/// What one listener serves: the site's settings, plus HSTS on TLS or the
/// redirect to `https_port` on cleartext.
fn site_config(loaded: &Loaded, secure: bool, https_port: Option<u16>) -> SiteConfig {
    let args = &loaded.args;
    let mut settings = loaded.settings.clone();
    if secure {
        if let Some(max_age) = args.hsts {
            settings.headers.push((
                http::header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_str(&format!("max-age={max_age}")).expect("digits are a value"),
            ));
        }
    } else if args.redirect_http_to_https {
        settings.redirect_to_https = https_port;
    }
    SiteConfig {
        root: args.dir.clone().map_or(Root::BuiltIn, Root::Directory),
        list: args.list,
        hidden: args.hidden,
        follow_symlinks: args.follow_symlinks,
        upload: args.upload.then_some(UploadPolicy {
            max_size: args.max_upload_size,
            overwrite: args.overwrite,
        }),
        settings,
    }
}

pub async fn serve(command_line: ServeArgs) -> anyhow::Result<ExitCode> {
    let given = match command_line.config {
        Some(_) => command_line_flags(),
        None => ArgMatches::default(),
    };
    let loaded = match load(&command_line, &given) {
        Ok(loaded) => loaded,
        Err(message) => return Ok(usage(&message)),
    };
    let args = &loaded.args;
    let tls = args.tls.identity();
    let shutdown = Shutdown::install(&args.grace)?;
    let hangup = match &command_line.config {
        Some(_) => Some(signal(SignalKind::hangup()).context("cannot handle SIGHUP")?),
        None => None,
    };
    let (access_log, log_writer) = if args.quiet {
        (None, None)
    } else {
        let (log, writer) = access_log(args.access_log.as_deref(), args.log_format)?;
        (Some(log), Some(writer))
    };
    let mut servers = Vec::new();
    let mut https_port = None;
    for (addr, secure) in addresses(args) {
        let config = ServerConfig {
            addr,
            site: site_config(&loaded, secure, https_port),
            header_read_timeout: args.header_timeout,
            send_timeout: args.send_timeout,
            limits: args.limits.limits(),
            tls: if secure { tls.clone() } else { None },
            access_log: access_log.clone(),
            workers: match args.workers {
                Some(workers) => workers as usize,
                None => std::thread::available_parallelism().map_or(1, usize::from),
            },
        };
        let server = Server::bind(config).await?;
        println!("listening on {}", server.url());
        if secure && https_port.is_none() {
            https_port = Some(server.local_addr().port());
        }
        servers.push(server);
    }
    match &args.dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving"),
        None => tracing::info!("serving the built-in site"),
    }
    let token = shutdown.token();
    let reloaders: Vec<_> = servers
        .iter()
        .map(|server| (server.is_tls(), server.reloader()))
        .collect();
    let reloading = hangup.map(|hangup| Reloading {
        hangup,
        command_line: command_line.clone(),
        given,
        current: loaded,
        servers: reloaders,
        https_port,
    });
    let result = shutdown
        .run(async move {
            let mut running = tokio::task::JoinSet::new();
            for server in servers {
                running.spawn(server.run(token.clone()));
            }
            if let Some(reloading) = reloading {
                let token = token.clone();
                running.spawn(async move {
                    tokio::select! {
                        _ = reloading.run() => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
            while running.join_next().await.is_some() {}
            Ok(())
        })
        .await;
    if let Some(writer) = log_writer {
        writer.finish();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Rereads the config file on SIGHUP and gives every server the new site;
/// a file with a mistake is refused and the running site stays.
struct Reloading {
    hangup: Signal,
    command_line: ServeArgs,
    given: ArgMatches,
    current: Loaded,
    servers: Vec<(bool, Reloader)>,
    https_port: Option<u16>,
}

impl Reloading {
    async fn run(mut self) {
        let path = self.command_line.config.clone().unwrap_or_default();
        let path = path.display();
        while self.hangup.recv().await.is_some() {
            // A root that is gone would fail every server's reload; it is
            // refused before any of them changes.
            let loaded = match load(&self.command_line, &self.given).and_then(|loaded| match loaded
                .args
                .dir
                .as_deref()
                .filter(|dir| !dir.is_dir())
            {
                Some(dir) => Err(format!("{}: not a directory", dir.display())),
                None => Ok(loaded),
            }) {
                Ok(loaded) => loaded,
                Err(message) => {
                    tracing::error!(
                        "SIGHUP: {path} refused, still serving the previous configuration: {message}"
                    );
                    continue;
                }
            };
            for flag in needs_restart(&self.current.args, &loaded.args) {
                tracing::warn!("SIGHUP: {flag} changed in {path}; it takes effect on restart");
            }
            let mut failed = false;
            for (secure, reloader) in &self.servers {
                if let Err(err) = reloader.reload(&site_config(&loaded, *secure, self.https_port)) {
                    tracing::error!("SIGHUP: {path} refused: {err}");
                    failed = true;
                }
            }
            if !failed {
                tracing::info!("SIGHUP: reloaded {path}");
                self.current = loaded;
            }
        }
    }
}

/// The settings a running server cannot change (its sockets, threads,
/// limits and logs) that differ between `old` and `new`.
fn needs_restart(old: &ServeArgs, new: &ServeArgs) -> Vec<&'static str> {
    let fixed = |args: &ServeArgs| {
        [
            ("bind", format!("{:?}", args.bind)),
            ("tls-bind", format!("{:?}", args.tls_bind)),
            ("the TLS identity", format!("{:?}", args.tls)),
            ("workers", format!("{:?}", args.workers)),
            ("the connection limits", format!("{:?}", args.limits)),
            ("header-timeout", format!("{:?}", args.header_timeout)),
            ("send-timeout", format!("{:?}", args.send_timeout)),
            (
                "the access log",
                format!("{:?}", (&args.access_log, args.quiet, args.log_format)),
            ),
            ("grace", format!("{:?}", args.grace)),
        ]
    };
    fixed(old)
        .into_iter()
        .zip(fixed(new))
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect()
}

/// The thread writing the access log, which ends once the server is gone.
struct LogWriter {
    done: mpsc::Receiver<()>,
}

impl LogWriter {
    /// Waits (briefly) for the last entries to be written, so the lines of
    /// requests finished during shutdown are not lost when the process exits.
    fn finish(self) {
        let _ = self.done.recv_timeout(Duration::from_secs(1));
    }
}

/// Entries are written by a thread of their own, so a slow terminal or
/// disk never holds up a response; lines are flushed whenever the queue
/// runs dry.
fn access_log(
    file: Option<&std::path::Path>,
    format: LogFormat,
) -> anyhow::Result<(AccessLog, LogWriter)> {
    let line = move |entry: &AccessEntry| match format {
        LogFormat::Combined => entry.to_string(),
        LogFormat::Json => entry.to_json(),
    };
    let mut out: Box<dyn Write + Send> = match file {
        Some(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the access log {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let (tx, rx) = mpsc::channel::<AccessEntry>();
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            let mut out = BufWriter::new(&mut out);
            while let Ok(entry) = rx.recv() {
                let _ = writeln!(out, "{}", line(&entry));
                while let Ok(entry) = rx.try_recv() {
                    let _ = writeln!(out, "{}", line(&entry));
                }
                let _ = out.flush();
            }
            let _ = done_tx.send(());
        })
        .context("cannot start the access log writer")?;
    // A sender is shared by every worker thread without a lock.
    let log = AccessLog::new(move |entry| {
        let _ = tx.send(entry);
    });
    Ok((log, LogWriter { done }))
}
