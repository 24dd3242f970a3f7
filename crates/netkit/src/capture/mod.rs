//! `netkit capture`: tcpdump's everyday flags over the capture crate. Live
//! capture runs on a blocking thread; SIGINT/SIGTERM stop it, the frames the
//! kernel has queued are still read, and the counters are printed as
//! tcpdump prints them.

mod explain;
mod follow;
mod json;
mod text;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use capture::file::{Reader, Writer};
use capture::filter::{self, Expr, FilterError, Insn};
use capture::live::{self, Capture};
use capture::{Frame, LinkType};
use clap::Args;

/// tcpdump's default snapshot length, and what `-s 0` means.
const FULL_SNAPLEN: u32 = 262_144;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netkit capture -i lo port 5000                     live, one line per packet
  netkit capture -i lo -w chat.pcapng tcp port 5000  write pcapng for Wireshark
  netkit capture -r chat.pcapng -v                   read a pcap or pcapng file
  netkit capture -r chat.pcapng --explain            every header as a table of fields
  netkit capture -r chat.pcapng --follow tcp 127.0.0.1:5000   one conversation's bytes
  netkit capture -D                                  list interfaces

Live capture needs CAP_NET_RAW (root, or setcap cap_net_raw+ep on netkit).
Times are shown in UTC.")]
pub struct CaptureArgs {
    /// Interface to capture on (`any` for all of them)
    #[arg(short = 'i', long = "interface", default_value = "lo")]
    interface: String,
    /// List the interfaces and exit
    #[arg(short = 'D', long = "list-interfaces")]
    list: bool,
    /// Read packets from a pcap or pcapng file instead of an interface
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<PathBuf>,
    /// Write packets to a pcapng file instead of printing them
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,
    /// Stop after this many packets
    #[arg(short = 'c', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Keep at most this many bytes of each packet (0: 262144)
    #[arg(short = 's', long = "snaplen", default_value_t = FULL_SNAPLEN, value_name = "BYTES")]
    snaplen: u32,
    /// Write each packet to the file as it arrives, not in blocks
    #[arg(short = 'U', long = "packet-buffered")]
    packet_buffered: bool,
    /// Show the IP header's fields and checksums too
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Show each packet's bytes in hex and ASCII, from the IP header on
    #[arg(short = 'X', long = "hex")]
    hex: bool,
    /// Show TCP sequence numbers as they are, not relative to the first
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    absolute: bool,
    /// One JSON object per packet
    #[arg(long, conflicts_with_all = ["verbose", "hex", "explain"])]
    json: bool,
    /// Explain each packet: every header as a table of its fields, the TCP
    /// connection (handshake, relative numbers, teardown, retransmissions,
    /// duplicate ACKs) and the application data netkit recognises
    #[arg(long, conflicts_with_all = ["verbose", "hex"])]
    explain: bool,
    /// Print the payload of the TCP connections to or from ADDR:PORT in
    /// order, as Wireshark's Follow TCP Stream (`--follow tcp 127.0.0.1:5000`)
    #[arg(long, num_args = 2, value_names = ["tcp", "ADDR:PORT"], conflicts_with_all = ["json", "explain", "verbose", "hex"])]
    follow: Vec<String>,
    /// A filter in tcpdump's language: host, net, port, portrange, tcp, udp,
    /// icmp, icmp6, ip, ip6, arp, src/dst, and/or/not, parentheses
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    filter: Vec<String>,
}

/// How packets are shown.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub verbose: bool,
    pub hex: bool,
    pub absolute: bool,
}

pub async fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for interface in live::interfaces()? {
            println!("{}.{}", interface.index, interface.name);
        }
        println!("any (all interfaces)");
        return Ok(ExitCode::SUCCESS);
    }
    let expr = match filter::parse(&args.filter.join(" ")) {
        Ok(expr) => expr,
        Err(err) => return Ok(usage(&err)),
    };
    let follow = match args.follow.as_slice() {
        [] => None,
        [proto, endpoint] if proto == "tcp" => match endpoint.parse::<SocketAddr>() {
            Ok(endpoint) => Some(endpoint),
            Err(_) => {
                eprintln!("netkit: --follow tcp takes ADDR:PORT, not {endpoint:?}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => {
            eprintln!("netkit: --follow takes `tcp ADDR:PORT`");
            return Ok(ExitCode::from(2));
        }
    };
    let snaplen = if args.snaplen == 0 {
        FULL_SNAPLEN
    } else {
        args.snaplen
    };
    // Check the filter compiles before touching files or sockets.
    if let Some(expr) = &expr
        && let Err(err) = filter::compile(expr, LinkType::Ethernet, snaplen)
    {
        return Ok(usage(&err));
    }
    let args = Arc::new(args);
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (args, stop) = (Arc::clone(&args), Arc::clone(&stop));
        tokio::task::spawn_blocking(move || match &args.read {
            Some(path) => read_file(&args, follow, path, expr.as_ref()),
            None => capture_live(&args, follow, expr.as_ref(), snaplen, &stop),
        })
    };
    tokio::pin!(worker);
    let result = tokio::select! {
        result = &mut worker => result,
        () = stop_signal() => {
            stop.store(true, Ordering::Relaxed);
            worker.await
        }
    };
    match result.context("the capture thread failed")? {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `netkit capture -r f | head`: the reader has seen enough.
        Err(err) if closed_pipe(&err) => Ok(ExitCode::SUCCESS),
        Err(err) => Err(err),
    }
}

fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn usage(err: &FilterError) -> ExitCode {
    eprintln!("netkit: {err}");
    ExitCode::from(2)
}

async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Where frames go: printed, or written to a pcapng file.
enum Output {
    Print(text::Printer<io::StdoutLock<'static>>),
    Json(json::Printer<io::StdoutLock<'static>>),
    Explain(explain::Explainer<io::StdoutLock<'static>>),
    Follow(follow::Follower<io::StdoutLock<'static>>),
    File {
        path: PathBuf,
        writer: Option<Writer<BufWriter<File>>>,
        interface: String,
        snaplen: u32,
        flush_each: bool,
        /// A count of the packets written, on a terminal's stderr only.
        progress: Option<indicatif::ProgressBar>,
    },
}

impl Output {
    fn new(
        args: &CaptureArgs,
        follow: Option<SocketAddr>,
        interface: &str,
        snaplen: u32,
    ) -> Output {
        let style = Style {
            verbose: args.verbose,
            hex: args.hex,
            absolute: args.absolute,
        };
        if let (None, Some(endpoint)) = (&args.write, follow) {
            return Output::Follow(follow::Follower::new(io::stdout().lock(), endpoint));
        }
        if args.write.is_none() && args.explain {
            return Output::Explain(explain::Explainer::new(io::stdout().lock()));
        }
        match (&args.write, args.json) {
            (Some(path), _) => Output::File {
                path: path.clone(),
                writer: None,
                interface: interface.to_owned(),
                snaplen,
                flush_each: args.packet_buffered,
                progress: std::io::stderr().is_terminal().then(|| {
                    indicatif::ProgressBar::new_spinner()
                        .with_message(format!("packets written to {}", path.display()))
                        .with_style(
                            indicatif::ProgressStyle::with_template("{spinner} {pos} {msg}")
                                .expect("a valid template"),
                        )
                }),
            },
            (None, true) => Output::Json(json::Printer::new(io::stdout().lock())),
            (None, false) => Output::Print(text::Printer::new(io::stdout().lock(), style)),
        }
    }

    fn frame(&mut self, number: u64, link: LinkType, frame: &Frame) -> anyhow::Result<()> {
        match self {
            Output::Print(printer) => printer.frame(link, frame)?,
            Output::Json(printer) => printer.frame(number, link, frame)?,
            Output::Explain(explainer) => explainer.frame(link, frame)?,
            Output::Follow(follower) => follower.frame(link, frame)?,
            Output::File {
                path,
                writer,
                interface,
                snaplen,
                flush_each,
                progress,
            } => {
                if writer.is_none() {
                    let file = File::create(&*path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    *writer = Some(Writer::new(
                        BufWriter::new(file),
                        link,
                        *snaplen,
                        interface,
                    )?);
                }
                if let Some(writer) = writer {
                    writer.write(frame)?;
                    if *flush_each {
                        writer.get_mut().flush()?;
                    }
                    if let Some(progress) = progress {
                        progress.inc(1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes; a file is created even when no packet was written.
    fn finish(self, link: LinkType) -> anyhow::Result<()> {
        match self {
            Output::Print(mut printer) => printer.flush()?,
            Output::Json(mut printer) => printer.flush()?,
            Output::Explain(mut explainer) => explainer.flush()?,
            Output::Follow(mut follower) => follower.flush()?,
            Output::File {
                path,
                writer,
                interface,
                snaplen,
                progress,
                ..
            } => {
                if let Some(progress) = progress {
                    progress.finish_and_clear();
                }
                let writer = match writer {
                    Some(writer) => writer,
                    None => {
                        let file = File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        Writer::new(BufWriter::new(file), link, snaplen, &interface)?
                    }
                };
                writer
                    .into_inner()
                    .into_inner()
                    .map_err(|err| err.into_error())?
                    .sync_all()?;
            }
        }
        Ok(())
    }
}

/// Compiled programs, one per link type met (a pcapng file may mix them).
#[derive(Default)]
struct Programs(Vec<(LinkType, Vec<Insn>)>);

impl Programs {
    fn keeps(&mut self, expr: Option<&Expr>, link: LinkType, data: &[u8]) -> anyhow::Result<bool> {
        let Some(expr) = expr else { return Ok(true) };
        if let Some((_, program)) = self.0.iter().find(|(known, _)| *known == link) {
            return Ok(filter::vm::run(program, data) > 0);
        }
        let program = filter::compile(expr, link, u32::MAX)?;
        let keep = filter::vm::run(&program, data) > 0;
        self.0.push((link, program));
        Ok(keep)
    }
}

fn read_file(
    args: &CaptureArgs,
    follow: Option<SocketAddr>,
    path: &PathBuf,
    expr: Option<&Expr>,
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = Reader::open(io::BufReader::new(file))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut output = Output::new(args, follow, "file", FULL_SNAPLEN);
    let mut programs = Programs::default();
    let mut number = 0;
    let mut last_link = LinkType::Ethernet;
    for item in reader {
        let (link, frame) = item.with_context(|| format!("cannot read {}", path.display()))?;
        last_link = link;
        if !programs.keeps(expr, link, &frame.data)? {
            continue;
        }
        number += 1;
        output.frame(number, link, &frame)?;
        if args.count.is_some_and(|count| number >= count) {
            break;
        }
    }
    output.finish(last_link)
}

fn capture_live(
    args: &CaptureArgs,
    follow: Option<SocketAddr>,
    expr: Option<&Expr>,
    snaplen: u32,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let link = live::link_type(&args.interface)?;
    let program = match expr {
        Some(expr) => filter::compile(expr, link, snaplen)?,
        None => filter::accept_all(snaplen),
    };
    let mut capture = Capture::open(&args.interface, &program, snaplen)?;
    eprintln!(
        "listening on {}, link-type {}, snapshot length {snaplen} bytes",
        args.interface,
        link.name()
    );
    let mut output = Output::new(args, follow, &args.interface, snaplen);
    let mut captured = 0;
    let done = |captured: u64| args.count.is_some_and(|count| captured >= count);
    let mut frame = Frame {
        timestamp: std::time::Duration::ZERO,
        original_len: 0,
        data: Vec::with_capacity(snaplen as usize),
    };
    while !done(captured) {
        // Once asked to stop, take what is queued without waiting for more.
        let stopping = stop.load(Ordering::Relaxed);
        if capture.next_into(&mut frame, stopping)? {
            captured += 1;
            output.frame(captured, link, &frame)?;
        } else if stopping {
            break;
        }
    }
    output.finish(link)?;
    let stats = capture.stats()?;
    eprintln!("{captured} packets captured");
    eprintln!("{} packets received by filter", stats.received);
    eprintln!("{} packets dropped by kernel", stats.dropped);
    eprintln!("{} packets dropped by netkit", stats.discarded);
    Ok(())
}
