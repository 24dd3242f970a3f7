//! `netkit`: a thin command line over one library crate per system. This
//! crate turns flags into library configuration, renders what the libraries
//! report, and owns exit codes: 0 success, 1 failure, 2 usage.

mod chat;
mod cli;
mod demo;
mod duration;
mod mail;
mod ping;
mod proxy;
mod serve;
mod udping;
mod upper;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.command.is_server());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::Error::new(err).context("cannot start the runtime")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Upper(args) => upper::run(args).await,
        Command::Ping(args) => ping::run(args).await,
        Command::Proxy(command) => proxy::run(command).await,
        Command::Udping(args) => udping::run(args).await,
        Command::Mail(command) => mail::run(command).await,
        Command::Web(args) => web::run(args).await,
        Command::Chat(args) => chat::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("netkit: {err:#}");
    ExitCode::FAILURE
}

/// Logs go to stderr so stdout stays clean for results. Servers log at info
/// by default (connections, shutdown); clients only warn.
fn init_tracing(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
