//! A caching forward proxy for HTTP/1.1, the proxy lab done the way people
//! expect of Squid or Varnish: absolute-form requests from browsers and
//! `curl -x`, the lab's path form (`GET /example.com/a`), CONNECT tunnels,
//! and an RFC 9111 cache (policy by `http-cache-semantics`) kept on disk
//! with a memory tier for small hot objects.
//!
//! The server is hyper; the proxying and caching around it are ours:
//! `target` checks what is asked for, `forward` routes each request,
//! `hit` answers fresh plain requests straight from the cache, `lookup`
//! answers GET and HEAD from the cache or the origin (with `range` for
//! parts, `stale` for RFC 5861, `stored` for what a 304 changes), `fill`
//! stores what passes, `cache` indexes it, `tunnel` relays CONNECT, and
//! `zerocopy` sends large bodies from the memory tier with `sendfile`.
//! Underneath them all, `state` is what handlers share, `exchange` how an
//! answer is labelled, counted and logged, and `connector` and `guard` how
//! origins are reached (and which are refused); `stamp` gives hyper's own
//! error answers the proxy's fields.

mod access;
mod body;
pub mod cache;
mod conditional;
mod connector;
mod exchange;
mod fill;
mod forward;
mod guard;
mod headers;
mod hit;
mod lookup;
mod origin;
mod pages;
mod purge;
mod range;
mod server;
mod stale;
mod stamp;
mod state;
mod stats;
mod stored;
mod sys;
pub mod target;
mod tunnel;
mod zerocopy;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

pub use access::{AccessRecord, CacheCode, Hierarchy};
pub use guard::parse_ports;
pub use ipnet::IpNet;
pub use purge::{PurgeError, purge, purge_dir};
pub use server::Proxy;
pub use stats::Snapshot;

/// How the proxy runs. `Config::new` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Clients allowed to use the proxy; everyone else gets 403.
    pub allow: Vec<IpNet>,
    /// Ports CONNECT may reach besides 443.
    pub connect_ports: Vec<u16>,
    /// Ports plain HTTP requests may reach (Squid's `Safe_ports`).
    pub safe_ports: Vec<RangeInclusive<u16>>,
    /// Whether origins on the proxy's own host (loopback, its interface
    /// addresses) may be fetched from; refused by default, as Squid's
    /// `to_localhost`.
    pub allow_localhost_origins: bool,
    /// What happens to `X-Forwarded-For`.
    pub forwarded_for: ForwardedFor,
    pub cache_dir: PathBuf,
    /// Bytes on disk, bodies and metadata, before least-recently-used
    /// entries are evicted.
    pub cache_size: u64,
    /// Larger responses are streamed through without being stored.
    pub max_object_size: u64,
    /// Bytes of bodies kept in memory.
    pub memory_size: u64,
    /// Bodies up to this size are kept in memory once used.
    pub memory_object_size: u64,
    /// Request bodies above this get 413.
    pub max_body: u64,
    /// Time allowed to connect to an origin.
    pub connect_timeout: Duration,
    /// Time allowed for an origin to start its response (then 504).
    pub origin_timeout: Duration,
    /// How long past its freshness a stored response may stand in when its
    /// revalidation fails, for responses that set no `stale-if-error`
    /// themselves (RFC 5861). Zero: only as the response or request allows.
    pub stale_if_error: Duration,
    /// Client connections at once, in all and per client. A connection
    /// between requests is idle: a full proxy closes the oldest such to
    /// make room.
    pub limits: listener::Limits,
    /// How long a client connection may idle between requests.
    pub idle_timeout: Duration,
}

/// Connections one client may hold by default: browsers open up to 32 to
/// a proxy, and a NAT may hide several behind one address.
pub const MAX_PER_CLIENT: usize = 256;

impl Config {
    pub fn new(bind: SocketAddr, cache_dir: PathBuf) -> Config {
        Config {
            bind,
            allow: vec![
                "127.0.0.0/8".parse().expect("valid network"),
                "::1/128".parse().expect("valid network"),
            ],
            connect_ports: Vec::new(),
            safe_ports: guard::default_safe_ports(),
            allow_localhost_origins: false,
            forwarded_for: ForwardedFor::Append,
            cache_dir,
            cache_size: 1 << 30,
            max_object_size: 64 << 20,
            memory_size: 256 << 20,
            memory_object_size: 1 << 20,
            max_body: 100 << 20,
            connect_timeout: Duration::from_secs(10),
            origin_timeout: Duration::from_secs(60),
            stale_if_error: Duration::ZERO,
            limits: listener::Limits {
                max_connections: 10_000,
                max_per_client: MAX_PER_CLIENT,
                max_rate: None,
            },
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What the proxy does with `X-Forwarded-For` (Squid's `forwarded_for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedFor {
    /// Appends the client's address.
    Append,
    /// Passes the field on as the client sent it.
    Transparent,
    /// Removes it.
    Delete,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--max-object-size ({object} bytes) exceeds --cache-size ({cache} bytes)")]
    Limits { object: u64, cache: u64 },
}
