//! SMTP replies (RFC 5321 §4.2): any text parses to replies or an error, never
//! a panic; a parsed reply, written back to the wire, parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp::parse_replies;

fuzz_target!(|data: &[u8]| {
    let Ok(replies) = parse_replies(data) else {
        return;
    };
    for reply in replies {
        let wire: String = reply
            .wire_lines()
            .iter()
            .map(|line| format!("{line}\r\n"))
            .collect();
        let back = parse_replies(wire.as_bytes()).expect("a written reply parses");
        assert_eq!(back, vec![reply]);
    }
});
