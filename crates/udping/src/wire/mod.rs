//! Wire formats, each a checked view over bytes and a plain value: the lab's
//! text probes and heartbeats, and STAMP test packets.

pub mod stamp;
pub mod text;

/// Why bytes from the network are not the packet we expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet of {len} bytes is shorter than {need}")]
    Truncated { len: usize, need: usize },
    #[error("not UTF-8 text")]
    NotText,
    #[error("no sequence number")]
    NoSequence,
}
