//! What every server command shares: `--grace`, the connection limits, the
//! TLS identity flags, `--log-format`, and running until SIGINT or SIGTERM, then letting in-flight work finish
//! within the grace period.

use std::future::Future;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::duration;

#[derive(Debug, Clone, Args)]
pub struct GraceArgs {
    /// After SIGINT or SIGTERM, how long in-flight work may take to finish
    /// before the server exits anyway (e.g. 5, 1.5, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub grace: Duration,
}

/// The connection limits every TCP server takes, with the server's own
/// defaults (see the listener crate for the policy when full).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs<const MAX: u32, const PER_CLIENT: u32, const RATE: u32> {
    /// Connections served at once. When full, the connection idle the
    /// longest is closed to make room; with none idle, a new client waits
    /// up to 2 s for a slot, then is refused
    #[arg(long, value_name = "N", default_value_t = MAX, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections one client (an IPv4 address, an IPv6 /64) may hold at
    /// once; more are refused
    #[arg(long, value_name = "N", default_value_t = PER_CLIENT, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: u32,
    /// New connections one client may open per minute (a minute's worth at
    /// once); more are refused. 0: no limit
    #[arg(long, value_name = "PER_MINUTE", default_value_t = RATE)]
    pub max_connection_rate: u32,
}

impl<const MAX: u32, const PER_CLIENT: u32, const RATE: u32> LimitArgs<MAX, PER_CLIENT, RATE> {
    pub fn limits(&self) -> listener::Limits {
        listener::Limits {
            max_connections: self.max_connections as usize,
            max_per_client: self.max_connections_per_client as usize,
            max_rate: NonZeroU32::new(self.max_connection_rate),
        }
    }
}

/// How a server writes its event log (stderr) and, for the proxy, its
/// access log. `netkit web serve` has its own `--log-format` (combined or
/// json) that means the same for both of its logs.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log lines as text, or as one JSON object a line (time, level,
    /// message, target and the event's fields)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where a TLS server's certificate comes from.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Serve TLS with this PEM certificate chain (needs --tls-key)
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a throwaway certificate for localhost (testing only;
    /// clients need --insecure)
    #[arg(long)]
    pub self_signed: bool,
}

impl TlsArgs {
    /// `None` when no TLS flag was given.
    pub fn identity(&self) -> Option<tls::Identity> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(tls::Identity::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ if self.self_signed => Some(tls::Identity::SelfSigned),
            _ => None,
        }
    }
}

/// Installed before a server binds, so a signal that arrives right after the
/// `listening on` line is already handled gracefully.
#[derive(Debug)]
pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
    grace: Duration,
    token: CancellationToken,
}

impl Shutdown {
    pub fn install(args: &GraceArgs) -> anyhow::Result<Self> {
        let interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        Ok(Self {
            interrupt,
            terminate,
            grace: args.grace,
            token: CancellationToken::new(),
        })
    }

    /// The token the server watches; cancelled when a signal arrives.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Drives `server` until it ends by itself or a signal arrives; then
    /// cancels the token and gives the server the grace period to finish.
    ///
    /// The server runs as a task on a worker thread, not in `block_on`: the
    /// worker that polls its sockets then runs it too, instead of waking the
    /// main thread (a context switch) for every datagram or connection.
    pub async fn run<F>(mut self, server: F) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut server = tokio::spawn(server);
        let name = tokio::select! {
            result = &mut server => return result.context("the server task failed")?,
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        };
        info!(
            grace_ms = crate::json::ms(self.grace),
            "{name} received: shutting down"
        );
        self.token.cancel();
        match tokio::time::timeout(self.grace, &mut server).await {
            Ok(result) => {
                info!("shutdown complete");
                result.context("the server task failed")?
            }
            Err(_) => {
                warn!("grace period over: closing what is still open");
                server.abort();
                Ok(())
            }
        }
    }
}
