use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;
use tokio_util::sync::CancellationToken;
use upper::{TcpClient, TcpConfig, TcpServer, UdpClient, UdpServer};

const SENTENCE: &str = "hello from netkit: 123, ünïcode stays";
const REPLY_WAIT: Duration = Duration::from_secs(2);

pub async fn check() -> anyhow::Result<String> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let tcp = TcpServer::bind(loopback, TcpConfig::default()).await?;
    let udp = UdpServer::bind(loopback).await?;
    let (tcp_addr, udp_addr) = (tcp.local_addr(), udp.local_addr());
    let token = CancellationToken::new();
    let servers = tokio::spawn({
        let token = token.clone();
        async move { tokio::join!(tcp.run(token.clone()), udp.run(token)) }
    });
    let stop = token.drop_guard();

    let expected = SENTENCE.to_ascii_uppercase();
    let mut client = TcpClient::connect(&[tcp_addr], REPLY_WAIT).await?;
    let reply = client.round_trip(SENTENCE.as_bytes()).await?;
    ensure!(
        reply == expected.as_bytes(),
        "tcp reply was {:?}",
        String::from_utf8_lossy(&reply)
    );
    let mut client = UdpClient::connect(&[udp_addr], REPLY_WAIT).await?;
    let reply = client.round_trip(SENTENCE.as_bytes()).await?;
    ensure!(
        reply == expected.as_bytes(),
        "udp reply was {:?}",
        String::from_utf8_lossy(&reply)
    );

    drop(stop);
    servers.await?;
    Ok(format!(
        "tcp {tcp_addr} and udp {udp_addr} upper-cased {SENTENCE:?}"
    ))
}
