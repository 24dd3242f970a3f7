use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error("cannot serve {path}: {source}")]
    Root { path: PathBuf, source: io::Error },

    #[error(transparent)]
    Tls(#[from] tls::Error),
}
