//! netkit capture's decoders, for every link type: any frame decodes (to as
//! much as it holds) and its application data is recognised or not, never a
//! panic; masking never lets a secret it found through.
#![no_main]

use capture::LinkType;
use capture::{app, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for link in [
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
    ] {
        let packet = decode::decode(link, data);
        let _ = app::decode(&packet, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = app::mask_text(text);
    }
});
