//! `netkit chat serve`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat::bus::Bus;
use chat::history::{Retention, SqliteHistory};
use chat::postgres::Postgres;
use chat::rate::RateConfig;
use chat::{Accounts, Server, ServerConfig};
use clap::Args;
use tracing::{info, warn};

use super::db::Db;
use crate::duration;
use crate::serve::{GraceArgs, LimitArgs, LogArgs, LogFormat, Shutdown, TlsArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    bind: SocketAddr,
    /// Also serve the browser client (a page and its WebSocket) here, with
    /// TLS when the chat has it
    #[arg(long, value_name = "ADDR")]
    web: Option<SocketAddr>,
    /// Where accounts, bans and history are kept: an SQLite file, created
    /// if missing, or postgres://USER@HOST:PORT/DBNAME (loopback or a Unix
    /// socket; the password from PGPASSWORD or ~/.pgpass, never the URL)
    #[arg(long, value_name = "FILE|URL", default_value = "chat.sqlite3")]
    db: Db,
    /// Join a cluster of chat nodes over Redis: redis://HOST:PORT[/DB]
    /// (loopback only) or rediss://HOST:PORT[/DB] (TLS); the password from
    /// NETKIT_REDIS_PASSWORD or REDISCLI_AUTH, never the URL. Needs
    /// --db postgres://, which the nodes share
    #[arg(long, value_name = "URL")]
    bus: Option<String>,
    /// With --bus: how long a node may be silent before its users are
    /// announced as gone on the others
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    presence: Duration,
    #[command(flatten)]
    tls: TlsArgs,
    /// Close connections that have not logged in within this time
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    login_timeout: Duration,
    /// Ping a silent client after this long; close it after twice as long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    keepalive: Duration,
    #[command(flatten)]
    limits: LimitArgs<10_000, { chat::MAX_PER_CLIENT as u32 }, { chat::MAX_RATE }>,
    /// Longest message text in bytes (at most 8192)
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=8192))]
    max_text: u32,
    /// Frames per second each client may send, steady state
    #[arg(long, value_name = "PER_SECOND", default_value_t = 5.0)]
    rate: f64,
    /// Frames a client may send at once after a quiet period
    #[arg(long, value_name = "N", default_value_t = 20)]
    burst: u32,
    /// Refused frames within 10 s after which a flooding client is disconnected
    #[arg(long, value_name = "N", default_value_t = 20)]
    strikes: u32,
    /// Room events a client may fall behind before it is disconnected
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    queue: u32,
    /// Failed logins per account and per address within --login-window
    /// before further attempts are refused
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    login_failures: u32,
    /// The window for --login-failures
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    login_window: Duration,
    /// New accounts per client address within --register-window
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    register_per_address: u32,
    /// New accounts from all addresses together within --register-window
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    register_overall: u32,
    /// The window for --register-per-address and --register-overall
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse)]
    register_window: Duration,
    /// Logins that may wait for a password check before more get `busy`
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    login_queue: u32,
    /// Named rooms one user session may be in at once
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    rooms_per_user: u32,
    /// Named rooms the server keeps at once (a room exists while occupied)
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_rooms: u32,
    /// Room messages kept per room (in the database)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    history: u32,
    /// How long room messages are kept
    #[arg(long, value_name = "DURATION", default_value = "720h", value_parser = duration::parse)]
    history_age: Duration,
    /// Latest messages replayed to whoever joins a room (0: none)
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=200))]
    history_on_join: u32,
    /// Sessions one account may have at once, as an IRC bouncer allows
    /// (1: a new login replaces the old session; beyond N, the oldest)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    sessions_per_user: u32,
    /// Least time between two broadcasts of the user list (plus 1 ms per user)
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = duration::parse)]
    users_interval: Duration,
    #[command(flatten)]
    grace: GraceArgs,
    #[command(flatten)]
    log: LogArgs,
}

impl ServeArgs {
    pub fn log_format(&self) -> LogFormat {
        self.log.log_format
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    return_freed_memory();
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number of frames per second"
    );
    if args.bus.is_some() && matches!(args.db, Db::Sqlite(_)) {
        eprintln!(
            "netkit: --bus needs --db postgres://…: the nodes of a cluster must share \
             their accounts, bans and history, and an SQLite file is one machine's"
        );
        return Ok(ExitCode::from(2));
    }
    if args.presence < Duration::from_millis(100) {
        eprintln!("netkit: --presence must be at least 100ms");
        return Ok(ExitCode::from(2));
    }
    let shutdown = Shutdown::install(&args.grace)?;
    let identity = args.tls.identity();
    let tls = match &identity {
        Some(identity) => Some(tls::server_config(identity, &[])?),
        None => None,
    };
    if args.tls.self_signed {
        warn!("TLS with a self-signed certificate: for testing only");
    }
    let config = ServerConfig {
        login_timeout: args.login_timeout,
        keepalive: args.keepalive,
        limits: args.limits.limits(),
        max_text: args.max_text as usize,
        rate: RateConfig {
            rate: args.rate,
            burst: args.burst,
            strikes: args.strikes,
        },
        queue: args.queue as usize,
        login_failures: args.login_failures,
        login_window: args.login_window,
        register_per_address: args.register_per_address,
        register_overall: args.register_overall,
        register_window: args.register_window,
        login_queue: args.login_queue as usize,
        rooms_per_session: args.rooms_per_user as usize,
        max_rooms: args.max_rooms as usize,
        history: Retention {
            per_room: args.history as usize,
            max_age: args.history_age,
        },
        history_on_join: args.history_on_join as usize,
        users_interval: args.users_interval,
        sessions_per_user: args.sessions_per_user as usize,
        tls: tls.clone(),
        web: args.web,
        presence: args.presence,
    };
    // The bus first: a URL it refuses is found before anything else.
    let bus = match &args.bus {
        Some(url) => {
            let bus = Bus::connect(url, args.presence).await?;
            info!(bus = bus.shown(), node = bus.node(), "joined the cluster");
            Some(bus)
        }
        None => None,
    };
    let bound = match &args.db {
        Db::Sqlite(path) => {
            let accounts = Accounts::open(path)?;
            let history = SqliteHistory::open(path)?;
            Server::bind_stored(args.bind, config, accounts, history).await
        }
        Db::Postgres(url) => {
            let postgres = Postgres::connect(url).await?;
            info!(
                db = postgres.shown(),
                "accounts, rooms and history in PostgreSQL"
            );
            match bus {
                None => Server::bind_stored(args.bind, config, postgres.clone(), postgres).await,
                Some(bus) => {
                    Server::bind_cluster(args.bind, config, postgres.clone(), postgres, bus).await
                }
            }
        }
    };
    let server = bound.with_context(|| format!("cannot start the chat server on {}", args.bind))?;
    let suffix = if tls.is_some() { " (tls)" } else { "" };
    println!("listening on {}{suffix}", server.local_addr());
    if let Some(url) = server.web_url() {
        println!("web client listening on {url}");
    }
    let token = shutdown.token();
    shutdown
        .run(async move {
            server.run(token).await;
            Ok(())
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// glibc raises its mmap and trim thresholds once a large block is freed
/// (Argon2's 19 MiB per password check), and from then on keeps what a
/// thousand sessions free instead of giving it back: with 1,000 clients,
/// 31 MiB of anonymous memory instead of 12. Setting the thresholds fixes
/// them at their defaults.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory() {
    const THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only changes allocator parameters, under glibc's
    // own lock; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory() {}
