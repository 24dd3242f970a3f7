//! `netkit upper`: the uppercase service and its client.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use tokio::io::{AsyncBufReadExt, BufReader};
use upper::{TcpClient, TcpConfig, TcpServer, UdpClient, UdpServer};

use crate::duration;
use crate::serve::{GraceArgs, LimitArgs, LogArgs, LogFormat, Shutdown};

const DEFAULT_ADDR: &str = "127.0.0.1:12000";
const PROMPT: &str = "Input lowercase sentence: ";

#[derive(Debug, Subcommand)]
pub enum UpperCommand {
    /// Run the server: every ASCII letter sent is returned in upper case
    #[command(after_help = "\
Examples:
  netkit upper serve                          TCP and UDP on 127.0.0.1:12000
  netkit upper serve --tcp 0.0.0.0:12000      TCP only, on every interface
  netkit upper serve --bind 127.0.0.1:0       TCP and UDP on one ephemeral port
  netkit upper serve --tcp 127.0.0.1:0 --udp 127.0.0.1:0   ephemeral ports")]
    Serve(ServeArgs),
    /// Send text to an uppercase server and print the reply
    #[command(after_help = "\
Examples:
  netkit upper send 127.0.0.1:12000 'hello, world'
  netkit upper send 127.0.0.1:12000 --udp 'hello, world'
  cat notes.txt | netkit upper send 127.0.0.1:12000
  netkit upper send --json 127.0.0.1:12000 hi   {\"type\":\"reply\",...,\"rtt_ms\":0.2}")]
    Send(SendArgs),
}

impl UpperCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, UpperCommand::Serve(_))
    }

    pub fn log_format(&self) -> LogFormat {
        match self {
            UpperCommand::Serve(args) => args.log.log_format,
            UpperCommand::Send(_) => LogFormat::Text,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for both servers, TCP and UDP (with port 0, UDP takes the
    /// port TCP was given)
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["tcp", "udp"])]
    bind: Option<SocketAddr>,
    /// Address for the TCP server. With none of --bind, --tcp and --udp,
    /// both run on 127.0.0.1:12000; with one of --tcp and --udp, only that
    /// one runs
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,
    /// Address for the UDP server (see --tcp)
    #[arg(long, value_name = "ADDR")]
    udp: Option<SocketAddr>,
    /// Close a TCP connection that makes no progress for this long
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    idle_timeout: Duration,
    #[command(flatten)]
    limits: LimitArgs<10_000, 256, 0>,
    #[command(flatten)]
    grace: GraceArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Server address, as HOST:PORT
    #[arg(value_name = "HOST:PORT")]
    server: String,
    /// Text to send; without it, lines are read from stdin
    text: Option<String>,
    /// Use UDP (one datagram per line) instead of TCP
    #[arg(long)]
    udp: bool,
    /// How long to wait to connect and for each reply
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    timeout: Duration,
    /// Print one JSON object per reply (protocol, text, reply, rtt_ms)
    /// instead of the reply
    #[arg(long)]
    json: bool,
}

pub async fn run(command: UpperCommand) -> anyhow::Result<ExitCode> {
    match command {
        UpperCommand::Serve(args) => serve(args).await?,
        UpperCommand::Send(args) => send(args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::install(&args.grace)?;
    let default: SocketAddr = DEFAULT_ADDR.parse().expect("valid default");
    let (tcp_addr, udp_addr) = match (args.tcp, args.udp) {
        (None, None) => (Some(args.bind.unwrap_or(default)), None),
        chosen => chosen,
    };
    let config = TcpConfig {
        idle_timeout: args.idle_timeout,
        limits: args.limits.limits(),
    };
    let tcp = match tcp_addr {
        Some(addr) => Some(TcpServer::bind(addr, config).await?),
        None => None,
    };
    // Without --tcp/--udp both share one address, the port TCP was given.
    let udp_addr = match (args.tcp, args.udp, &tcp) {
        (None, None, Some(tcp)) => Some(tcp.local_addr()),
        _ => udp_addr,
    };
    let udp = match udp_addr {
        Some(addr) => Some(UdpServer::bind(addr).await?),
        None => None,
    };
    if let Some(tcp) = &tcp {
        println!("listening on {} (tcp)", tcp.local_addr());
    }
    if let Some(udp) = &udp {
        println!("listening on {} (udp)", udp.local_addr());
    }
    let token = shutdown.token();
    shutdown
        .run(async move {
            let tcp = async {
                if let Some(tcp) = tcp {
                    tcp.run(token.clone()).await;
                }
            };
            let udp = async {
                if let Some(udp) = udp {
                    udp.run(token.clone()).await;
                }
            };
            tokio::join!(tcp, udp);
            Ok(())
        })
        .await
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let addrs = dial::resolve(&args.server).await?;
    let interactive = std::io::stdin().is_terminal();
    let reply = Reply {
        json: args.json,
        protocol: if args.udp { "udp" } else { "tcp" },
    };
    if args.udp {
        let mut client = UdpClient::connect(&addrs, args.timeout).await?;
        match &args.text {
            Some(text) => {
                let started = Instant::now();
                let answer = client.round_trip(text.as_bytes()).await?;
                reply.print(text.as_bytes(), &answer, started)?;
            }
            None => {
                let mut lines = Lines::new(interactive);
                while let Some(line) = lines.next().await? {
                    let started = Instant::now();
                    let answer = client.round_trip(&line).await?;
                    reply.print(&line, &answer, started)?;
                }
            }
        }
        return Ok(());
    }

    let mut client = TcpClient::connect(&addrs, args.timeout).await?;
    if let Some(text) = &args.text {
        let started = Instant::now();
        let answer = client.round_trip(text.as_bytes()).await?;
        return reply.print(text.as_bytes(), &answer, started);
    }
    if !interactive && !args.json {
        // Piped input may be megabytes: stream it both ways at once.
        client
            .stream(tokio::io::stdin(), tokio::io::stdout())
            .await?;
        return Ok(());
    }
    let mut lines = Lines::new(interactive);
    while let Some(line) = lines.next().await? {
        // The lab's server answers one sentence per connection.
        if client.is_closed() {
            client = TcpClient::connect(&addrs, args.timeout).await?;
        }
        let started = Instant::now();
        let answer = client.round_trip(&line).await?;
        reply.print(&line, &answer, started)?;
    }
    Ok(())
}

/// How a reply is shown: as it came, or as a JSON object.
struct Reply {
    json: bool,
    protocol: &'static str,
}

impl Reply {
    fn print(&self, sent: &[u8], reply: &[u8], started: Instant) -> anyhow::Result<()> {
        if self.json {
            return crate::json::print_line(&serde_json::json!({
                "type": "reply",
                "protocol": self.protocol,
                "text": String::from_utf8_lossy(sent),
                "reply": String::from_utf8_lossy(reply),
                "bytes": reply.len(),
                "rtt_ms": crate::json::ms(started.elapsed()),
            }));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush().context("cannot write to stdout")
    }
}

/// Lines of stdin without their line ending, with the lab's prompt before
/// each one when a person is typing.
struct Lines {
    reader: BufReader<tokio::io::Stdin>,
    prompt: bool,
}

impl Lines {
    fn new(prompt: bool) -> Self {
        Self {
            reader: BufReader::new(tokio::io::stdin()),
            prompt,
        }
    }

    async fn next(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        if self.prompt {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(PROMPT.as_bytes())?;
            stdout.flush()?;
        }
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read stdin")?;
        if n == 0 {
            return Ok(None);
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        Ok(Some(line))
    }
}
