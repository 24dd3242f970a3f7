use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server could not start. The cause is the error's `source`, which
/// a chain-printing caller (`{:#}` in anyhow) shows after the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error("cannot serve {path}")]
    Root { path: PathBuf, source: io::Error },

    #[error(transparent)]
    Tls(#[from] tls::Error),
}
