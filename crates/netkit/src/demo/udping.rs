use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio_util::sync::CancellationToken;
use udping::{
    Expected, HeartbeatConfig, Impairer, Impairment, Mode, MonitorConfig, PingConfig, Pinger,
    Server, ServerConfig,
};

const SEED: u64 = 42;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("valid literal")
}

/// A lossy, duplicating, reordering text server and a STAMP reflector: the
/// client's counts must equal what the seed's decisions say.
pub async fn check() -> anyhow::Result<String> {
    let impairment = Impairment {
        loss: 0.2,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        duplicate: 0.1,
        reorder: 0.1,
    };
    let decisions: Vec<_> = Impairer::new(impairment, SEED).take(100).collect();
    let (count, expected) = (20..decisions.len())
        .map(|n| (n, Expected::from_decisions(&decisions[..n])))
        .find(|(_, e)| e.settles)
        .context("no probe count settles")?;

    let config = ServerConfig {
        impairment,
        seed: SEED,
        ..ServerConfig::default()
    };
    let server = Server::bind(loopback(), config).await?;
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let stop = token.drop_guard();
    let ping = PingConfig {
        count: Some(count as u64),
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
        ..PingConfig::default()
    };
    let text = Pinger::connect(addr, ping.clone())
        .await?
        .run(CancellationToken::new(), |_| {})
        .await?;
    ensure!(
        (text.received, text.duplicates, text.out_of_order)
            == (
                expected.received,
                expected.duplicates,
                expected.out_of_order
            ),
        "client counted {} received, {} duplicates, {} out of order; seed {SEED} decided {expected:?}",
        text.received,
        text.duplicates,
        text.out_of_order
    );
    drop(stop);
    running.await?;

    let reflector = Server::bind(
        loopback(),
        ServerConfig {
            mode: Mode::Stamp,
            stateful: true,
            ..ServerConfig::default()
        },
    )
    .await?;
    let stamp_addr = reflector.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(reflector.run(token.clone()));
    let stop = token.drop_guard();
    let stamp = Pinger::connect(
        stamp_addr,
        PingConfig {
            mode: Mode::Stamp,
            count: Some(5),
            interval: Duration::from_millis(5),
            ..ping
        },
    )
    .await?
    .run(CancellationToken::new(), |_| {})
    .await?;
    ensure!(
        stamp.received == 5,
        "STAMP: {} of 5 answered",
        stamp.received
    );
    drop(stop);
    running.await?;
    Ok(format!(
        "{count} lab pings to {addr}: {} lost, {} duplicated, {} reordered, as seed {SEED} decided; \
         STAMP rtt {:.3} ms net of reflector",
        text.lost,
        text.duplicates,
        text.out_of_order,
        stamp.rtt_ms.map_or(0.0, |rtt| rtt.avg)
    ))
}

/// A heartbeat client that stops and comes back.
pub async fn check_heartbeat() -> anyhow::Result<String> {
    let config = MonitorConfig {
        interval: Duration::from_millis(50),
        dead_after: 3,
    };
    let server = Server::bind(
        loopback(),
        ServerConfig {
            heartbeat: Some(config),
            ..ServerConfig::default()
        },
    )
    .await?;
    let addr = server.local_addr();
    let monitor = server.monitor().context("monitor enabled")?;
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let stop = token.drop_guard();

    let client: SocketAddr = {
        let probe = std::net::UdpSocket::bind(loopback())?;
        probe.local_addr()?
    };
    let beats = |first_sequence| HeartbeatConfig {
        interval: config.interval,
        count: Some(5),
        bind: Some(client),
        first_sequence,
    };
    udping::send_heartbeats(addr, beats(1), CancellationToken::new(), |_, _| {}).await?;
    let started = Instant::now();
    let stopped = loop {
        let row = monitor.snapshot(Instant::now()).remove(0);
        if !row.alive || started.elapsed() > Duration::from_secs(5) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    ensure!(!stopped.alive, "the client was never reported stopped");
    let noticed = started.elapsed();
    udping::send_heartbeats(addr, beats(6), CancellationToken::new(), |_, _| {}).await?;
    let started = Instant::now();
    let back = loop {
        let row = monitor.snapshot(Instant::now()).remove(0);
        if row.received == 10 || started.elapsed() > Duration::from_secs(5) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    ensure!(back.alive, "the client was not reported back");
    ensure!(
        (back.received, back.lost) == (10, 0),
        "received {}, lost {}",
        back.received,
        back.lost
    );
    drop(stop);
    running.await?;
    Ok(format!(
        "client {client} reported stopped {:.0} ms after its last beat and back on its next; 10 beats, 0 lost",
        noticed.as_secs_f64() * 1e3
    ))
}
