//! pcap and pcapng files, as tcpdump and tshark write them: any bytes are
//! read as far as they go, frame by frame, or refused, never a panic.
#![no_main]

use capture::file::Reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = Reader::open(data) else {
        return;
    };
    for item in reader.take(1024) {
        if item.is_err() {
            break;
        }
    }
});
