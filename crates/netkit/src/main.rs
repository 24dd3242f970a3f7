//! `netkit`: a thin command line over one library crate per system. This
//! crate turns flags into library configuration, renders what the libraries
//! report, and owns exit codes: 0 success, 1 failure, 2 usage.

mod capture;
mod chat;
mod cli;
mod demo;
mod duration;
mod mail;
mod ping;
mod prompt;
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
        Command::Capture(args) => capture::run(args).await,
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("netkit: {}", error_chain(err));
    ExitCode::FAILURE
}

/// An error and its causes on one line, outermost first. A cause whose text
/// the message already contains is left out: many library errors name their
/// source in their own message, and the user should read it once.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
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

#[cfg(test)]
mod tests {
    use super::error_chain;
    use anyhow::Context;

    #[test]
    fn causes_are_shown_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let named = anyhow::anyhow!("cannot bind 127.0.0.1:1: {io}").context("starting");
        assert_eq!(
            error_chain(&named),
            "starting: cannot bind 127.0.0.1:1: address in use"
        );
        let chained = Err::<(), _>(io).context("cannot bind").unwrap_err();
        assert_eq!(error_chain(&chained), "cannot bind: address in use");
    }
}
