//! `netkit proxy`: the caching forward proxy and its purge command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use proxy::{AccessRecord, Config, ForwardedFor, Hierarchy, IpNet, Proxy, PurgeError};
use tokio::sync::mpsc;

use crate::serve::{GraceArgs, LimitArgs, LogArgs, LogFormat, Shutdown};
use crate::{duration, size};

const DEFAULT_ADDR: &str = "127.0.0.1:8888";
/// The longest an access log line waits to be written.
const ACCESS_LOG_REST: Duration = Duration::from_millis(20);

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Run the caching proxy (browsers: set it as the HTTP and HTTPS proxy)
    #[command(after_help = "\
Examples:
  netkit proxy serve                               on 127.0.0.1:8888, loopback clients only
  curl -x http://127.0.0.1:8888 http://example.com/          absolute-form, as browsers send
  curl http://127.0.0.1:8888/example.com/                    the lab's path form
  curl -x http://127.0.0.1:8888 https://example.com/         HTTPS through a CONNECT tunnel
  curl -x http://127.0.0.1:8888 http://netkit.proxy/stats    hits, misses, disk use (JSON)
  netkit proxy serve --bind 0.0.0.0:3128 --allow 192.168.1.0/24 --cache-size 10GiB

Sizes take B, KiB, MiB, GiB (K, M, G and KB, MB, GB mean the same: powers of 1024).
One line per request goes to stdout (or --access-log) in Squid's native
access.log format.")]
    Serve(ServeArgs),
    /// Remove a URL (every stored variant) from the cache, with the proxy running or not
    #[command(after_help = "\
Examples:
  netkit proxy purge http://example.com/logo.png
  netkit proxy purge --proxy 127.0.0.1:3128 http://example.com/
  netkit proxy purge --cache-dir /var/cache/netkit http://example.com/

Without --cache-dir the proxy at --proxy is asked (a PURGE request); when
nothing listens there, the entry is removed from the default cache directory
directly. With --cache-dir the entry is removed from that directory, unless a
running proxy holds it: then that proxy is asked, at --proxy.")]
    Purge(PurgeArgs),
}

impl ProxyCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, ProxyCommand::Serve(_))
    }

    pub fn log_format(&self) -> LogFormat {
        match self {
            ProxyCommand::Serve(args) => args.log.log_format,
            ProxyCommand::Purge(_) => LogFormat::Text,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    bind: SocketAddr,
    /// Clients allowed to use the proxy, as CIDR (repeatable; default:
    /// 127.0.0.0/8 and ::1). Everyone else gets 403
    #[arg(long, value_name = "CIDR")]
    allow: Vec<IpNet>,
    /// A port CONNECT may reach besides 443 (repeatable)
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    connect_port: Vec<u16>,
    /// Ports plain HTTP requests may reach, as a list of ports and ranges
    /// (Squid's Safe_ports); others get 403
    #[arg(long, value_name = "LIST", default_value = "80,443,1025-65535", value_parser = parse_safe_ports)]
    safe_ports: SafePorts,
    /// Let clients reach origins on this host (loopback and its interface
    /// addresses), refused by default as Squid's to_localhost
    #[arg(long)]
    allow_localhost_origins: bool,
    /// What to do with X-Forwarded-For: append the client's address, pass
    /// it on as the client sent it, or delete it
    #[arg(long, value_name = "MODE", default_value = "append")]
    forwarded_for: ForwardedForArg,
    /// Cache directory [default: $XDG_CACHE_HOME or ~/.cache, then netkit-proxy-cache]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Disk space for the cache; least recently used entries go first
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = size::parse)]
    cache_size: u64,
    /// Larger responses are passed through without being cached
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = size::parse)]
    max_object_size: u64,
    /// Memory for the bodies of hot small objects (0 turns the memory tier off)
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = size::parse)]
    memory_size: u64,
    /// Largest body kept in memory
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = size::parse)]
    memory_object_size: u64,
    /// Request bodies larger than this get 413
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = size::parse)]
    max_body: u64,
    /// Time allowed to connect to an origin (then 504)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Time allowed for an origin to start answering (then 504)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    origin_timeout: Duration,
    /// Serve a stored response up to this long past its freshness when its
    /// revalidation fails (refused, timed out, 5xx), as if it had said
    /// `stale-if-error`; 0 leaves it to the response and the request
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration::parse)]
    stale_if_error: Duration,
    /// Close a client connection idle for this long between requests
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    idle_timeout: Duration,
    #[command(flatten)]
    limits: LimitArgs<10_000, { proxy::MAX_PER_CLIENT as u32 }, 0>,
    /// Append the access log to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,
    #[command(flatten)]
    grace: GraceArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// A `--safe-ports` list: one value holding several ranges.
#[derive(Debug, Clone)]
struct SafePorts(Vec<std::ops::RangeInclusive<u16>>);

fn parse_safe_ports(text: &str) -> Result<SafePorts, String> {
    proxy::parse_ports(text).map(SafePorts)
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ForwardedForArg {
    Append,
    Transparent,
    Delete,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The URL to remove, as the proxy fetched it (http://HOST/PATH)
    url: String,
    /// Address of the running proxy
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    proxy: SocketAddr,
    /// The cache directory to remove the entry from [default: as for serve]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// How long to wait for the proxy
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    timeout: Duration,
    /// Print the outcome as one JSON object (url, purged, place)
    #[arg(long)]
    json: bool,
}

pub async fn run(command: ProxyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProxyCommand::Serve(args) => serve(args).await,
        ProxyCommand::Purge(args) => purge(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::install(&args.grace)?;
    let cache_dir = match args.cache_dir {
        Some(dir) => dir,
        None => default_cache_dir()?,
    };
    let mut config = Config::new(args.bind, cache_dir);
    if !args.allow.is_empty() {
        config.allow = args.allow;
    }
    config.connect_ports = args.connect_port;
    config.safe_ports = args.safe_ports.0;
    config.allow_localhost_origins = args.allow_localhost_origins;
    config.forwarded_for = match args.forwarded_for {
        ForwardedForArg::Append => ForwardedFor::Append,
        ForwardedForArg::Transparent => ForwardedFor::Transparent,
        ForwardedForArg::Delete => ForwardedFor::Delete,
    };
    config.cache_size = args.cache_size;
    config.max_object_size = args.max_object_size;
    config.memory_size = args.memory_size;
    config.memory_object_size = args.memory_object_size;
    config.max_body = args.max_body;
    config.connect_timeout = args.connect_timeout;
    config.origin_timeout = args.origin_timeout;
    config.stale_if_error = args.stale_if_error;
    config.idle_timeout = args.idle_timeout;
    config.limits = args.limits.limits();

    let log: Box<dyn Write + Send> = match &args.access_log {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the access log {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut proxy = Proxy::bind(config).await?;
    let records = proxy.take_access_log().expect("access log not yet taken");
    println!("listening on {}", proxy.local_addr());
    std::io::stdout().flush()?;
    let format = args.log.log_format;
    let writer = tokio::task::spawn_blocking(move || write_access_log(records, log, format));
    let token = shutdown.token();
    shutdown
        .run(async move {
            proxy.run(token).await;
            Ok(())
        })
        .await?;
    // The proxy is gone, so the log channel closes and the writer finishes.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    Ok(ExitCode::SUCCESS)
}

/// Writes records in batches, one flush per batch. Resting between batches
/// lets records pile up under load instead of waking this thread (a context
/// switch) for every request.
fn write_access_log(
    mut records: mpsc::UnboundedReceiver<AccessRecord>,
    out: Box<dyn Write + Send>,
    format: LogFormat,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut batch = Vec::with_capacity(1024);
    while records.blocking_recv_many(&mut batch, 1024) > 0 {
        for record in batch.drain(..) {
            let written = match format {
                LogFormat::Text => writeln!(out, "{record}"),
                LogFormat::Json => writeln!(out, "{}", access_json(&record)),
            };
            if written.is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
        std::thread::sleep(ACCESS_LOG_REST);
    }
}

/// An access log line for `--log-format json`: Squid's fields under their
/// own names, in netkit's JSON style.
fn access_json(record: &AccessRecord) -> serde_json::Value {
    let (hierarchy, peer) = match &record.hierarchy {
        Hierarchy::None => ("HIER_NONE", None),
        Hierarchy::Direct(peer) => ("HIER_DIRECT", Some(peer.as_str())),
    };
    serde_json::json!({
        "time": crate::json::rfc3339(record.time),
        "elapsed_ms": crate::json::ms(record.elapsed),
        "client": record.client.to_string(),
        "cache": record.code.as_str(),
        "status": record.status,
        "bytes": record.bytes,
        "method": record.method,
        "url": record.url,
        "hierarchy": hierarchy,
        "peer": peer,
        "content_type": record.content_type,
    })
}

async fn purge(args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let through_proxy = || proxy::purge(args.proxy, &args.url, args.timeout);
    let (purged, place) = match &args.cache_dir {
        Some(dir) => match purge_dir(dir.clone(), &args.url).await {
            Err(PurgeError::InUse { .. }) => {
                let purged = through_proxy().await.with_context(|| {
                    format!(
                        "{} is in use by a running proxy; give its address with --proxy",
                        dir.display()
                    )
                })?;
                (purged, format!("the proxy at {}", args.proxy))
            }
            done => (done?, dir.display().to_string()),
        },
        None => match through_proxy().await {
            Err(PurgeError::Connect { .. }) => {
                let dir = default_cache_dir()?;
                match purge_dir(dir.clone(), &args.url).await {
                    Err(PurgeError::InUse { .. }) => anyhow::bail!(
                        "nothing listens on {}, and a proxy elsewhere holds {}: give its address with --proxy",
                        args.proxy,
                        dir.display()
                    ),
                    done => (done?, dir.display().to_string()),
                }
            }
            done => (done?, format!("the proxy at {}", args.proxy)),
        },
    };
    if args.json {
        crate::json::print_line(&serde_json::json!({
            "url": args.url,
            "purged": purged,
            "place": place,
        }))?;
    } else if purged == 0 {
        println!("{} was not in the cache ({place})", args.url);
    } else {
        println!(
            "purged {} ({purged} stored variant{}, {place})",
            args.url,
            if purged == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn purge_dir(dir: PathBuf, url: &str) -> Result<u64, PurgeError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || proxy::purge_dir(&dir, &url))
        .await
        .expect("purging does not panic")
}

/// `$XDG_CACHE_HOME/netkit-proxy-cache`, else `~/.cache/netkit-proxy-cache`.
fn default_cache_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set: give --cache-dir")?;
    Ok(base.join("netkit-proxy-cache"))
}
