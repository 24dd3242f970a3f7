//! `netkit chat bench`: renders the load generator's steps.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, ensure};
use chat::Password;
use chat::bench::{
    BenchConfig, KEEPS_UP_DELIVERY, KEEPS_UP_P99, ProcessUsage, Progress, Protocol, StepReport,
    Watched,
};
use clap::Args;

use crate::duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server to load, as HOST:PORT; repeat it for a cluster's nodes,
    /// and clients are spread over them round-robin
    #[arg(long, value_name = "HOST:PORT", required = true)]
    server: Vec<String>,
    /// Speak IRC (NICK, USER, JOIN, PRIVMSG, PING/PONG) instead of netkit's protocol
    #[arg(long)]
    irc: bool,
    /// The IRC channel to join
    #[arg(long, value_name = "NAME", default_value = "#bench")]
    channel: String,
    /// Clients to connect
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=60_000))]
    clients: u32,
    /// Messages per second per client; several (comma-separated) run as
    /// steps one after another on the same connections
    #[arg(
        long,
        value_name = "R[,R...]",
        value_delimiter = ',',
        default_value = "1"
    )]
    rate: Vec<f64>,
    /// How long each step is measured
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    duration: Duration,
    /// Time at each rate before measuring
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = duration::parse)]
    warmup: Duration,
    /// User names are this prefix and a number
    #[arg(long, value_name = "PREFIX", default_value = "bench")]
    prefix: String,
    /// A server's process id, for its memory and CPU (found from the port
    /// if not given); repeat it for each node, and the total is theirs
    #[arg(long, value_name = "PID")]
    server_pid: Vec<u32>,
    /// Another process to report beside the servers, not in their total
    /// (a cluster's Redis: `--watch redis=PID`)
    #[arg(long, value_name = "NAME=PID", value_parser = parse_watched)]
    watch: Vec<Watched>,
}

fn parse_watched(text: &str) -> Result<Watched, String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {text:?}"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    if name.is_empty() {
        return Err("the name before = is empty".into());
    }
    Ok(Watched {
        name: name.into(),
        pid,
    })
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    ensure!(
        args.rate.iter().all(|rate| rate.is_finite() && *rate > 0.0),
        "--rate takes positive numbers of messages per second"
    );
    let mut servers = Vec::new();
    for server in &args.server {
        let address = chat::client::resolve(server)
            .await?
            .into_iter()
            .next()
            .with_context(|| format!("{server} has no address"))?;
        servers.push(address);
    }
    let server = servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let protocol = if args.irc {
        Protocol::Irc {
            channel: args.channel.clone(),
        }
    } else {
        let password = std::env::var(super::PASSWORD_ENV).unwrap_or_else(|_| {
            let mut secret = [0u8; 16];
            getrandom::fill(&mut secret).expect("the operating system's random generator works");
            secret.iter().map(|byte| format!("{byte:02x}")).collect()
        });
        // Direct messages are not part of the load; any port will do.
        Protocol::Netkit {
            password: Password::new(password),
            udp_port: 9,
        }
    };
    let config = BenchConfig {
        servers,
        protocol,
        clients: args.clients as usize,
        rates: args.rate.clone(),
        duration: args.duration,
        warmup: args.warmup,
        prefix: args.prefix.clone(),
        server_pids: args.server_pid.clone(),
        watched: args.watch.clone(),
    };
    let kind = if args.irc { "irc" } else { "netkit" };
    println!(
        "chat bench: {kind} server {server}, {} clients, {:?} per step after {:?} warm-up",
        args.clients, args.duration, args.warmup
    );
    println!(
        "keeps up = all connected, >= {:.0}% of expected deliveries, p99 <= {} ms",
        KEEPS_UP_DELIVERY * 100.0,
        KEEPS_UP_P99.as_millis()
    );
    let reports = chat::bench::run(config, |progress| match progress {
        Progress::Joined { clients, took } => {
            println!("{clients} clients joined in {:.1} s", took.as_secs_f64());
        }
        Progress::Step(report) => {
            println!("{}", line(&report));
            // One server alone is already on the step's line.
            if report.processes.len() > 1 {
                for usage in &report.processes {
                    println!("  {}", process_line(usage, &report));
                }
            }
        }
    })
    .await
    .with_context(|| format!("benchmark against {server} failed"))?;
    let best = reports
        .iter()
        .filter(|report| report.keeps_up())
        .max_by(|a, b| {
            a.delivered_per_second()
                .total_cmp(&b.delivered_per_second())
        });
    match best {
        Some(best) => println!(
            "best sustained: {:.0} delivered/s at {}/s per client, p99 {:.1} ms, server rss {}, cpu {}",
            best.delivered_per_second(),
            best.rate,
            millis(best.p99),
            rss(best),
            cpu(best)
        ),
        None => println!("best sustained: none (no step kept up)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Server CPU as a share of one core, and per million deliveries.
fn cpu(report: &StepReport) -> String {
    match (report.server_cpu, report.cpu_per_million()) {
        (Some(cpu), Some(per_million)) => format!(
            "{:.0}% ({:.2} s per 1M delivered)",
            cpu.as_secs_f64() / report.measured.as_secs_f64() * 100.0,
            per_million.as_secs_f64()
        ),
        _ => "n/a".into(),
    }
}

/// One process of several: `NAME (pid P): rss X MiB, cpu Y% (Z µs per delivered)`.
fn process_line(usage: &ProcessUsage, report: &StepReport) -> String {
    let rss = usage.rss_kib.map_or_else(
        || "n/a".into(),
        |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
    );
    let cpu = match (usage.cpu, usage.cpu_per_delivery(report.delivered)) {
        (Some(cpu), Some(each)) => format!(
            "{:.0}% ({:.2} µs per delivered)",
            cpu.as_secs_f64() / report.measured.as_secs_f64() * 100.0,
            each.as_secs_f64() * 1e6
        ),
        _ => "n/a".into(),
    };
    format!("{} (pid {}): rss {rss}, cpu {cpu}", usage.name, usage.pid)
}

fn rss(report: &StepReport) -> String {
    report.server_rss_kib.map_or_else(
        || "n/a".into(),
        |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
    )
}

fn line(report: &StepReport) -> String {
    let rss = rss(report);
    let cpu = cpu(report);
    format!(
        "rate {:>7.2}/s/client: sent {:>8.0}/s delivered {:>10.0}/s ({:>5.1}% of expected) \
         latency p50 {:>7.1} ms p99 {:>7.1} ms max {:>7.1} ms, server rss {rss} cpu {cpu}, connected {}/{} {}",
        report.rate,
        report.sent_per_second(),
        report.delivered_per_second(),
        report.delivery_ratio() * 100.0,
        millis(report.p50),
        millis(report.p99),
        millis(report.max),
        report.connected,
        report.clients,
        if report.keeps_up() {
            "keeps up"
        } else {
            "BEHIND"
        },
    )
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_process_is_a_name_and_a_pid() {
        assert_eq!(
            parse_watched("redis=42"),
            Ok(Watched {
                name: "redis".into(),
                pid: 42
            })
        );
        assert!(parse_watched("redis").is_err());
        assert!(parse_watched("=42").is_err());
        assert!(parse_watched("redis=x").is_err());
    }
}
