//! The proxy's cache metadata files: any bytes decode to an entry or an
//! error, never a panic; a decoded entry encodes to bytes that decode to the
//! same entry; the body check refuses or accepts any body without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy::cache::{Meta, check_body};

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = Meta::decode(data) else {
        return;
    };
    let encoded = meta.encode();
    let again = Meta::decode(&encoded).expect("an encoded entry decodes");
    assert_eq!(again.encode(), encoded);
    let _ = check_body(&meta, data);
});
