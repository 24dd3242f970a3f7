//! The uppercase service, the first socket lab done properly.
//!
//! The mapping is per byte (`a`-`z` become `A`-`Z`, every other byte is left
//! alone), so neither side needs framing: a TCP server converts whatever
//! arrives and writes it straight back, and a UDP server answers each datagram
//! with its converted copy.

mod client;
mod error;
mod tcp;
mod udp;

pub use client::{TcpClient, UdpClient};
pub use error::Error;
pub use tcp::{TcpConfig, TcpServer};
pub use udp::UdpServer;

/// Upper-cases ASCII letters in place and leaves every other byte unchanged,
/// so UTF-8 multibyte sequences (all bytes >= 0x80) pass through intact.
pub fn uppercase(bytes: &mut [u8]) {
    bytes.make_ascii_uppercase();
}

#[cfg(test)]
mod tests {
    use super::uppercase;
    use proptest::prelude::*;

    #[test]
    fn letters_only() {
        let mut text = b"hello, World 123 {}~ \xc3\xa9t\xc3\xa9".to_vec();
        uppercase(&mut text);
        assert_eq!(text, b"HELLO, WORLD 123 {}~ \xc3\xa9T\xc3\xa9");
    }

    proptest! {
        #[test]
        fn only_lowercase_ascii_changes(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut output = input.clone();
            uppercase(&mut output);
            for (before, after) in input.iter().zip(&output) {
                if before.is_ascii_lowercase() {
                    prop_assert_eq!(*after, before - 32);
                } else {
                    prop_assert_eq!(after, before);
                }
            }
        }

        #[test]
        fn utf8_stays_valid(text in "\\PC*") {
            let mut bytes = text.clone().into_bytes();
            uppercase(&mut bytes);
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), text.to_ascii_uppercase());
        }
    }
}
