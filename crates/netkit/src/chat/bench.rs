//! `netkit chat bench`: renders the load generator's steps.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, ensure};
use chat::Password;
use chat::bench::{BenchConfig, KEEPS_UP_DELIVERY, KEEPS_UP_P99, Progress, Protocol, StepReport};
use clap::Args;

use crate::duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server to load, as HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    server: String,
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
    /// The server's process id, for its memory (found from the port if not given)
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    ensure!(
        args.rate.iter().all(|rate| rate.is_finite() && *rate > 0.0),
        "--rate takes positive numbers of messages per second"
    );
    let server = chat::client::resolve(&args.server)
        .await?
        .into_iter()
        .next()
        .context("no address")?;
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
        server,
        protocol,
        clients: args.clients as usize,
        rates: args.rate.clone(),
        duration: args.duration,
        warmup: args.warmup,
        prefix: args.prefix.clone(),
        server_pid: args.server_pid,
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
        Progress::Step(report) => println!("{}", line(&report)),
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
