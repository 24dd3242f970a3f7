use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can go wrong in the uppercase service and its clients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error(transparent)]
    Dial(#[from] dial::DialError),

    #[error("connection refused by {addr}: is the server running?")]
    Refused { addr: SocketAddr },

    #[error("cannot connect to {addr}")]
    Connect { addr: SocketAddr, source: io::Error },

    #[error("timed out after {timeout:?} connecting to {addr}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },

    #[error("request timed out: no reply from {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },

    /// The kernel passed on an ICMP port-unreachable for our datagram.
    #[error("{addr}: port unreachable (ICMP): is the server running?")]
    PortUnreachable { addr: SocketAddr },

    #[error("connection to {addr} failed")]
    Io { addr: SocketAddr, source: io::Error },
}
