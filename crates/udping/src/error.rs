use std::io;
use std::net::SocketAddr;

/// Everything that can go wrong in the UDP pinger, its server and heartbeats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },

    #[error("{host} resolved to no addresses")]
    NoAddress { host: String },

    #[error("cannot send to {addr}: {source}")]
    Send { addr: SocketAddr, source: io::Error },

    #[error("cannot receive from {addr}: {source}")]
    Receive { addr: SocketAddr, source: io::Error },
}
