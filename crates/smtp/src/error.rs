use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::reply::{Reply, ReplyError};

/// Where in the dialogue a session failed, so scripts can tell (the binary
/// turns each stage into its own exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Finding the server (DNS, MX) and opening the TCP connection.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// EHLO, or HELO after EHLO was refused.
    Ehlo,
    /// STARTTLS or the implicit TLS handshake.
    Tls,
    Auth,
    Mail,
    Rcpt,
    /// The DATA command and its 354.
    Data,
    /// Sending the message and the server's verdict on it.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::Tls => "TLS",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL",
            Stage::Rcpt => "RCPT",
            Stage::Data => "DATA",
            Stage::Message => "message",
        })
    }
}

/// A failed session: the stage it reached and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    pub stage: Stage,
    #[source]
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(stage: Stage, kind: ErrorKind) -> Self {
        Self { stage, kind }
    }

    /// Whether the connection can still carry a polite QUIT.
    pub(crate) fn connection_usable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Rejected { .. }
                | ErrorKind::NoStartTls
                | ErrorKind::PlaintextAuth
                | ErrorKind::NoAuth
                | ErrorKind::MechanismNotOffered { .. }
                | ErrorKind::NoSupportedMechanism { .. }
                | ErrorKind::TooBig { .. }
                | ErrorKind::NoRecipients
                | ErrorKind::NeedsSmtpUtf8
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },

    #[error("{domain} has no MX record and no address")]
    NoMailServer { domain: String },

    #[error("connection refused by {addr}: is an SMTP server running there?")]
    Refused { addr: SocketAddr },

    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },

    #[error("timed out after {0:?} waiting for the server")]
    Timeout(Duration),

    #[error("the server closed the connection")]
    Closed,

    #[error("connection failed: {0}")]
    Io(#[from] io::Error),

    #[error("protocol error: {0}")]
    Protocol(#[from] ReplyError),

    #[error("protocol error: a line from the server is longer than {0} bytes")]
    LineTooLong(usize),

    #[error("the server answered {command} with {reply}")]
    Rejected { command: String, reply: Reply },

    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),

    #[error(
        "TLS handshake failed: {0} (trust the server's CA with --cacert FILE, \
         or skip the check with --insecure)"
    )]
    Certificate(io::Error),

    #[error(transparent)]
    TlsConfig(#[from] tls::Error),

    #[error("the server does not offer STARTTLS, and --tls requires it")]
    NoStartTls,

    #[error(
        "the server sent more after its reply to STARTTLS; refusing to go on, \
         as that is how plaintext is injected into a TLS session"
    )]
    StartTlsInjection,

    #[error(
        "refusing to send the password over an unencrypted connection \
         (use TLS, or --allow-plaintext-auth on a network you trust)"
    )]
    PlaintextAuth,

    #[error("the server does not offer authentication (no AUTH in its EHLO reply)")]
    NoAuth,

    #[error("the server does not offer AUTH {wanted} (it offers: {offered})")]
    MechanismNotOffered { wanted: String, offered: String },

    #[error(
        "the server offers no mechanism netkit supports (it offers: {offered}; netkit has PLAIN and LOGIN)"
    )]
    NoSupportedMechanism { offered: String },

    #[error("the message is {size} bytes, more than the server's limit of {limit} bytes")]
    TooBig { size: u64, limit: u64 },

    #[error("the server accepted none of the recipients")]
    NoRecipients,

    #[error("a non-ASCII address needs SMTPUTF8, which the server does not offer")]
    NeedsSmtpUtf8,

    #[error("cannot read {path}: {source}")]
    ReadFile { path: PathBuf, source: io::Error },
}
