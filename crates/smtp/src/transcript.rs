//! What a session reports while it runs, as values: the binary renders them
//! (swaks' `=== `, ` -> `, `<-  ` convention), a test can collect them.
//! Secrets never reach an event: AUTH lines arrive already masked.

use crate::error::Stage;

/// The mask shown in place of credentials.
pub const MASK: &str = "********";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something netkit itself says: connecting, TLS established, ...
    Note(String),
    /// A line the client sent; `tls` when it went inside TLS.
    Sent { line: String, tls: bool },
    /// A line the server sent.
    Received { line: String, tls: bool },
    /// A recipient the server refused, while others may still be accepted.
    Warning(String),
    /// DATA upload progress in bytes of the message (before dot-stuffing).
    Progress { sent: u64, total: u64 },
    /// The session enters a stage: what follows belongs to it.
    Stage(Stage),
    /// The session ends with QUIT, its business done or failed.
    Quit,
    /// TLS is up: the protocol version (`TLSv1.3`) and the cipher suite.
    TlsStarted { version: String, cipher: String },
}

/// Where a session sends its events.
pub trait Observer: Send {
    fn event(&mut self, event: Event);
}

impl<F: FnMut(Event) + Send> Observer for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}
