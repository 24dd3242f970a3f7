//! Cluster bus messages (JSON on a Redis channel, crates/chat/src/bus):
//! anything published there decodes to an envelope or an error, never a
//! panic; a decoded envelope, encoded again, decodes to the same envelope.
#![no_main]

use chat::bus::wire::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        let bytes = envelope.encode().expect("a decoded envelope encodes");
        let again = Envelope::decode(&bytes).expect("an encoded envelope decodes");
        assert_eq!(again, envelope);
    }
});
