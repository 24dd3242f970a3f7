//! Server and client together, in process, on loopback: with seeded
//! impairment the client's counts equal what the same seed's decisions say.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use udping::{
    Expected, Impairer, Impairment, Mode, Monitor, MonitorConfig, PingConfig, Pinger, Server,
    ServerConfig, Summary,
};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The smallest probe count from `at_least` on whose decisions end cleanly.
fn settled_count(impairment: Impairment, seed: u64, at_least: usize) -> (u64, Expected) {
    let decisions: Vec<_> = Impairer::new(impairment, seed)
        .take(at_least + 200)
        .collect();
    (at_least..decisions.len())
        .map(|n| (n as u64, Expected::from_decisions(&decisions[..n])))
        .find(|(_, expected)| expected.settles)
        .expect("some count settles")
}

async fn run(config: ServerConfig, ping: PingConfig) -> Summary {
    let server = Server::bind(loopback(), config).await.unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let pinger = Pinger::connect(addr, ping).await.unwrap();
    let summary = pinger.run(CancellationToken::new(), |_| {}).await.unwrap();
    token.cancel();
    running.await.unwrap();
    summary
}

#[tokio::test]
async fn text_counts_equal_the_seeded_decisions() {
    let impairment = Impairment {
        loss: 0.25,
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(2),
        duplicate: 0.2,
        reorder: 0.2,
    };
    for seed in [1, 2, 3] {
        let (count, expected) = settled_count(impairment, seed, 30);
        let summary = run(
            ServerConfig {
                impairment,
                seed,
                ..ServerConfig::default()
            },
            PingConfig {
                count: Some(count),
                interval: Duration::from_millis(15),
                timeout: Duration::from_millis(1500),
                ..PingConfig::default()
            },
        )
        .await;
        assert_eq!(summary.sent, count);
        assert_eq!(
            summary.received, expected.received,
            "seed {seed}: {summary:?}"
        );
        assert_eq!(summary.lost, expected.dropped, "seed {seed}");
        assert_eq!(summary.duplicates, expected.duplicates, "seed {seed}");
        assert_eq!(summary.out_of_order, expected.out_of_order, "seed {seed}");
        assert_eq!((summary.late, summary.unmatched), (0, 0));
        // Every reply waited at least the smallest delay the jitter allows.
        assert!(summary.rtt_ms.unwrap().min >= 1.0, "{summary:?}");
    }
}

#[tokio::test]
async fn a_delayed_reply_does_not_hold_up_the_next() {
    // Served one after another, 20 replies delayed 200 ms each would take
    // 4 s and most would time out; in parallel every one arrives.
    let summary = run(
        ServerConfig {
            impairment: Impairment {
                delay: Duration::from_millis(200),
                ..Impairment::default()
            },
            ..ServerConfig::default()
        },
        PingConfig {
            count: Some(20),
            interval: Duration::from_millis(5),
            timeout: Duration::from_millis(1500),
            ..PingConfig::default()
        },
    )
    .await;
    assert_eq!((summary.received, summary.out_of_order), (20, 0));
    assert!(summary.rtt_ms.unwrap().min >= 200.0, "{summary:?}");
}

#[tokio::test]
async fn stamp_stateful_loss_is_forward_loss() {
    let impairment = Impairment {
        loss: 0.3,
        ..Impairment::default()
    };
    let seed = 11;
    let decisions: Vec<_> = Impairer::new(impairment, seed).take(40).collect();
    // Only drops before the last delivered probe can be told apart.
    let last = decisions.iter().rposition(|d| !d.drop).unwrap();
    let forward = decisions[..last].iter().filter(|d| d.drop).count() as u64;
    let trailing = (decisions.len() - 1 - last) as u64;
    let summary = run(
        ServerConfig {
            mode: Mode::Stamp,
            stateful: true,
            impairment,
            seed,
            ..ServerConfig::default()
        },
        PingConfig {
            mode: Mode::Stamp,
            count: Some(40),
            interval: Duration::from_millis(5),
            timeout: Duration::from_millis(500),
            ..PingConfig::default()
        },
    )
    .await;
    let loss = summary.stamp_loss.unwrap();
    assert_eq!(summary.lost, forward + trailing);
    assert_eq!(loss.forward, Some(forward));
    assert_eq!(loss.backward, Some(0));
    assert_eq!(loss.undetermined, Some(trailing));
    assert!(loss.reflector_stateful);
    assert!(summary.residence_ms.unwrap() >= 0.0);
}

#[tokio::test]
async fn stateless_reflector_and_many_senders() {
    let server = Server::bind(
        loopback(),
        ServerConfig {
            mode: Mode::Stamp,
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let senders = (0..20).map(|_| async move {
        let pinger = Pinger::connect(
            addr,
            PingConfig {
                mode: Mode::Stamp,
                count: Some(20),
                interval: Duration::from_millis(2),
                size: 128,
                ..PingConfig::default()
            },
        )
        .await
        .unwrap();
        pinger.run(CancellationToken::new(), |_| {}).await.unwrap()
    });
    for summary in futures_join(senders).await {
        assert_eq!((summary.sent, summary.received, summary.lost), (20, 20, 0));
        let loss = summary.stamp_loss.unwrap();
        assert!(!loss.reflector_stateful);
        assert_eq!((loss.forward, loss.backward), (Some(0), Some(0)));
    }
    token.cancel();
    running.await.unwrap();
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn heartbeat_losses_are_the_dropped_sequence_numbers() {
    let impairment = Impairment {
        loss: 0.3,
        ..Impairment::default()
    };
    let seed = 5;
    let config = MonitorConfig {
        interval: Duration::from_millis(20),
        dead_after: 3,
    };
    let server = Server::bind(
        loopback(),
        ServerConfig {
            impairment,
            seed,
            heartbeat: Some(config),
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let monitor: Monitor = server.monitor().unwrap();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let sent = udping::send_heartbeats(
        addr,
        udping::HeartbeatConfig {
            interval: config.interval,
            count: Some(30),
            bind: None,
            first_sequence: 1,
        },
        CancellationToken::new(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(sent, 30);
    let decisions: Vec<_> = Impairer::new(impairment, seed).take(30).collect();
    let first = decisions.iter().position(|d| !d.drop).unwrap();
    let last = decisions.iter().rposition(|d| !d.drop).unwrap();
    let lost = decisions[first..last].iter().filter(|d| d.drop).count() as u64;
    // Wait (bounded) for the monitor to see the client stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let row = monitor.snapshot(Instant::now()).remove(0);
        let done = !row.alive && row.last_sequence == last as u32 + 1;
        if done || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(config.interval).await;
    };
    assert!(!row.alive, "client never reported stopped");
    assert_eq!(row.lost, lost);
    assert_eq!(row.received, (last - first + 1) as u64 - lost);
    assert_eq!(row.last_sequence, last as u32 + 1);
    assert!(row.delay_variation_ms >= 0.0);
    token.cancel();
    running.await.unwrap();
}
