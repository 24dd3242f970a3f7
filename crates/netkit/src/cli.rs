//! The top of the command line: one subcommand per system.

use clap::{Parser, Subcommand};

use crate::serve::LogFormat;
use crate::{capture, chat, completions, demo, mail, man, ping, proxy, udping, upper, web};

const EXAMPLES: &str = "\
Examples:
  netkit demo                                  start every service on loopback and check it
  netkit upper serve --tcp 127.0.0.1:12000     run the uppercase service
  netkit upper send 127.0.0.1:12000 'hello'    send a sentence, print the reply
  netkit ping -c 3 127.0.0.1                   ICMP echo, output as iputils ping prints it
  netkit proxy serve                           caching web proxy on 127.0.0.1:8888
  netkit udping ping -c 10 127.0.0.1:12000     ping a UDP echo server (netkit udping serve)
  netkit mail send --server 127.0.0.1:2525 --from a@example.org --to b@example.org --body hi
  netkit web serve ./public --list             serve a directory over HTTP/1.1 and HTTP/2
  netkit chat join --user alice --register     join a chat server (netkit chat serve)
  netkit capture -i lo port 12000              show packets as tcpdump does (needs CAP_NET_RAW)
  netkit                                       on a terminal: a menu of all of the above
  source <(netkit completions bash)            tab completion; netkit man web get | man -l -

Each system documents its own flags: netkit <system> <verb> --help.
Servers log to stderr at the level set by RUST_LOG (default info), as text
or, with --log-format json, one JSON object a line. Every JSON output uses
snake_case keys, RFC 3339 times and durations as float milliseconds (*_ms).
Exit status: 0 success, 1 failure, 2 usage error; 141 when stdout or stderr
is closed under a command (`| head -1`), as for tools killed by SIGPIPE.
`web get` uses curl's exit codes (see netkit web get --help).";

#[derive(Debug, Parser)]
#[command(
    name = "netkit",
    version,
    about = "The classic Internet applications in one fast, safe binary",
    after_help = EXAMPLES,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// TCP/UDP uppercase service and client (netkit upper send 127.0.0.1:12000 hi)
    #[command(subcommand)]
    Upper(upper::UpperCommand),
    /// ICMP echo to one host or many, like iputils ping (netkit ping -c 3 127.0.0.1)
    Ping(ping::PingArgs),
    /// Caching web proxy (netkit proxy serve; curl -x http://127.0.0.1:8888 http://127.0.0.1:8080/)
    #[command(subcommand)]
    Proxy(proxy::ProxyCommand),
    /// UDP pinger, STAMP reflector and heartbeat (netkit udping ping 127.0.0.1:12000)
    #[command(subcommand)]
    Udping(udping::UdpingCommand),
    /// SMTP client showing the dialogue, and a local test inbox (netkit mail send --to you@example.org ...)
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Static web server and HTTP client (netkit web get http://127.0.0.1:8080/)
    #[command(subcommand)]
    Web(web::WebCommand),
    /// Chat server, client, accounts and load generator (netkit chat join --user alice)
    #[command(subcommand)]
    Chat(chat::ChatCommand),
    /// Packet capture and decoder, like tcpdump (netkit capture -i lo tcp port 5000)
    Capture(capture::CaptureArgs),
    /// Start every service on loopback, drive every client, print a summary (netkit demo)
    Demo(demo::DemoArgs),
    /// The HTTP client under curl's name: the same as `netkit web get`
    Curl(Box<web::GetArgs>),
    /// Write a tab-completion script for bash, zsh, fish or PowerShell
    Completions(completions::CompletionsArgs),
    /// Write the manual page of netkit or of one of its commands (roff)
    Man(man::ManArgs),
}

impl Command {
    /// The exit status when stdout or stderr is closed under us: curl's 23
    /// for `web get`, and for the others 141, which is what a shell reports
    /// for ping, nc or swaks killed by SIGPIPE in the same place.
    pub fn closed_pipe_code(&self) -> u8 {
        match self {
            Command::Web(command) if !command.is_server() => web::WRITE_ERROR,
            Command::Curl(_) => web::WRITE_ERROR,
            _ => 141,
        }
    }

    /// Whether to end as soon as stdout or stderr is a pipe nobody reads.
    /// Not servers, which log on whether anyone reads or not, nor `web get`,
    /// which like curl fails only when a write of its own fails.
    pub fn watches_its_pipes(&self) -> bool {
        !self.is_server() && !matches!(self, Command::Web(_) | Command::Curl(_))
    }

    /// `web get` and `curl`: one transfer after another, so one thread, as
    /// curl has. The connection's task and the transfer then take turns on
    /// it instead of waking a second thread for every response, and no
    /// worker threads are started for a command that lasts milliseconds.
    pub fn is_http_client(&self) -> bool {
        match self {
            Command::Curl(_) => true,
            Command::Web(command) => command.is_client(),
            _ => false,
        }
    }

    /// Whether this command runs a long-lived server (it logs more).
    pub fn is_server(&self) -> bool {
        match self {
            Command::Upper(command) => command.is_server(),
            Command::Ping(_) => false,
            Command::Proxy(command) => command.is_server(),
            Command::Udping(command) => command.is_server(),
            Command::Mail(command) => command.is_server(),
            Command::Web(command) => command.is_server(),
            Command::Chat(command) => command.is_server(),
            Command::Demo(_)
            | Command::Curl(_)
            | Command::Capture(_)
            | Command::Completions(_)
            | Command::Man(_) => false,
        }
    }

    /// How a server's log lines are written (clients log text warnings).
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Upper(command) => command.log_format(),
            Command::Proxy(command) => command.log_format(),
            Command::Udping(command) => command.log_format(),
            Command::Mail(command) => command.log_format(),
            Command::Web(command) => command.log_format(),
            Command::Chat(command) => command.log_format(),
            _ => LogFormat::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
