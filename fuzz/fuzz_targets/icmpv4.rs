//! ICMPv4: any bytes parse or fail cleanly; an echo message emitted from what
//! was parsed parses back to the same value with a valid checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ping::wire::icmpv4::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = packet.verify_checksum();
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    if !matches!(repr, Repr::EchoRequest { .. } | Repr::EchoReply { .. }) {
        return;
    }
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
        .expect("an echo message always emits");
    let emitted = Packet::new_checked(&bytes[..]).expect("emitted bytes are long enough");
    assert!(emitted.verify_checksum());
    assert_eq!(Repr::parse(&emitted), Ok(repr));
});
