//! ICMPv6: any bytes parse or fail cleanly; an echo message emitted from what
//! was parsed parses back to the same value, and its checksum, once filled
//! for a pair of addresses, verifies for that pair.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use ping::wire::icmpv6::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = packet.verify_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    if !matches!(repr, Repr::EchoRequest { .. } | Repr::EchoReply { .. }) {
        return;
    }
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
        .expect("an echo message always emits");
    let mut emitted = Packet::new_checked(&mut bytes[..]).expect("emitted bytes are long enough");
    emitted.fill_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::UNSPECIFIED);
    assert!(emitted.verify_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::UNSPECIFIED));
    let emitted = Packet::new_checked(&bytes[..]).expect("emitted bytes are long enough");
    assert_eq!(Repr::parse(&emitted), Ok(repr));
});
