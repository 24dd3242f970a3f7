//! TLS for netkit's servers and clients, in one place so every system gets
//! the same safe defaults: certificates are verified against the system's
//! roots unless the user explicitly says otherwise, and servers can make a
//! throwaway certificate for local testing.
//!
//! All configuration uses rustls with the ring provider.

mod client;
mod server;

use std::io;
use std::path::PathBuf;

pub use client::{ClientOptions, client_config, server_name};
pub use rustls;
pub use server::{Identity, SelfSigned, server_config};
/// A connection either side may hold once TLS is up (smtp's STARTTLS).
pub use tokio_rustls::TlsStream;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("{path} holds no {what}")]
    Missing { path: PathBuf, what: &'static str },

    #[error("{path} is not valid PEM: {detail}")]
    Pem { path: PathBuf, detail: String },

    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),

    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),

    #[error("`{0}` is not a valid server name for TLS")]
    ServerName(String),

    #[error("no system root certificates could be loaded; use --cacert FILE")]
    NoRoots,
}

/// The provider every config is built from.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// A short description of an established session for transcripts and logs:
/// protocol version and cipher suite, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384`.
pub fn describe(connection: &rustls::CommonState) -> String {
    let version = connection
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("TLS");
    let version = version.replace("TLSv1_", "TLSv1.");
    match connection.negotiated_cipher_suite() {
        Some(suite) => format!("{version} {:?}", suite.suite()),
        None => version,
    }
}
