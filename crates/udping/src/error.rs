use std::io;
use std::net::SocketAddr;

/// Everything that can go wrong in the UDP pinger, its server and heartbeats.
/// Messages leave the I/O error to the `source` chain, which the binary
/// prints after them (`{:#}`), so it is not said twice.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error(transparent)]
    Dial(#[from] dial::DialError),

    #[error("cannot send to {addr}")]
    Send { addr: SocketAddr, source: io::Error },

    #[error("cannot receive from {addr}")]
    Receive { addr: SocketAddr, source: io::Error },
}
