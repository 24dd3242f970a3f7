//! The library's servers and clients together, in process, on port 0.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use upper::{Error, TcpClient, TcpConfig, TcpServer, UdpClient, UdpServer};

const WAIT: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn tcp_round_trips_and_streams() {
    let server = TcpServer::bind(loopback(), TcpConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));

    let mut client = TcpClient::connect(&[addr], WAIT).await.unwrap();
    assert_eq!(client.round_trip(b"abc XYZ 9").await.unwrap(), b"ABC XYZ 9");
    assert!(!client.is_closed());

    let input: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let client = TcpClient::connect(&[addr], WAIT).await.unwrap();
    let mut output = Vec::new();
    let received = client.stream(&input[..], &mut output).await.unwrap();
    assert_eq!(received, input.len() as u64);
    assert_eq!(output, input.to_ascii_uppercase());

    token.cancel();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_connections_finish() {
    let server = TcpServer::bind(loopback(), TcpConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let mut client = TcpClient::connect(&[addr], WAIT).await.unwrap();
    assert_eq!(client.round_trip(b"x").await.unwrap(), b"X");
    token.cancel();
    // The open connection is closed by the server rather than left hanging.
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
    assert_eq!(client.round_trip(b"y").await.ok(), Some(Vec::new()));
    assert!(client.is_closed());
}

#[tokio::test]
async fn udp_round_trip_and_timeout() {
    let server = UdpServer::bind(loopback()).await.unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let mut client = UdpClient::connect(&[addr], WAIT).await.unwrap();
    assert_eq!(client.round_trip(b"datagram").await.unwrap(), b"DATAGRAM");
    token.cancel();
    running.await.unwrap();

    // Nothing is bound there any more: the kernel's port-unreachable ends
    // the wait at once, well before this long timeout.
    let mut client = UdpClient::connect(&[addr], Duration::from_secs(3600))
        .await
        .unwrap();
    match client.round_trip(b"anyone?").await {
        Err(Error::PortUnreachable { addr: a }) => assert_eq!(a, addr),
        other => panic!("expected port unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_names_the_address() {
    let addr = testkit::closed_tcp_port();
    let err = TcpClient::connect(&[addr], WAIT).await.unwrap_err();
    assert!(matches!(err, Error::Refused { addr: a } if a == addr));
    assert!(err.to_string().contains("is the server running?"));
}
