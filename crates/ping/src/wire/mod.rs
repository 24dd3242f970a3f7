//! Wire formats, in two layers per protocol as smoltcp does it: a checked
//! zero-copy `Packet` view with one accessor per field, and a parsed `Repr`
//! value. Unknown types and codes are kept (`Unknown(u8)`), never a panic.

pub mod checksum;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod payload;

/// A field of numbered values: one variant per known value, `Unknown` for
/// the rest, and conversions both ways that never fail.
macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(value: u8) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                match value {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use codes;

/// Why bytes could not be read as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet is shorter than its header says")]
    Truncated,
    #[error("packet header is malformed")]
    Malformed,
    #[error("only echo messages are written")]
    Unsupported,
}

/// The identifier and sequence number of an echo request or reply, which
/// is how a reply or an error is matched to the probe that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Echo {
    pub ident: u16,
    pub seq_no: u16,
}
