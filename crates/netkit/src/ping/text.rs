//! Text output, line for line as iputils ping prints it, plus a table of
//! all hosts when there are several.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ping::{Event, Family, ProbeError, Reply, ReplyStatus, Report, Session, Statistics};

use super::{HostInfo, PingArgs, Renderer};

/// Beyond this many hosts, output is flushed in blocks rather than line by
/// line (when it is not going to a terminal).
const FLUSH_EACH_UP_TO: usize = 100;

pub struct Text {
    hosts: Vec<HostInfo>,
    payload_len: usize,
    quiet: bool,
    timestamps: bool,
    /// Below a millisecond iputils floods, and its summary adds ipg/ewma.
    flood: bool,
    out: BufWriter<Stdout>,
    flush_each: bool,
    names: HashMap<IpAddr, String>,
}

impl Text {
    pub fn new(hosts: Vec<HostInfo>, args: &PingArgs) -> Text {
        let stdout = std::io::stdout();
        let flush_each = hosts.len() <= FLUSH_EACH_UP_TO || stdout.is_terminal();
        Text {
            hosts,
            payload_len: args.size,
            quiet: args.quiet,
            timestamps: args.timestamps,
            flood: args.interval < Duration::from_millis(1),
            out: BufWriter::with_capacity(64 * 1024, stdout),
            flush_each,
            names: HashMap::new(),
        }
    }

    /// An address as iputils shows it: alone when numeric, otherwise
    /// `name (address)`, the name looked up once.
    fn show(&mut self, host: usize, addr: IpAddr) -> String {
        let numeric = with_scope(addr, self.hosts[host].resolved.scope_id);
        if self.hosts[host].numeric {
            return numeric;
        }
        self.names
            .entry(addr)
            .or_insert_with(|| format!("{} ({numeric})", ping::resolve::reverse(addr)))
            .clone()
    }

    fn stamp(&self, at: SystemTime) -> String {
        if !self.timestamps {
            return String::new();
        }
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        format!("[{}.{:06}] ", since.as_secs(), since.subsec_micros())
    }

    fn reply(&mut self, reply: &Reply) -> String {
        let family = Family::of(&self.hosts[reply.host].addr());
        let mut line = self.stamp(reply.at);
        let from = self.show(reply.host, reply.from);
        let _ = write!(
            line,
            "{} bytes from {from}: icmp_seq={}",
            reply.bytes, reply.seq
        );
        if let Some(ttl) = reply.hop_limit {
            let _ = write!(line, " ttl={ttl}");
        }
        if reply.bytes < self.payload_len + 8 {
            line.push_str(" (truncated)");
            return line;
        }
        if let Some(micros) = reply.rtt_micros() {
            let _ = write!(line, " time={} ms", format_rtt(micros));
        }
        match reply.status {
            ReplyStatus::Duplicate => line.push_str(" (DUP!)"),
            ReplyStatus::BadChecksum => line.push_str(" (BAD CHECKSUM!)"),
            ReplyStatus::Late => line.push_str(" (LATE!)"),
            ReplyStatus::Fresh => {}
        }
        if reply.wrong_source && family == Family::V6 {
            line.push_str(" (DIFFERENT ADDRESS!)");
        }
        if let Some(mismatch) = &reply.mismatch {
            let first = mismatch.first;
            let _ = write!(
                line,
                "\nwrong data byte #{} should be 0x{:x} but was 0x{:x}",
                first.index, first.expected, first.actual
            );
            for (at, byte) in mismatch.data.iter().enumerate() {
                let index = mismatch.offset + at;
                if index % 32 == mismatch.offset % 32 {
                    let _ = write!(line, "\n#{index}\t");
                }
                let _ = write!(line, "{byte:x} ");
            }
        }
        line
    }

    fn error(&mut self, error: &ProbeError) -> String {
        let mut line = self.stamp(error.at);
        let from = self.show(error.host, error.from);
        // iputils writes advice (redirect, source quench) with a colon.
        let colon = if error.message.is_failure() { "" } else { ":" };
        let _ = write!(
            line,
            "From {from}{colon} icmp_seq={} {}",
            error.seq, error.message
        );
        line
    }

    fn header_line(&mut self, index: usize) -> String {
        let host = &self.hosts[index];
        let addr = host.addr();
        let title = host.title().to_owned();
        match Family::of(&addr) {
            Family::V4 => format!(
                "PING {title} ({addr}) {}({}) bytes of data.",
                self.payload_len,
                self.payload_len + Family::V4.header_overhead()
            ),
            Family::V6 => {
                let shown = self.show(index, addr);
                format!("PING {title}({shown}) {} data bytes", self.payload_len)
            }
        }
    }

    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        if self.flush_each {
            let _ = self.out.flush();
        }
    }
}

impl Renderer for Text {
    fn header(&mut self, _session: &Session) {
        for index in 0..self.hosts.len() {
            let line = self.header_line(index);
            self.write_line(&line);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Reply(reply) if !self.quiet => {
                let line = self.reply(&reply);
                self.write_line(&line);
            }
            Event::Error(error) if !self.quiet => {
                let line = self.error(&error);
                self.write_line(&line);
            }
            Event::NoAnswerYet { seq, at, .. } => {
                let line = format!("{}no answer yet for icmp_seq={seq}", self.stamp(at));
                self.write_line(&line);
            }
            Event::SendFailed { error, .. } if !self.quiet => {
                let _ = self.out.flush();
                eprintln!("netkit: sendmsg: {}", without_os_error(&error));
            }
            Event::Status { host, stats } => {
                let _ = self.out.flush();
                let title = if self.hosts.len() > 1 {
                    format!("{}: ", self.hosts[host].title())
                } else {
                    String::new()
                };
                eprintln!("\r{title}{}", status_line(&stats));
            }
            Event::LocalError { error, .. } if !self.quiet => {
                let _ = self.out.flush();
                eprintln!("netkit: local error: {error}");
            }
            _ => {}
        }
    }

    fn summary(&mut self, report: &Report) {
        let mut text = String::new();
        for (host, stats) in self.hosts.iter().zip(&report.hosts) {
            summary_block(&mut text, host.title(), stats, self.flood);
        }
        if self.hosts.len() > 1 {
            text.push('\n');
            text.push_str(&table(&self.hosts, &report.hosts));
        }
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

/// A link-local IPv6 address with its interface, as `getnameinfo` writes
/// it (`fe80::1%eth0`); any other address as it is.
fn with_scope(addr: IpAddr, scope_id: u32) -> String {
    match addr {
        IpAddr::V6(v6) if v6.is_unicast_link_local() && scope_id != 0 => {
            match ping::resolve::interface_name(scope_id) {
                Some(name) => format!("{v6}%{name}"),
                None => format!("{v6}%{scope_id}"),
            }
        }
        _ => addr.to_string(),
    }
}

fn without_os_error(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(errno) => ping::socket::describe_errno(errno),
        None => error.to_string(),
    }
}

/// The statistics block iputils prints for one host.
pub fn summary_block(text: &mut String, title: &str, stats: &Statistics, flood: bool) {
    let _ = write!(
        text,
        "\n--- {title} ping statistics ---\n{} packets transmitted, {} received",
        stats.transmitted, stats.received
    );
    let extras = [
        (stats.duplicates, "duplicates"),
        (stats.corrupted, "corrupted"),
        (stats.errors, "errors"),
        (stats.late, "late"),
    ];
    for (count, what) in extras {
        if count > 0 {
            let _ = write!(text, ", +{count} {what}");
        }
    }
    if let Some(loss) = stats.loss_percent() {
        let _ = write!(
            text,
            ", {}% packet loss, time {}ms",
            format_g(f64::from(loss)),
            stats.time_ms()
        );
    }
    text.push('\n');
    let mut comma = "";
    if let Some(rtt) = stats.rtt() {
        let _ = write!(
            text,
            "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
            millis(rtt.min),
            millis(rtt.avg),
            millis(rtt.max),
            millis(rtt.mdev)
        );
        comma = ", ";
    }
    if stats.pipe > 1 {
        let _ = write!(text, "{comma}pipe {}", stats.pipe);
        comma = ", ";
    }
    if let (true, true, Some(ipg)) = (stats.received > 0, flood, stats.inter_packet_gap()) {
        let _ = write!(
            text,
            "{comma}ipg/ewma {}/{} ms",
            millis(ipg),
            millis(stats.ewma())
        );
    }
    text.push('\n');
}

/// iputils' answer to SIGQUIT: counts, whole-percent loss, and round trips
/// with the moving average.
pub fn status_line(stats: &Statistics) -> String {
    let loss = (stats.transmitted.saturating_sub(stats.received) * 100)
        .checked_div(stats.transmitted)
        .unwrap_or(0);
    let mut line = format!(
        "{}/{} packets, {loss}% loss",
        stats.received, stats.transmitted
    );
    if let Some(rtt) = stats.rtt() {
        let _ = write!(
            line,
            ", min/avg/ewma/max = {}/{}/{}/{} ms",
            millis(rtt.min),
            millis(rtt.avg),
            millis(stats.ewma()),
            millis(rtt.max)
        );
    }
    line
}

/// One row per host, aligned, after the per-host blocks.
fn table(hosts: &[HostInfo], stats: &[Statistics]) -> String {
    let header = [
        "HOST", "ADDRESS", "SENT", "RECV", "LOSS", "MIN", "AVG", "MAX", "MDEV",
    ];
    let rows: Vec<[String; 9]> = hosts
        .iter()
        .zip(stats)
        .map(|(host, stats)| {
            let rtt = stats.rtt();
            let column = |pick: fn(&ping::RttSummary) -> Duration| {
                rtt.as_ref().map_or("-".to_owned(), |rtt| millis(pick(rtt)))
            };
            [
                host.title().to_owned(),
                host.addr().to_string(),
                stats.transmitted.to_string(),
                stats.received.to_string(),
                stats.loss_percent().map_or("-".to_owned(), |loss| {
                    format!("{}%", format_g(f64::from(loss)))
                }),
                column(|rtt| rtt.min),
                column(|rtt| rtt.avg),
                column(|rtt| rtt.max),
                column(|rtt| rtt.mdev),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let mut line = |cells: [&str; 9]| {
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            // Names left-aligned, numbers right-aligned.
            if column < 2 {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        let trimmed = text.trim_end().len();
        text.truncate(trimmed);
        text.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    text.push_str("(round-trip times in ms)\n");
    text
}

/// `%ld.%03ld` of whole microseconds, as iputils prints milliseconds.
fn millis(value: Duration) -> String {
    let micros = value.as_micros();
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

/// A round trip as iputils prints it: three decimals below 1 ms, then
/// fewer, rounded, as the value grows.
pub fn format_rtt(micros: i64) -> String {
    if micros >= 100_000 - 50 {
        format!("{}", (micros + 500) / 1000)
    } else if micros >= 10_000 - 5 {
        format!(
            "{}.{:01}",
            (micros + 50) / 1000,
            ((micros + 50) % 1000) / 100
        )
    } else if micros >= 1000 {
        format!("{}.{:02}", (micros + 5) / 1000, ((micros + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", micros / 1000, micros % 1000)
    }
}

/// C's `%g`: six significant digits, trailing zeros dropped, exponent
/// form below 1e-4 and from 1e6.
pub fn format_g(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value == 0.0 {
            "0".to_owned()
        } else {
            value.to_string()
        };
    }
    let scientific = format!("{value:.5e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (5 - exponent) as usize;
    strip_zeros(&format!("{value:.decimals$}")).to_owned()
}

fn strip_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_rounding_matches_iputils() {
        assert_eq!(format_rtt(0), "0.000");
        assert_eq!(format_rtt(45), "0.045");
        assert_eq!(format_rtt(999), "0.999");
        assert_eq!(format_rtt(1000), "1.00");
        assert_eq!(format_rtt(1234), "1.23");
        assert_eq!(format_rtt(1235), "1.24");
        assert_eq!(format_rtt(9994), "9.99");
        assert_eq!(format_rtt(9995), "10.0");
        assert_eq!(format_rtt(12_345), "12.3");
        assert_eq!(format_rtt(99_949), "99.9");
        assert_eq!(format_rtt(99_950), "100");
        assert_eq!(format_rtt(1_503_400), "1503");
    }

    #[test]
    fn percent_g_matches_printf() {
        // Expected values from C's printf("%g", (float)x).
        let cases = [
            (0.0, "0"),
            (100.0, "100"),
            (50.0, "50"),
            (f64::from((100.0f64 / 3.0) as f32), "33.3333"),
            (f64::from((200.0f64 / 3.0) as f32), "66.6667"),
            (f64::from((100.0f64 / 7.0) as f32), "14.2857"),
            (f64::from(0.01f32), "0.01"),
            (f64::from(99.99f32), "99.99"),
            (1e-5, "1e-05"),
            (1_234_567.0, "1.23457e+06"),
        ];
        for (value, text) in cases {
            assert_eq!(format_g(value), text, "{value}");
        }
    }

    #[test]
    fn summary_block_like_iputils() {
        let mut stats = Statistics::default();
        stats.transmitted = 2;
        stats.received = 2;
        stats.elapsed = Duration::from_micros(201_400);
        stats.record_rtt(150);
        stats.record_rtt(39);
        let mut text = String::new();
        summary_block(&mut text, "::1", &stats, false);
        assert_eq!(
            text,
            "\n--- ::1 ping statistics ---\n\
             2 packets transmitted, 2 received, 0% packet loss, time 201ms\n\
             rtt min/avg/max/mdev = 0.039/0.094/0.150/0.055 ms\n"
        );
    }

    #[test]
    fn summary_without_replies_ends_with_a_blank_line() {
        let mut stats = Statistics::default();
        stats.transmitted = 3;
        stats.errors = 3;
        stats.elapsed = Duration::from_millis(402);
        let mut text = String::new();
        summary_block(&mut text, "10.0.0.2", &stats, false);
        assert_eq!(
            text,
            "\n--- 10.0.0.2 ping statistics ---\n\
             3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 402ms\n\n"
        );
    }

    #[test]
    fn status_line_like_iputils() {
        let mut stats = Statistics::default();
        stats.transmitted = 3;
        stats.received = 2;
        assert_eq!(status_line(&stats), "2/3 packets, 33% loss");
        stats.record_rtt(80);
        stats.record_rtt(160);
        assert_eq!(
            status_line(&stats),
            "2/3 packets, 33% loss, min/avg/ewma/max = 0.080/0.120/0.090/0.160 ms"
        );
    }

    #[test]
    fn flood_summary_adds_ipg_and_ewma() {
        let mut stats = Statistics::default();
        stats.transmitted = 3;
        stats.received = 3;
        stats.elapsed = Duration::from_micros(300);
        for rtt in [80, 160, 40] {
            stats.record_rtt(rtt);
        }
        stats.record_pipe(2);
        let mut text = String::new();
        summary_block(&mut text, "h", &stats, true);
        assert!(
            text.ends_with(
                "rtt min/avg/max/mdev = 0.040/0.093/0.160/0.049 ms, pipe 2, ipg/ewma 0.150/0.083 ms\n"
            ),
            "{text}"
        );
    }
}
