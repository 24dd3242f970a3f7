//! `netkit`: a thin command line over one library crate per system. This
//! crate turns flags into library configuration, renders what the libraries
//! report, and owns exit codes: 0 success, 1 failure, 2 usage.

mod capture;
mod chat;
mod cli;
mod completions;
mod demo;
mod duration;
mod json;
mod mail;
mod man;
mod menu;
mod ping;
mod prompt;
mod proxy;
mod serve;
mod size;
mod udping;
mod upper;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use serve::LogFormat;

fn main() -> ExitCode {
    // No arguments at a terminal: a person exploring, so offer the menu.
    // Anywhere else (a script, a pipe) it prints the help, as always.
    if std::env::args_os().len() == 1
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal()
    {
        return menu::run(&Cli::command()).unwrap_or_else(|err| fail(&err));
    }
    let cli = Cli::parse();
    let closed_pipe = cli.command.closed_pipe_code();
    end_quietly_on_closed_pipes(closed_pipe);
    if cli.command.watches_its_pipes() {
        watch_for_closed_pipes(cli.command.closed_pipe_code());
    }
    init_tracing(cli.command.is_server(), cli.command.log_format());
    let runtime = if cli.command.is_http_client() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::Error::new(err).context("cannot start the runtime")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        // A write to the closed stdout that returned its error before the
        // watcher thread saw the pipe close: the same quiet end.
        Err(err) if is_broken_pipe(&err) && output_closed() => ExitCode::from(closed_pipe),
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
        Command::Curl(args) => Ok(web::get(*args).await),
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::Man(args) => man::run(args, Cli::command()),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("netkit: {}", error_chain(err));
    ExitCode::FAILURE
}

/// A closed stdout or stderr (`netkit ... | head -1`) ends the command
/// quietly with `code` instead of a panic. Rust ignores SIGPIPE, so a write
/// to a closed pipe fails, and `print!`/`eprint!` (ours and every
/// library's, on any thread) panic on a failed write: this one hook is where
/// all of them end up, whatever the subcommand.
fn end_quietly_on_closed_pipes(code: u8) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_pipe(message) {
            std::process::exit(code.into());
        }
        default(info);
    }));
}

/// Ends a client whose stdout or stderr is a pipe as soon as the reader
/// has gone, even where output errors are ignored (a progress line, a
/// ping that would otherwise run on unseen): what SIGPIPE does to iputils
/// ping or nc. Linux reports POLLERR on a pipe's write end with no reader.
fn watch_for_closed_pipes(code: u8) {
    use std::os::fd::AsFd;
    for fd in [
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stderr().as_fd().try_clone_to_owned(),
    ]
    .into_iter()
    .flatten()
    {
        let pipe = std::fs::File::from(fd);
        if !pipe
            .metadata()
            .is_ok_and(|meta| std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()))
        {
            continue;
        }
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            loop {
                let mut poll = libc::pollfd {
                    fd: pipe.as_raw_fd(),
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one live pollfd, as the count says.
                let ready = unsafe { libc::poll(&mut poll, 1, -1) };
                if ready > 0 && poll.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    std::process::exit(code.into())
                }
                if ready < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    return;
                }
            }
        });
    }
}

/// Whether `err` comes from a write to a pipe or socket with no reader.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether stdout or stderr is a pipe whose reader has gone (POLLERR).
fn output_closed() -> bool {
    [libc::STDOUT_FILENO, libc::STDERR_FILENO]
        .into_iter()
        .any(|fd| {
            let mut poll = libc::pollfd {
                fd,
                events: 0,
                revents: 0,
            };
            // SAFETY: one live pollfd, as the count says; no waiting.
            let ready = unsafe { libc::poll(&mut poll, 1, 0) };
            ready > 0 && poll.revents & libc::POLLERR != 0
        })
}

/// The message std's print macros panic with when the pipe is gone.
fn is_closed_pipe(message: &str) -> bool {
    message.starts_with("failed printing to std")
        && (message.contains("Broken pipe") || message.contains("os error 32"))
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
fn init_tracing(server: bool, format: LogFormat) {
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        // The event's fields at the top level beside `timestamp` (RFC 3339),
        // `level`, `target` and `message`.
        LogFormat::Json => log.json().flatten_event(true).init(),
    }
}

/// Writes all of `bytes` to stdout (a closed pipe ends the command quietly,
/// as everywhere).
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{error_chain, is_closed_pipe};
    use anyhow::Context;

    #[test]
    fn closed_pipes_are_recognised() {
        assert!(is_closed_pipe(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_pipe("failed printing to stdout: No space left"));
        assert!(!is_closed_pipe("index out of bounds"));
    }

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
