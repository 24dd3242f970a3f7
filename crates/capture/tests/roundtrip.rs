//! What netkit writes, it reads back unchanged; no input makes a decoder,
//! the file reader or the filter parser panic.

use std::time::Duration;

use capture::file::{Reader, Writer};
use capture::{Frame, LinkType, decode, filter};
use proptest::prelude::*;

fn link() -> impl Strategy<Value = LinkType> {
    prop_oneof![
        Just(LinkType::Ethernet),
        Just(LinkType::Raw),
        Just(LinkType::LinuxSll),
        Just(LinkType::LinuxSll2),
        Just(LinkType::Null),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        0u64..4_000_000_000,
        0u32..1_000_000_000,
        proptest::collection::vec(any::<u8>(), 0..300),
        0u32..2000,
    )
        .prop_map(|(secs, nanos, data, extra)| Frame {
            timestamp: Duration::new(secs, nanos),
            original_len: data.len() as u32 + extra,
            data,
        })
}

proptest! {
    #[test]
    fn pcapng_round_trip(link in link(), frames in proptest::collection::vec(frame(), 0..20)) {
        let mut writer = Writer::new(Vec::new(), link, 65535, "lo").unwrap();
        for frame in &frames {
            writer.write(frame).unwrap();
        }
        let bytes = writer.into_inner();
        let read: Vec<(LinkType, Frame)> = Reader::open(&bytes[..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(read.len(), frames.len());
        for ((read_link, read_frame), frame) in read.iter().zip(&frames) {
            prop_assert_eq!(*read_link, link);
            prop_assert_eq!(read_frame, frame);
        }
    }

    #[test]
    fn a_cut_file_reads_as_far_as_it_goes(frames in proptest::collection::vec(frame(), 1..8), cut in any::<prop::sample::Index>()) {
        let mut writer = Writer::new(Vec::new(), LinkType::Ethernet, 65535, "lo").unwrap();
        for frame in &frames {
            writer.write(frame).unwrap();
        }
        let bytes = writer.into_inner();
        let cut = cut.index(bytes.len());
        if let Ok(reader) = Reader::open(&bytes[..cut]) {
            let read: Vec<_> = reader.collect();
            prop_assert!(read.len() <= frames.len());
        }
    }

    #[test]
    fn decoding_never_panics(link in link(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let packet = decode::decode(link, &data);
        prop_assert!(packet.payload.start <= packet.payload.end);
        prop_assert!(packet.payload.end <= data.len());
    }

    #[test]
    fn reading_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(reader) = Reader::open(&data[..]) {
            for item in reader.take(50) {
                let _ = item;
            }
        }
    }

    #[test]
    fn parsing_never_panics(text in "[a-z0-9 ()!&|:./-]{0,40}") {
        if let Ok(Some(expr)) = filter::parse(&text) {
            let program = filter::compile(&expr, LinkType::Ethernet, 65535);
            if let Ok(program) = program {
                prop_assert!(filter::vm::run(&program, &[0u8; 64]) <= 65535);
            }
        }
    }
}
