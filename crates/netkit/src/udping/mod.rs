//! `netkit udping`: the UDP pinger's server, client and heartbeat.

mod args;
mod render;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use udping::{
    FloodConfig, HeartbeatConfig, Impairment, Mode, MonitorConfig, PingConfig, Pinger, Server,
    ServerConfig,
};

use crate::serve::Shutdown;
pub use args::UdpingCommand;
use args::{HeartbeatArgs, PingArgs, ServeArgs};

pub async fn run(command: UdpingCommand) -> anyhow::Result<ExitCode> {
    if let Some(problem) = command.conflict() {
        eprintln!("netkit: {problem}");
        return Ok(ExitCode::from(2));
    }
    match command {
        UdpingCommand::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        UdpingCommand::Ping(args) => ping(args).await,
        UdpingCommand::Heartbeat(args) => heartbeat(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::install(&args.grace)?;
    let (delay, jitter) = args.delay.unwrap_or_default().into_parts();
    let config = ServerConfig {
        mode: args.mode.into(),
        stateful: args.stateful,
        impairment: Impairment {
            loss: args.loss,
            delay,
            jitter,
            duplicate: args.duplicate,
            reorder: args.reorder,
        },
        seed: args.seed.unwrap_or_else(random_seed),
        heartbeat: args.heartbeat.then_some(MonitorConfig {
            interval: args.interval,
            dead_after: args.dead_after,
        }),
    };
    let mode = config.mode;
    let server = Server::bind(args.bind, config).await?;
    let mut what = format!("udp, {mode} mode");
    if args.stateful {
        what.push_str(", stateful");
    }
    if args.heartbeat {
        what.push_str(", heartbeat monitor");
    }
    println!("listening on {} ({what})", server.local_addr());
    std::io::stdout().flush()?;
    let status = match (args.status, server.monitor()) {
        (true, Some(monitor)) => Some(tokio::spawn(render::status_table(
            monitor,
            // Redrawn at the server's cadence, but at least every second so a
            // client beating faster (judged by its own interval) shows up.
            args.interval
                .clamp(Duration::from_millis(500), Duration::from_secs(1)),
        ))),
        _ => None,
    };
    let token = shutdown.token();
    let result = shutdown
        .run(async move {
            server.run(token).await;
            Ok(())
        })
        .await;
    if let Some(status) = status {
        status.abort();
    }
    result
}

/// A seed that differs from run to run; the server logs it so a run can be
/// repeated with `--seed`.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Cancelled on the first Ctrl-C, so a client stops and prints its summary
/// as ping does.
fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    token
}

async fn ping(args: PingArgs) -> anyhow::Result<ExitCode> {
    let target = udping::resolve(&args.target).await?;
    let mode: Mode = args.mode.into();
    let token = interrupt_token();
    if args.flood {
        let config = FloodConfig {
            mode,
            window: args.window,
            duration: args.duration,
            size: args.size.unwrap_or(64),
            timeout: args.timeout,
        };
        let progress = flood_progress(target, args.duration);
        let summary = udping::flood(target, config, token).await;
        if let Some(progress) = progress {
            progress.finish_and_clear();
        }
        let summary = summary?;
        render::flood_summary(&summary, args.json)?;
        return Ok(if summary.received > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let config = PingConfig {
        mode,
        count: (args.count > 0).then_some(args.count),
        interval: args.interval,
        timeout: args.timeout,
        size: args.size.unwrap_or(0),
        bind: args.bind,
    };
    let pinger = Pinger::connect(target, config.clone()).await?;
    let mut printer = render::PingPrinter::new(args.json);
    if !args.json {
        printer.header(target, &config);
    }
    let summary = pinger.run(token, |event| printer.event(event)).await?;
    printer.finish(&summary)?;
    Ok(if summary.received > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A bar filling over the flood's duration, on a terminal's stderr only:
/// the flood itself reports once, at its end.
fn flood_progress(target: SocketAddr, duration: Duration) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64)
        .with_message(format!("flooding {target}"))
        .with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
    let ticking = bar.clone();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        while !ticking.is_finished() {
            ticks.tick().await;
            ticking.set_position(started.elapsed().as_millis() as u64);
        }
    });
    Some(bar)
}

async fn heartbeat(args: HeartbeatArgs) -> anyhow::Result<ExitCode> {
    let target = udping::resolve(&args.target).await?;
    let token = interrupt_token();
    let config = HeartbeatConfig {
        interval: args.interval,
        count: (args.count > 0).then_some(args.count),
        bind: args.bind,
        first_sequence: args.first_sequence,
    };
    let from = args
        .bind
        .map_or_else(String::new, |addr| format!(" from {addr}"));
    if args.json {
        crate::json::print_line(&serde_json::json!({
            "type": "start",
            "target": target.to_string(),
            "bind": args.bind.map(|addr| addr.to_string()),
            "interval_ms": crate::json::ms(args.interval),
        }))?;
    } else {
        println!(
            "sending heartbeats to {target}{from} every {}",
            render::duration(args.interval)
        );
    }
    let mut warned = false;
    let mut stdout = std::io::stdout();
    let sent = udping::send_heartbeats(target, config, token, |sequence, reachable| {
        if !reachable && !std::mem::replace(&mut warned, true) {
            eprintln!("netkit: {target} port unreachable: is the server running? (still sending)");
        }
        if args.json {
            let _ = crate::json::print_line(&serde_json::json!({
                "type": "heartbeat",
                "seq": sequence,
                "time": crate::json::rfc3339(std::time::SystemTime::now()),
                "reachable": reachable,
            }));
        } else {
            let _ = writeln!(stdout, "heartbeat seq={sequence}");
            let _ = stdout.flush();
        }
    })
    .await
    .with_context(|| format!("heartbeats to {target}"))?;
    if args.json {
        crate::json::print_line(
            &serde_json::json!({"type": "summary", "target": target.to_string(), "sent": sent}),
        )?;
    } else {
        println!("{sent} heartbeats sent");
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `HOST:PORT` for clap without resolving it.
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:12000"))
}

/// Checks `HOST:PORT` for clap (`127.0.0.1:12000`, `localhost:12000`,
/// `[::1]:12000`); names are resolved later. An IPv6 address needs its
/// brackets, or its last group would be taken for the port.
pub fn host_port(text: &str) -> Result<String, String> {
    let valid = text.parse::<SocketAddr>().is_ok()
        || text.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not HOST:PORT, as in 127.0.0.1:12000 or [::1]:12000"
        ))
    }
}
