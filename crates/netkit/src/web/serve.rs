//! `netkit web serve`: flags to `ServerConfig`, and the access log writer.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use web::{AccessEntry, AccessLog, Root, Server, ServerConfig};

use crate::duration;
use crate::serve::{GraceArgs, LimitArgs, Shutdown, TlsArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory to serve; without it, a small built-in site
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to listen on (use 0.0.0.0:PORT for every interface)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
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
    #[arg(long, value_name = "FILE", conflicts_with = "quiet")]
    log: Option<PathBuf>,
    /// No access log
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    grace: GraceArgs,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::install(&args.grace)?;
    let tls = args.tls.identity();
    let (access_log, log_writer) = if args.quiet {
        (None, None)
    } else {
        let (log, writer) = access_log(args.log.as_deref())?;
        (Some(log), Some(writer))
    };
    let config = ServerConfig {
        addr: args.bind,
        root: args.dir.clone().map_or(Root::BuiltIn, Root::Directory),
        list: args.list,
        hidden: args.hidden,
        follow_symlinks: args.follow_symlinks,
        header_read_timeout: args.header_timeout,
        send_timeout: args.send_timeout,
        limits: args.limits.limits(),
        tls,
        access_log,
        workers: match args.workers {
            Some(workers) => workers as usize,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        },
    };
    let server = Server::bind(config).await?;
    println!("listening on {}", server.url());
    match &args.dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving"),
        None => tracing::info!("serving the built-in site"),
    }
    let token = shutdown.token();
    let result = shutdown
        .run(async move {
            server.run(token).await;
            Ok(())
        })
        .await;
    if let Some(writer) = log_writer {
        writer.finish();
    }
    result
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
fn access_log(file: Option<&std::path::Path>) -> anyhow::Result<(AccessLog, LogWriter)> {
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
                let _ = writeln!(out, "{entry}");
                while let Ok(entry) = rx.try_recv() {
                    let _ = writeln!(out, "{entry}");
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
