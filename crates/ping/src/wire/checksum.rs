//! The Internet checksum (RFC 1071): the ones' complement of the ones'
//! complement sum of 16-bit big-endian words.

use std::net::Ipv6Addr;

/// The folded ones' complement sum of `data` (not yet complemented).
pub fn data(data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|pair| u64::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    fold(sum)
}

/// Adds folded sums together, as the checksum of their concatenation when
/// every part but the last has an even length.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&sum| u64::from(sum)).sum())
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1) that ICMPv6
/// checksums cover.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut header = [0u8; 40];
    header[..16].copy_from_slice(&src.octets());
    header[16..32].copy_from_slice(&dst.octets());
    header[32..36].copy_from_slice(&length.to_be_bytes());
    header[39] = next_header;
    data(&header)
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example in RFC 1071 section 3.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), data(&[0x12, 0x34, 0x56, 0x00]));
    }

    #[test]
    fn combine_matches_concatenation() {
        let (a, b) = ([1u8, 2, 3, 4], [0xffu8, 0xfe, 7]);
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        assert_eq!(combine(&[data(&a), data(&b)]), data(&whole));
    }
}
