//! What every server command shares: `--grace`, and running until SIGINT or
//! SIGTERM, then letting in-flight work finish within the grace period.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
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
        info!(grace = ?self.grace, "{name} received: shutting down");
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
