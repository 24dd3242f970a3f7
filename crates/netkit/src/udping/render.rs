//! How udping results look: ping-style lines and summary, JSON, and the
//! heartbeat status table.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use udping::{
    FloodSummary, Mode, Monitor, PingConfig, PingEvent, Reply, ReplyStatus, Summary, Unreachable,
};

/// `1 s`, `50 ms`, `1.5 s`.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", trim(d.as_secs_f64() * 1e3))
    } else {
        format!("{} s", trim(d.as_secs_f64()))
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// `--json`: one object per line, as `netkit ping --json` writes them: each
/// reply, probe left unanswered and stray datagram as it happens, then the
/// summary.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Reply {
        from: String,
        seq: u32,
        bytes: usize,
        rtt_ms: f64,
        /// `reply`, `duplicate` or `late`.
        status: &'static str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        out_of_order: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        matched_by_order: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reflector_seq: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        residence_ms: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ttl: Option<u8>,
    },
    NoReply {
        seq: u32,
        /// What the kernel last said about the path, if anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        unreachable: Option<String>,
    },
    Unmatched {
        from: String,
        bytes: usize,
    },
    Summary(&'a Summary),
    /// The summary of a `--flood` run.
    #[serde(rename = "summary")]
    FloodSummary(&'a FloodSummary),
}

fn write_line(line: &Line<'_>) {
    let mut out = std::io::stdout().lock();
    if let Ok(text) = serde_json::to_string(line) {
        let _ = writeln!(out, "{text}");
    }
    let _ = out.flush();
}

/// Milliseconds from whole nanoseconds, so JSON shows the shortest exact
/// value (0.052117, not 0.052117000000000004).
fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

pub struct PingPrinter {
    json: bool,
    /// Since the last reply.
    unreachable: Option<Unreachable>,
}

impl PingPrinter {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            unreachable: None,
        }
    }

    pub fn header(&self, target: SocketAddr, config: &PingConfig) {
        let count = config.count.map_or_else(
            || "until interrupted".to_owned(),
            |c| plural(c, "probe", "probes"),
        );
        println!(
            "UDPING {target} ({} mode): {count}, interval {}, timeout {}",
            config.mode,
            duration(config.interval),
            duration(config.timeout)
        );
    }

    pub fn event(&mut self, event: PingEvent) {
        if self.json {
            self.json_event(event);
            return;
        }
        match event {
            PingEvent::Sent { .. } => return,
            PingEvent::Reply(reply) => {
                self.unreachable = None;
                println!("{}", reply_line(&reply));
            }
            PingEvent::Timeout { sequence } => {
                let hint = match self.unreachable {
                    Some(Unreachable::Port) => {
                        " (port unreachable: is the server running?)".to_owned()
                    }
                    Some(other) => format!(" ({other})"),
                    None => String::new(),
                };
                println!("Request timed out (seq={sequence}){hint}");
            }
            PingEvent::MatchingByOrder => println!(
                "replies carry no sequence number: sending one probe at a time (stop-and-wait), \
                 each reply matched to the probe in flight"
            ),
            PingEvent::Unmatched { from, bytes } => {
                println!("Unmatched reply from {from}: {bytes} bytes answer no probe")
            }
            PingEvent::Unreachable(kind) => self.unreachable = Some(kind),
        }
        let _ = std::io::stdout().flush();
    }

    fn json_event(&mut self, event: PingEvent) {
        let line = match event {
            PingEvent::Reply(reply) => {
                self.unreachable = None;
                Line::Reply {
                    from: reply.from.to_string(),
                    seq: reply.sequence,
                    bytes: reply.bytes,
                    rtt_ms: millis(reply.rtt),
                    status: match reply.status {
                        ReplyStatus::OnTime => "reply",
                        ReplyStatus::Duplicate => "duplicate",
                        ReplyStatus::Late => "late",
                    },
                    out_of_order: reply.out_of_order,
                    matched_by_order: reply.by_order,
                    reflector_seq: reply.stamp.map(|s| s.reflector_sequence),
                    residence_ms: reply.stamp.map(|s| millis(s.residence)),
                    ttl: reply.stamp.map(|s| s.ttl),
                }
            }
            PingEvent::Timeout { sequence } => Line::NoReply {
                seq: sequence,
                unreachable: self.unreachable.map(|kind| kind.to_string()),
            },
            PingEvent::Unmatched { from, bytes } => Line::Unmatched {
                from: from.to_string(),
                bytes,
            },
            PingEvent::Unreachable(kind) => {
                self.unreachable = Some(kind);
                return;
            }
            PingEvent::Sent { .. } | PingEvent::MatchingByOrder => return,
        };
        write_line(&line);
    }

    pub fn finish(self, summary: &Summary) -> anyhow::Result<()> {
        if self.json {
            write_line(&Line::Summary(summary));
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        write_summary(&mut out, summary)?;
        out.flush().context("cannot write to stdout")
    }
}

fn reply_line(reply: &Reply) -> String {
    let lead = match reply.status {
        ReplyStatus::Late => "Late reply",
        _ => "Reply",
    };
    let mut line = format!(
        "{lead} from {}: seq={} time={} ms",
        reply.from,
        reply.sequence,
        ms(reply.rtt)
    );
    if let Some(stamp) = reply.stamp {
        line.push_str(&format!(
            " (net of {} ms in reflector) reflector_seq={} ttl={}",
            ms(stamp.residence),
            stamp.reflector_sequence,
            stamp.ttl
        ));
    }
    match reply.status {
        ReplyStatus::Duplicate => line.push_str(" (DUP!)"),
        ReplyStatus::Late => line.push_str(" (after timeout)"),
        ReplyStatus::OnTime => {}
    }
    if reply.out_of_order {
        line.push_str(" (out of order)");
    }
    if reply.by_order {
        line.push_str(" (matched by order)");
    }
    line
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_summary(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "--- {} udping statistics ---", s.target)?;
    writeln!(
        out,
        "{} sent, {} received, {:.1}% loss, {}, {} out of order, {} late, time {:.0} ms",
        plural(s.sent, "probe", "probes"),
        s.received,
        s.loss_percent,
        plural(s.duplicates, "duplicate", "duplicates"),
        s.out_of_order,
        s.late,
        s.elapsed_ms
    )?;
    if s.unmatched > 0 {
        writeln!(
            out,
            "{} matched no probe",
            plural(s.unmatched, "reply", "replies")
        )?;
    }
    if s.matched_by_order {
        writeln!(
            out,
            "replies carried no sequence number: they were matched to probes by order, \
             one probe at a time (stop-and-wait)"
        )?;
    }
    if let Some(rtt) = s.rtt_ms {
        let net = if s.mode == Mode::Stamp {
            " (net of reflector residence)"
        } else {
            ""
        };
        writeln!(
            out,
            "rtt min/avg/max/mdev = {:.3}/{:.3}/{:.3}/{:.3} ms{net}, jitter {:.3} ms",
            rtt.min, rtt.avg, rtt.max, rtt.mdev, s.jitter_ms
        )?;
    }
    if let Some(residence) = s.residence_ms {
        writeln!(out, "reflector residence avg {residence:.3} ms")?;
    }
    if let Some(loss) = s.stamp_loss {
        match (loss.forward, loss.backward) {
            (Some(forward), Some(backward)) => writeln!(
                out,
                "loss by direction: forward {forward}, backward {backward}, undetermined {} (reflector {})",
                loss.undetermined.unwrap_or(0),
                if loss.reflector_stateful {
                    "stateful"
                } else {
                    "sequence numbers match ours"
                }
            )?,
            _ => writeln!(
                out,
                "loss by direction unknown: the reflector is stateless (it copies our sequence numbers)"
            )?,
        }
    }
    Ok(())
}

pub fn flood_summary(s: &FloodSummary, json: bool) -> anyhow::Result<()> {
    if json {
        write_line(&Line::FloodSummary(s));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "flood {} ({} mode, {}-byte datagrams, window {}): {} sent, {} received in {:.2} s: {:.0} replies/s{}",
        s.target,
        s.mode,
        s.size,
        s.window,
        s.sent,
        s.received,
        s.elapsed_ms / 1e3,
        s.rate_pps,
        if s.stalls > 0 {
            format!(", {} stalls", s.stalls)
        } else {
            String::new()
        }
    )?;
    out.flush().context("cannot write to stdout")
}

/// Redraws the heartbeat table every `every` until aborted.
pub async fn status_table(monitor: Monitor, every: Duration) {
    let terminal = std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let rows = monitor.snapshot(Instant::now());
        let mut out = std::io::stdout().lock();
        if terminal {
            // Clear the screen and home the cursor: a live table, like top.
            let _ = write!(out, "\x1b[H\x1b[2J");
        }
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:>10} {:>9} {:>9} {:>7} {:>7} {:>11}",
            "CLIENT", "STATE", "INTERVAL", "LAST SEEN", "RECEIVED", "LOST", "LOSS%", "JITTER ms"
        );
        for row in &rows {
            let _ = writeln!(
                out,
                "{:<24} {:<8} {:>9.3}s {:>8.1}s {:>9} {:>7} {:>6.1}% {:>11.3}",
                row.client.to_string(),
                if row.alive { "alive" } else { "stopped" },
                row.interval.as_secs_f64(),
                row.last_seen.as_secs_f64(),
                row.received,
                row.lost,
                row.loss_percent,
                row.delay_variation_ms
            );
        }
        if !terminal {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }
}
