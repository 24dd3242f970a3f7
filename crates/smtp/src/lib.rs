//! SMTP, written out: a client session that shows every line of the
//! dialogue (RFC 5321, with STARTTLS, AUTH, PIPELINING and SIZE), message
//! composition that streams attachments of any size, MX lookup, and a small
//! receiving server for local testing.
//!
//! Nothing here prints: the session reports what happens as [`Event`]s to
//! an [`Observer`], and fails with an [`Error`] that names its [`Stage`].

mod address;
mod auth;
mod capabilities;
mod client;
mod command;
mod connection;
mod data;
mod error;
mod line;
mod message;
mod mx;
mod reply;
mod route;
pub mod sink;
mod stream;
mod transcript;

pub use address::{AddressError, Mailbox};
pub use auth::{Credentials, Password};
pub use capabilities::{Capabilities, Mechanism};
pub use client::{AuthConfig, ClientConfig, Delivery, Envelope, Security, Server, send};
pub use command::{Command, CommandError, Parameter, Verb, parse_command};
pub use data::{DataLine, DotStuffer, unstuff};
pub use error::{Error, ErrorKind, Stage};
pub use message::{
    Chunks, ComposeError, Draft, ExtraHeader, HeaderEnvelope, HeaderError, Message,
    header_envelope, without_bcc,
};
pub use mx::{Dns, Exchanger};
pub use reply::{Reply, ReplyCode, ReplyError, ReplyLine, ReplyParser, parse_replies};
pub use route::{by_domain, send_to_domain, send_to_exchangers};
pub use transcript::{Event, MASK, Observer};

/// This machine's name for EHLO, or an address literal when the host name
/// is not a usable domain (RFC 5321 §4.1.4).
pub fn local_helo_name() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    let usable = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if usable {
        name
    } else {
        "[127.0.0.1]".to_owned()
    }
}
