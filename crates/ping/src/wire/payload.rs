//! What each echo request carries after its header: the time it was sent,
//! then the pattern iputils uses (byte `i` is `i mod 256`), so a reply can
//! be checked byte for byte.

use std::time::Duration;

/// Bytes of send time at the start of the data; shorter probes carry no
/// time, as in iputils, and their replies are not timed.
pub const TIMESTAMP_LEN: usize = 16;

/// Fills `data` for a probe sent at `sent` (wall-clock time since the Unix
/// epoch): seconds and nanoseconds, big-endian, then the pattern.
pub fn write(data: &mut [u8], sent: Duration) {
    for (index, byte) in data.iter_mut().enumerate() {
        *byte = index as u8;
    }
    if data.len() >= TIMESTAMP_LEN {
        data[..8].copy_from_slice(&sent.as_secs().to_be_bytes());
        data[8..16].copy_from_slice(&u64::from(sent.subsec_nanos()).to_be_bytes());
    }
}

/// The send time a probe's data carries, if it is long enough and valid.
pub fn timestamp(data: &[u8]) -> Option<Duration> {
    let secs = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
    let nanos = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
    Some(Duration::new(
        secs,
        u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?,
    ))
}

/// The first byte of the pattern that came back changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub index: usize,
    pub expected: u8,
    pub actual: u8,
}

/// Checks the pattern in the data of a reply to a probe of `sent_len` data
/// bytes; the timestamp, if any, is not part of the pattern.
pub fn check(data: &[u8], sent_len: usize) -> Option<Mismatch> {
    let start = if sent_len >= TIMESTAMP_LEN {
        TIMESTAMP_LEN
    } else {
        0
    };
    let end = data.len().min(sent_len);
    (start..end).find_map(|index| {
        let expected = index as u8;
        (data[index] != expected).then_some(Mismatch {
            index,
            expected,
            actual: data[index],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout() {
        let mut data = [0u8; 20];
        write(&mut data, Duration::new(0x0102_0304, 5));
        assert_eq!(&data[..8], &[0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(&data[8..16], &[0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&data[16..], &[16, 17, 18, 19]);
        assert_eq!(timestamp(&data), Some(Duration::new(0x0102_0304, 5)));
        assert_eq!(check(&data, 20), None);
    }

    #[test]
    fn short_probes_are_all_pattern() {
        let mut data = [9u8; 4];
        write(&mut data, Duration::from_secs(1));
        assert_eq!(data, [0, 1, 2, 3]);
        assert_eq!(timestamp(&data), None);
        data[2] = 7;
        assert_eq!(
            check(&data, 4),
            Some(Mismatch {
                index: 2,
                expected: 2,
                actual: 7
            })
        );
    }

    #[test]
    fn changed_byte_is_found() {
        let mut data = vec![0u8; 300];
        write(&mut data, Duration::from_secs(1));
        assert_eq!(check(&data, 300), None);
        data[257] = 0;
        assert_eq!(
            check(&data, 300),
            Some(Mismatch {
                index: 257,
                expected: 1,
                actual: 0
            })
        );
        // A truncated reply is checked as far as it goes.
        assert_eq!(check(&data[..200], 300), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80), sent_len in 0usize..100) {
            let _ = timestamp(&data);
            let _ = check(&data, sent_len);
        }

        #[test]
        fn written_data_checks(len in 0usize..200, secs in 0u64..u64::MAX / 2, nanos in 0u32..1_000_000_000) {
            let mut data = vec![0u8; len];
            let sent = Duration::new(secs, nanos);
            write(&mut data, sent);
            prop_assert_eq!(check(&data, len), None);
            if len >= TIMESTAMP_LEN {
                prop_assert_eq!(timestamp(&data), Some(sent));
            }
        }
    }
}
