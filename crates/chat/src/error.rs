use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::frame::{ErrorCode, FrameError};

/// Everything that can go wrong in the chat server and client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error(transparent)]
    Dial(#[from] dial::DialError),

    #[error("connection refused by {addr}: is the chat server running?")]
    Refused { addr: SocketAddr },

    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },

    #[error("timed out after {timeout:?} {doing}")]
    Timeout {
        doing: &'static str,
        timeout: Duration,
    },

    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake { addr: SocketAddr, source: io::Error },

    /// A client without TLS met a server that answered with a TLS record.
    #[error("the server speaks TLS")]
    SpeaksTls { addr: SocketAddr },

    #[error("cannot bind a UDP socket for direct messages: {0}")]
    Udp(io::Error),

    #[error(transparent)]
    Tls(#[from] tls::Error),

    #[error("the server speaks protocol version {server}, this client {client}")]
    Version { server: u32, client: u32 },

    #[error("unexpected frame from the server: {0}")]
    Unexpected(String),

    #[error("{text} ({code})")]
    Rejected { code: ErrorCode, text: String },

    #[error("the server closed the connection: {text} ({code})")]
    Closed { code: ErrorCode, text: String },

    #[error("the server closed the connection")]
    Eof,

    #[error("{0} is not online")]
    NotOnline(String),

    #[error(transparent)]
    Frame(#[from] FrameError),

    #[error(transparent)]
    Store(crate::store::StoreError),
}
