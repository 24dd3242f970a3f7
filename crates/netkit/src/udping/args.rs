//! The flags of `netkit udping serve`, `ping` and `heartbeat`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, Subcommand, ValueEnum};

use crate::duration;
use crate::serve::{GraceArgs, LogArgs, LogFormat};

use super::{host_port, socket_addr};

#[derive(Debug, Subcommand)]
pub enum UdpingCommand {
    /// Echo server (lab text or STAMP reflector) with optional impairment
    /// and heartbeat monitor
    #[command(after_help = "\
Examples:
  netkit udping serve                                  upper-cased echo on 127.0.0.1:12000
  netkit udping serve --loss 0.3 --seed 1              the lab's server: drop ~30%, reproducibly
  netkit udping serve --delay 20ms±5ms --reorder 0.05  delay with jitter, some replies reordered
  netkit udping serve --mode stamp --stateful          RFC 8762 STAMP session-reflector
  netkit udping serve --heartbeat --dead-after 3 --status

Impairment decisions are logged at debug level: RUST_LOG=udping=debug.")]
    Serve(ServeArgs),
    /// Send numbered probes and report RTT, loss, jitter, reordering and duplicates
    #[command(after_help = "\
Examples:
  netkit udping ping 127.0.0.1:12000                   10 lab-style pings, one a second
  netkit udping ping -c 100 -i 0.05 -W 0.5 127.0.0.1:12000
  netkit udping ping --mode stamp 127.0.0.1:862        STAMP session-sender
  netkit udping ping --json 127.0.0.1:12000
  netkit udping ping --flood --window 64 -s 64 --duration 5 127.0.0.1:12000   load test")]
    Ping(PingArgs),
    /// Send a heartbeat (sequence number and time) every interval until stopped
    #[command(after_help = "\
Examples:
  netkit udping heartbeat 127.0.0.1:12000
  netkit udping heartbeat --interval 250ms --bind 127.0.0.1:40000 127.0.0.1:12000")]
    Heartbeat(HeartbeatArgs),
}

impl UdpingCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, UdpingCommand::Serve(_))
    }

    pub fn log_format(&self) -> LogFormat {
        match self {
            UdpingCommand::Serve(args) => args.log.log_format,
            _ => LogFormat::Text,
        }
    }

    /// A combination of flags that clap cannot rule out, as the usage
    /// error to report.
    pub fn conflict(&self) -> Option<&'static str> {
        match self {
            UdpingCommand::Serve(args) if args.stateful && matches!(args.mode, ModeArg::Text) => {
                Some("--stateful applies to the STAMP reflector: add --mode stamp")
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The lab's `Ping <seq> <time>`, answered upper-cased
    Text,
    /// RFC 8762 STAMP, unauthenticated mode
    Stamp,
}

impl From<ModeArg> for udping::Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Text => udping::Mode::Text,
            ModeArg::Stamp => udping::Mode::Stamp,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:12000", value_parser = socket_addr)]
    pub bind: SocketAddr,
    /// Wire format of the replies
    #[arg(long, value_enum, default_value = "text")]
    pub mode: ModeArg,
    /// STAMP: number replies per sender, so senders can tell forward from
    /// backward loss
    #[arg(long)]
    pub stateful: bool,
    /// Drop each datagram with this probability (0 to 1, or a percentage)
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub loss: f64,
    /// Delay each reply by D, varying uniformly within ±J (e.g. 20ms, 20ms±5ms, 20ms+-5ms);
    /// replies to one sender keep their order (only --reorder reorders)
    #[arg(long, value_name = "D[±J]", value_parser = delay)]
    pub delay: Option<Delay>,
    /// Send each reply twice with this probability
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub duplicate: f64,
    /// Hold a reply back and send it after the next one to the same sender
    /// with this probability
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub reorder: f64,
    /// Seed for the impairment decisions; the same seed repeats a run exactly
    /// (default: random, and logged)
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Watch `Heartbeat <seq> <time>` datagrams (they are not echoed): log
    /// lost sequence numbers and clients that stop or come back
    #[arg(long)]
    pub heartbeat: bool,
    /// Heartbeat interval the clients use
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = nonzero_duration, requires = "heartbeat")]
    pub interval: Duration,
    /// A client is stopped after this many missed intervals
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..), requires = "heartbeat")]
    pub dead_after: u32,
    /// Print a live table of heartbeat clients (last seen, received, lost, loss %)
    #[arg(long, requires = "heartbeat")]
    pub status: bool,
    #[command(flatten)]
    pub grace: GraceArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Server address, as HOST:PORT
    #[arg(value_name = "HOST:PORT", value_parser = host_port)]
    pub target: String,
    /// Probes to send (0: until interrupted)
    #[arg(short = 'c', long, value_name = "COUNT", default_value_t = 10)]
    pub count: u64,
    /// Time between probes
    #[arg(short = 'i', long, value_name = "INTERVAL", default_value = "1s", value_parser = duration::parse)]
    pub interval: Duration,
    /// How long each probe waits for its reply
    #[arg(short = 'W', long, value_name = "TIMEOUT", default_value = "1s", value_parser = nonzero_duration)]
    pub timeout: Duration,
    /// Datagram size in bytes (text probes are padded; STAMP needs at least 44)
    #[arg(short = 's', long, value_name = "SIZE", value_parser = clap::value_parser!(u16).range(1..=65_507).map(usize::from))]
    pub size: Option<usize>,
    /// Wire format of the probes
    #[arg(long, value_enum, default_value = "text")]
    pub mode: ModeArg,
    /// Print one JSON object per line: each reply and timeout as it
    /// happens, then the summary (with --flood, the summary only)
    #[arg(long)]
    pub json: bool,
    /// Load test: keep --window probes in flight for --duration and report
    /// the reply rate
    #[arg(long)]
    pub flood: bool,
    /// Probes in flight at once with --flood
    #[arg(long, value_name = "N", default_value_t = 64, requires = "flood", value_parser = clap::value_parser!(u32).range(1..=65_536).map(|n| n as usize))]
    pub window: usize,
    /// How long --flood runs
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse, requires = "flood")]
    pub duration: Duration,
    /// Local address to send from
    #[arg(long, value_name = "ADDR", value_parser = socket_addr)]
    pub bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// Server address, as HOST:PORT
    #[arg(value_name = "HOST:PORT", value_parser = host_port)]
    pub target: String,
    /// Time between heartbeats
    #[arg(short = 'i', long, value_name = "DURATION", default_value = "1s", value_parser = nonzero_duration)]
    pub interval: Duration,
    /// Heartbeats to send (0: until interrupted)
    #[arg(short = 'c', long, value_name = "COUNT", default_value_t = 0)]
    pub count: u64,
    /// Local address to send from; a client restarted with the same address
    /// is recognised as the same client
    #[arg(long, value_name = "ADDR", value_parser = socket_addr)]
    pub bind: Option<SocketAddr>,
    /// Sequence number of the first heartbeat
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub first_sequence: u32,
    /// Print one JSON object a line: the start, each heartbeat (seq, time,
    /// reachable), then a summary
    #[arg(long)]
    pub json: bool,
}

/// A fixed delay and the half-width of its uniform jitter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delay {
    base: Duration,
    jitter: Duration,
}

impl Delay {
    pub fn into_parts(self) -> (Duration, Duration) {
        (self.base, self.jitter)
    }
}

fn delay(text: &str) -> Result<Delay, String> {
    let (base, jitter) = match text.split_once('±').or_else(|| text.split_once("+-")) {
        Some((base, jitter)) => (base, Some(jitter)),
        None => (text, None),
    };
    Ok(Delay {
        base: duration::parse(base)?,
        jitter: jitter.map(duration::parse).transpose()?.unwrap_or_default(),
    })
}

/// A heartbeat interval (zero would mean every client is always stopped)
/// or a reply timeout (zero would mean every reply is late).
fn nonzero_duration(text: &str) -> Result<Duration, String> {
    match duration::parse(text)? {
        Duration::ZERO => Err(format!("`{text}` must be longer than zero")),
        d => Ok(d),
    }
}

fn probability(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(number) => (number, 0.01),
        None => (text, 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a probability (examples: 0.3, 30%)"))?;
    let value = value * scale;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("`{text}` is not between 0 and 1"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        let d = delay("20ms±5ms").unwrap().into_parts();
        assert_eq!(d, (Duration::from_millis(20), Duration::from_millis(5)));
        let d = delay("0.1+-0.02").unwrap().into_parts();
        assert_eq!(d, (Duration::from_millis(100), Duration::from_millis(20)));
        assert_eq!(delay("1s").unwrap().into_parts().1, Duration::ZERO);
        assert!(delay("soon").is_err());
        assert!(delay("10ms±lots").is_err());
    }

    #[test]
    fn heartbeat_intervals_are_not_zero() {
        assert_eq!(nonzero_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(nonzero_duration("0").is_err());
        assert!(nonzero_duration("0ms").is_err());
    }

    #[test]
    fn targets_need_a_port() {
        for good in [
            "127.0.0.1:12000",
            "localhost:9",
            "[::1]:12000",
            "[fe80::1%2]:5",
        ] {
            assert_eq!(host_port(good).as_deref(), Ok(good));
        }
        for bad in [
            "127.0.0.1",
            "localhost",
            "::1",
            "::1:12000",
            ":12000",
            "host:port",
            "h:70000",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn probabilities() {
        assert_eq!(probability("0.3"), Ok(0.3));
        assert_eq!(probability("30%"), Ok(0.3));
        assert_eq!(probability("1"), Ok(1.0));
        assert!(probability("1.5").is_err());
        assert!(probability("-0.1").is_err());
        assert!(probability("NaN").is_err());
        assert!(probability("often").is_err());
    }
}
