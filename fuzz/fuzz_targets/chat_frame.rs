//! Chat frames (newline-delimited JSON, crates/chat/PROTOCOL.md): any line
//! decodes to a frame or a frame error, never a panic, on both sides of the
//! protocol; a decoded frame, encoded again, decodes to the same frame.
#![no_main]

use chat::frame::{ClientFrame, ServerFrame, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode::<ClientFrame>(data) {
        let line = encode(&frame).expect("a decoded frame encodes");
        let again: ClientFrame = decode(line.trim_ascii_end()).expect("an encoded frame decodes");
        assert_eq!(encode(&again).expect("encodes"), line);
    }
    if let Ok(frame) = decode::<ServerFrame>(data) {
        let line = encode(&frame).expect("a decoded frame encodes");
        let again: ServerFrame = decode(line.trim_ascii_end()).expect("an encoded frame decodes");
        assert_eq!(encode(&again).expect("encodes"), line);
    }
});
