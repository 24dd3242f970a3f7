//! How udping results look: ping-style lines and summary, JSON, and the
//! heartbeat status table.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use udping::{FloodSummary, Mode, Monitor, PingConfig, PingEvent, Reply, ReplyStatus, Summary};

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

/// One probe's outcome in the JSON output.
#[derive(Debug, Serialize)]
struct ProbeRecord {
    seq: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
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
}

#[derive(Debug, Serialize)]
struct PingReport<'a> {
    summary: &'a Summary,
    probes: &'a [ProbeRecord],
}

pub struct PingPrinter {
    json: bool,
    records: Vec<ProbeRecord>,
    unreachable: bool,
}

impl PingPrinter {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            records: Vec::new(),
            unreachable: false,
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
        match event {
            PingEvent::Sent { .. } => return,
            PingEvent::Reply(reply) => {
                self.records.push(record(&reply));
                if !self.json {
                    println!("{}", reply_line(&reply));
                }
            }
            PingEvent::Timeout { sequence } => {
                self.records.push(ProbeRecord {
                    seq: sequence,
                    status: "timeout",
                    rtt_ms: None,
                    out_of_order: false,
                    matched_by_order: false,
                    reflector_seq: None,
                    residence_ms: None,
                    ttl: None,
                });
                if !self.json {
                    let hint = if self.unreachable {
                        " (port unreachable: is the server running?)"
                    } else {
                        ""
                    };
                    println!("Request timed out (seq={sequence}){hint}");
                }
            }
            PingEvent::MatchingByOrder => {
                if !self.json {
                    println!(
                        "replies carry no sequence number: matching each to the oldest probe still waiting"
                    );
                }
            }
            PingEvent::Unmatched { from, bytes } => {
                if !self.json {
                    println!("Unmatched reply from {from}: {bytes} bytes answer no probe");
                }
            }
            PingEvent::Unreachable => self.unreachable = true,
        }
        let _ = std::io::stdout().flush();
    }

    pub fn finish(self, summary: &Summary) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            let report = PingReport {
                summary,
                probes: &self.records,
            };
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            write_summary(&mut out, summary)?;
        }
        out.flush().context("cannot write to stdout")
    }
}

fn record(reply: &Reply) -> ProbeRecord {
    ProbeRecord {
        seq: reply.sequence,
        status: match reply.status {
            ReplyStatus::OnTime => "reply",
            ReplyStatus::Duplicate => "duplicate",
            ReplyStatus::Late => "late",
        },
        rtt_ms: Some(reply.rtt.as_secs_f64() * 1e3),
        out_of_order: reply.out_of_order,
        matched_by_order: reply.by_order,
        reflector_seq: reply.stamp.map(|s| s.reflector_sequence),
        residence_ms: reply.stamp.map(|s| s.residence.as_secs_f64() * 1e3),
        ttl: reply.stamp.map(|s| s.ttl),
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
        s.elapsed_s * 1e3
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
            "replies carried no sequence number: matched to probes by order"
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
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, s)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "flood {} ({} mode, {}-byte datagrams, window {}): {} sent, {} received in {:.2} s: {:.0} replies/s{}",
            s.target,
            s.mode,
            s.size,
            s.window,
            s.sent,
            s.received,
            s.elapsed_s,
            s.rate_pps,
            if s.stalls > 0 {
                format!(", {} stalls", s.stalls)
            } else {
                String::new()
            }
        )?;
    }
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
            "{:<24} {:<8} {:>10} {:>9} {:>7} {:>7} {:>11}",
            "CLIENT", "STATE", "LAST SEEN", "RECEIVED", "LOST", "LOSS%", "JITTER ms"
        );
        for row in &rows {
            let _ = writeln!(
                out,
                "{:<24} {:<8} {:>9.1}s {:>9} {:>7} {:>6.1}% {:>11.3}",
                row.client.to_string(),
                if row.alive { "alive" } else { "stopped" },
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
