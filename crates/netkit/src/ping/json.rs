//! `--json`: one JSON object per line for each reply, error and probe left
//! unanswered, then one summary object per host.

use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::time::Duration;

use ping::{Event, ReplyStatus, Report, Session, Statistics};
use serde::Serialize;

use super::{HostInfo, Renderer};

const FLUSH_EACH_UP_TO: usize = 100;

pub struct Json {
    hosts: Vec<HostInfo>,
    /// Only the summaries, as with `-q` in text.
    quiet: bool,
    out: BufWriter<Stdout>,
    flush_each: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Reply {
        host: &'a str,
        addr: String,
        from: String,
        seq: u16,
        bytes: usize,
        ttl: Option<u8>,
        rtt_ms: Option<f64>,
        /// `reply`, `duplicate`, `late` or `bad_checksum`.
        status: &'static str,
        time: String,
    },
    Error {
        host: &'a str,
        addr: String,
        from: String,
        seq: u16,
        icmp_type: u8,
        icmp_code: u8,
        message: String,
        /// Redirects and source quench are advice and do not count.
        counted: bool,
        time: String,
    },
    NoReply {
        host: &'a str,
        addr: String,
        seq: u16,
        sent: String,
    },
    NoAnswerYet {
        host: &'a str,
        addr: String,
        seq: u16,
        time: String,
    },
    SendFailed {
        host: &'a str,
        addr: String,
        seq: u16,
        error: String,
    },
    LocalError {
        host: &'a str,
        addr: String,
        error: String,
    },
    /// The statistics so far (SIGQUIT); the run goes on.
    Status(Totals<'a>),
    Summary(Totals<'a>),
}

#[derive(Debug, Serialize)]
struct Totals<'a> {
    host: &'a str,
    addr: String,
    transmitted: u64,
    received: u64,
    duplicates: u64,
    corrupted: u64,
    errors: u64,
    late: u64,
    loss_percent: Option<f32>,
    time_ms: f64,
    rtt_ms: Option<Rtt>,
}

#[derive(Debug, Serialize)]
struct Rtt {
    min: f64,
    avg: f64,
    max: f64,
    mdev: f64,
}

impl Json {
    pub fn new(hosts: Vec<HostInfo>, quiet: bool) -> Json {
        let stdout = std::io::stdout();
        let flush_each = hosts.len() <= FLUSH_EACH_UP_TO || stdout.is_terminal();
        Json {
            hosts,
            quiet,
            out: BufWriter::with_capacity(64 * 1024, stdout),
            flush_each,
        }
    }
}

fn write(out: &mut BufWriter<Stdout>, flush: bool, line: &Line<'_>) {
    if let Ok(text) = serde_json::to_string(line) {
        let _ = writeln!(out, "{text}");
    }
    if flush {
        let _ = out.flush();
    }
}

fn totals<'a>(hosts: &'a [HostInfo], index: usize, stats: &Statistics) -> Totals<'a> {
    let (host, addr) = describe(hosts, index);
    Totals {
        host,
        addr,
        transmitted: stats.transmitted,
        received: stats.received,
        duplicates: stats.duplicates,
        corrupted: stats.corrupted,
        errors: stats.errors,
        late: stats.late,
        loss_percent: stats.loss_percent(),
        time_ms: stats.time_ms() as f64,
        rtt_ms: stats.rtt().map(|rtt| Rtt {
            min: millis(rtt.min),
            avg: millis(rtt.avg),
            max: millis(rtt.max),
            mdev: millis(rtt.mdev),
        }),
    }
}

/// A host's name as given and its address.
fn describe(hosts: &[HostInfo], index: usize) -> (&str, String) {
    let host = &hosts[index];
    (&host.resolved.input, host.addr().to_string())
}

impl Renderer for Json {
    fn header(&mut self, _session: &Session) {}

    fn event(&mut self, event: Event) {
        if self.quiet && !matches!(event, Event::Status { .. }) {
            return;
        }
        let hosts = &self.hosts;
        let line = match &event {
            Event::Reply(reply) => {
                let (host, addr) = describe(hosts, reply.host);
                Line::Reply {
                    host,
                    addr,
                    from: reply.from.to_string(),
                    seq: reply.seq,
                    bytes: reply.bytes,
                    ttl: reply.hop_limit,
                    rtt_ms: reply.rtt.map(millis),
                    status: match reply.status {
                        ReplyStatus::Fresh => "reply",
                        ReplyStatus::Duplicate => "duplicate",
                        ReplyStatus::Late => "late",
                        ReplyStatus::BadChecksum => "bad_checksum",
                    },
                    time: crate::json::rfc3339(reply.at),
                }
            }
            Event::Error(error) => {
                let (host, addr) = describe(hosts, error.host);
                Line::Error {
                    host,
                    addr,
                    from: error.from.to_string(),
                    seq: error.seq,
                    icmp_type: error.message.msg_type(),
                    icmp_code: error.message.code(),
                    message: error.message.to_string(),
                    counted: error.message.is_failure(),
                    time: crate::json::rfc3339(error.at),
                }
            }
            Event::NoReply { host, seq, sent } => {
                let (host, addr) = describe(hosts, *host);
                Line::NoReply {
                    host,
                    addr,
                    seq: *seq,
                    sent: crate::json::rfc3339(*sent),
                }
            }
            Event::NoAnswerYet { host, seq, at } => {
                let (host, addr) = describe(hosts, *host);
                Line::NoAnswerYet {
                    host,
                    addr,
                    seq: *seq,
                    time: crate::json::rfc3339(*at),
                }
            }
            Event::SendFailed { host, seq, error } => {
                let (host, addr) = describe(hosts, *host);
                Line::SendFailed {
                    host,
                    addr,
                    seq: *seq,
                    error: error.to_string(),
                }
            }
            Event::Status { host, stats } => Line::Status(totals(hosts, *host, stats)),
            Event::LocalError { host, error } => {
                let (host, addr) = describe(hosts, *host);
                Line::LocalError {
                    host,
                    addr,
                    error: error.to_string(),
                }
            }
        };
        write(&mut self.out, self.flush_each, &line);
    }

    fn summary(&mut self, report: &Report) {
        for (index, stats) in report.hosts.iter().enumerate() {
            let line = Line::Summary(totals(&self.hosts, index, stats));
            write(&mut self.out, false, &line);
        }
        let _ = self.out.flush();
    }
}

/// Milliseconds, divided from whole nanoseconds so the printed value is
/// the shortest exact one (0.052117, not 0.052117000000000004).
fn millis(value: Duration) -> f64 {
    value.as_nanos() as f64 / 1e6
}
