//! Whatever arrives, the server keeps answering.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tokio_util::sync::CancellationToken;
use udping::{Impairment, Mode, MonitorConfig, PingConfig, Pinger, Server, ServerConfig};

#[tokio::test]
async fn garbage_never_stops_the_server() {
    for (mode, stateful) in [(Mode::Text, false), (Mode::Stamp, true)] {
        let config = ServerConfig {
            mode,
            stateful,
            impairment: Impairment {
                duplicate: 0.1,
                reorder: 0.1,
                ..Impairment::default()
            },
            heartbeat: Some(MonitorConfig {
                interval: Duration::from_millis(50),
                dead_after: 3,
            }),
            ..ServerConfig::default()
        };
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(loopback, config).await.unwrap();
        let addr = server.local_addr();
        let token = CancellationToken::new();
        let running = tokio::spawn(server.run(token.clone()));

        let socket = UdpSocket::bind(loopback).unwrap();
        let mut runner = TestRunner::deterministic();
        let datagram = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..1500),
            "(Ping|PING|Heartbeat|heartbeat) -?[0-9]{0,12} [0-9.]{0,30}"
                .prop_map(String::into_bytes),
        ];
        for _ in 0..2000 {
            let bytes = datagram.new_tree(&mut runner).unwrap().current();
            socket.send_to(&bytes, addr).unwrap();
        }
        let pinger = Pinger::connect(
            addr,
            PingConfig {
                mode,
                count: Some(5),
                interval: Duration::from_millis(5),
                timeout: Duration::from_secs(3),
                ..PingConfig::default()
            },
        )
        .await
        .unwrap();
        let summary = pinger.run(CancellationToken::new(), |_| {}).await.unwrap();
        assert_eq!(summary.received, 5, "{mode}: {summary:?}");
        token.cancel();
        running.await.unwrap();
    }
}
