//! The sink's command parser (RFC 5321 §4.1): any line parses to a command or
//! an error, never a panic; a parsed command, written out, parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp::parse_command;

fuzz_target!(|data: &[u8]| {
    let Ok(command) = parse_command(data) else {
        return;
    };
    let written = command.to_string();
    assert_eq!(parse_command(written.as_bytes()), Ok(command), "{written:?}");
});
