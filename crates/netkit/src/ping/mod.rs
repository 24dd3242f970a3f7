//! `netkit ping [OPTIONS] HOST...`: ICMP echo with iputils' options and
//! output, for one host or thousands at once.

mod json;
mod plot;
mod text;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ping::resolve::{self, Resolved};
use ping::{Config, Event, Family, Remote, Report, Session, Statistics, Target};

use crate::duration;

const EXAMPLES: &str = "\
Examples:
  netkit ping -c 3 127.0.0.1                  three probes, output as iputils ping prints it
  netkit ping -c 5 -i 0.2 -W 1 ::1            IPv6, 200 ms apart, 1 s for each reply
  netkit ping -q -c 1 -i 0 --file hosts.txt   sweep many hosts at once, then a table
  netkit ping --json -c 2 localhost           one JSON object per line, for scripts
  netkit ping -c 20 --plot rtt.svg localhost  chart the round-trip times

Sockets: an unprivileged ICMP datagram socket when net.ipv4.ping_group_range
includes your group, otherwise a raw socket (root, or cap_net_raw).
Several hosts are probed concurrently, each with its own sequence numbers.
Exit status: 0 if every host replied (with -w: COUNT times), 1 if one did
not, 2 on other errors.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct PingArgs {
    /// Hosts to probe: names or IPv4/IPv6 addresses
    #[arg(value_name = "HOST", required_unless_present = "file")]
    hosts: Vec<String>,
    /// Also probe the hosts listed in FILE, one per line (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Stop after COUNT probes per host (with -w, after COUNT replies)
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Seconds between probes to a host; fractions allowed, below 0.002 only for root
    #[arg(short = 'i', long, value_name = "INTERVAL", default_value = "1", value_parser = duration::parse)]
    interval: Duration,
    /// Seconds to wait for each reply; a later one is reported as late, not received
    #[arg(short = 'W', long, value_name = "TIMEOUT", default_value = "10", value_parser = positive_duration)]
    timeout: Duration,
    /// Exit after DEADLINE whole seconds, however many probes were sent or answered
    #[arg(short = 'w', long, value_name = "DEADLINE", value_parser = whole_seconds)]
    deadline: Option<Duration>,
    /// Data bytes per probe (8 bytes of ICMP header are added)
    #[arg(short = 's', value_name = "SIZE", default_value_t = 56)]
    size: usize,
    /// Time to live of the probes (hop limit for IPv6)
    #[arg(short = 't', value_name = "TTL", value_parser = clap::value_parser!(u8).range(1..))]
    ttl: Option<u8>,
    /// Quiet: print only the header and the summaries
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the time (seconds since the epoch) before each line
    #[arg(short = 'D')]
    timestamps: bool,
    /// Numeric output: no reverse lookups of the addresses that answer
    #[arg(short = 'n')]
    numeric: bool,
    /// Report a probe still unanswered when the next one is sent
    #[arg(short = 'O')]
    outstanding: bool,
    /// IPv4 only
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 only
    #[arg(short = '6')]
    ipv6: bool,
    /// Print one JSON object per reply, error and lost probe, then one
    /// summary object per host, instead of text
    #[arg(long)]
    json: bool,
    /// When the run ends, write an SVG chart of round-trip time per host,
    /// lost probes marked
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let value = duration::parse(text)?;
    if value.is_zero() {
        return Err("the timeout must be longer than zero".to_owned());
    }
    Ok(value)
}

/// `-w` as iputils reads it: whole seconds, no fractions or units.
fn whole_seconds(text: &str) -> Result<Duration, String> {
    let seconds: i64 = text
        .parse()
        .map_err(|_| format!("invalid argument: '{text}'"))?;
    if !(0..=i64::from(i32::MAX)).contains(&seconds) {
        return Err(format!(
            "invalid argument: '{text}': out of range: 0 <= value <= {}",
            i32::MAX
        ));
    }
    Ok(Duration::from_secs(seconds.unsigned_abs()))
}

/// What the renderers need to know about a host.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub resolved: Resolved,
    /// Print addresses only: `-n`, or the host was given as an address.
    pub numeric: bool,
}

impl HostInfo {
    /// The name iputils titles a host with: the canonical name for IPv4,
    /// the name as given for IPv6.
    pub fn title(&self) -> &str {
        match (self.resolved.family(), &self.resolved.canonical) {
            (Family::V4, Some(canonical)) => canonical,
            _ => &self.resolved.input,
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.resolved.addr
    }
}

/// Receives what a run reports, in order, and prints it.
trait Renderer: Send {
    fn header(&mut self, session: &Session);
    fn event(&mut self, event: Event);
    fn summary(&mut self, report: &Report);
}

pub async fn run(args: PingArgs) -> anyhow::Result<ExitCode> {
    match prepare(&args) {
        Ok((hosts, session)) => probe(args, hosts, session).await,
        Err(err) => {
            eprintln!("netkit: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Resolves the hosts and opens the sockets: everything that fails with
/// exit status 2 before the first probe.
fn prepare(args: &PingArgs) -> anyhow::Result<(Vec<HostInfo>, Session)> {
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Some(Family::V4),
        (_, true) => Some(Family::V6),
        _ => None,
    };
    let mut names = args.hosts.clone();
    if let Some(path) = &args.file {
        names.extend(read_host_list(path)?);
    }
    let hosts = names
        .iter()
        .map(|name| {
            let resolved = resolve::lookup(name, family)?;
            // iputils prints names only for a host given by name; an IPv6
            // address with a scope (`fe80::1%eth0`) counts as an address.
            let numeric = args.numeric
                || resolved.numeric
                || (resolved.family() == Family::V6 && name.contains(':'));
            Ok(HostInfo { resolved, numeric })
        })
        .collect::<Result<Vec<_>, ping::Error>>()?;
    let unscoped = hosts.iter().find(|host| match host.addr() {
        IpAddr::V6(addr) => addr.is_unicast_link_local() && host.resolved.scope_id == 0,
        IpAddr::V4(_) => false,
    });
    if let Some(host) = unscoped {
        anyhow::bail!(
            "{}: a link-local address needs its interface, as in {}%eth0",
            host.resolved.input,
            host.addr()
        );
    }
    if let [host] = hosts.as_slice() {
        ping::check_route(host.addr(), host.resolved.scope_id).context("connect")?;
    }
    let targets: Vec<Target> = hosts
        .iter()
        .map(|host| Target {
            addr: host.addr(),
            scope_id: host.resolved.scope_id,
        })
        .collect();
    let config = Config {
        count: args.count,
        interval: args.interval,
        timeout: args.timeout,
        deadline: args.deadline,
        payload_len: args.size,
        hop_limit: args.ttl,
        report_outstanding: args.outstanding,
    };
    let session = Session::new(config, &targets)?;
    for family in [Family::V4, Family::V6] {
        if let Some(kind) = session.socket_kind(family) {
            tracing::debug!("{family} probes go over a {kind} ICMP socket");
        }
    }
    Ok((hosts, session))
}

fn read_host_list(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read the host list {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut hosts = Vec::new();
    for line in reader.lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let host = line.split('#').next().unwrap_or_default().trim();
        if !host.is_empty() {
            hosts.push(host.to_owned());
        }
    }
    Ok(hosts)
}

async fn probe(args: PingArgs, hosts: Vec<HostInfo>, session: Session) -> anyhow::Result<ExitCode> {
    let mut renderer: Box<dyn Renderer> = if args.json {
        Box::new(json::Json::new(hosts.clone(), args.quiet))
    } else {
        Box::new(text::Text::new(hosts.clone(), &args))
    };
    let mut plot = args.plot.as_ref().map(|_| plot::Plot::new(hosts.len()));
    renderer.header(&session);

    let remote = Remote::new().context("cannot set up signal handling")?;
    let signals = tokio::spawn(steer_by_signals(remote.clone()));
    let (renderer, plot, report) = tokio::task::spawn_blocking(move || {
        let report = session.run(&remote, |event| {
            if let Some(plot) = plot.as_mut() {
                plot.record(&event);
            }
            renderer.event(event);
        });
        (renderer, plot, report)
    })
    .await
    .context("the ping session panicked")?;
    signals.abort();
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("netkit: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut renderer = renderer;
    renderer.summary(&report);
    if let (Some(path), Some(plot)) = (&args.plot, plot) {
        let titles: Vec<String> = hosts.iter().map(|host| host.title().to_owned()).collect();
        if let Err(err) = std::fs::write(path, plot.render(&titles)) {
            eprintln!("netkit: cannot write the plot to {}: {err}", path.display());
            return Ok(ExitCode::from(2));
        }
    }
    let all_answered = report
        .hosts
        .iter()
        .all(|stats| answered(stats, args.count, args.deadline));
    Ok(if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// iputils' exit rule for one host: some reply came, and with a deadline
/// as many as were asked for.
fn answered(stats: &Statistics, count: Option<u64>, deadline: Option<Duration>) -> bool {
    let enough = match (deadline, count) {
        (Some(_), Some(count)) => stats.received >= count,
        _ => true,
    };
    stats.received > 0 && enough
}

/// SIGINT (and SIGTERM) end the run early, the summaries still printed;
/// SIGQUIT (Ctrl-\) prints a status line and the run goes on, as in
/// iputils.
async fn steer_by_signals(remote: Remote) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut quit)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::quit()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = quit.recv() => remote.ask_status(),
        }
    }
    remote.stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_rule_follows_iputils() {
        let stats = |received| {
            let mut stats = Statistics::default();
            stats.transmitted = 3;
            stats.received = received;
            stats
        };
        let deadline = Some(Duration::from_secs(5));
        assert!(answered(&stats(1), Some(3), None));
        assert!(!answered(&stats(0), Some(3), None));
        assert!(!answered(&stats(2), Some(3), deadline));
        assert!(answered(&stats(3), Some(3), deadline));
        assert!(answered(&stats(1), None, deadline));
    }
}
