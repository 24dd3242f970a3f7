//! STAMP (RFC 8762) test packets, both directions: any bytes are read or
//! refused cleanly, and what was read, emitted again, reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udping::wire::stamp::{ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = SenderPacket::new_checked(data) {
        let repr = SenderRepr::parse(&packet);
        let mut bytes = data.to_vec();
        let mut out = SenderPacket::new_checked(&mut bytes[..]).expect("same length");
        repr.emit(&mut out);
        let back = SenderPacket::new_checked(&bytes[..]).expect("same length");
        assert_eq!(SenderRepr::parse(&back), repr);
    }
    if let Ok(packet) = ReflectorPacket::new_checked(data) {
        let repr = ReflectorRepr::parse(&packet);
        let mut bytes = data.to_vec();
        let mut out = ReflectorPacket::new_checked(&mut bytes[..]).expect("same length");
        repr.emit(&mut out);
        let back = ReflectorPacket::new_checked(&bytes[..]).expect("same length");
        assert_eq!(ReflectorRepr::parse(&back), repr);
    }
});
