//! The Internet checksum (RFC 1071) of IPv4 headers, ICMP and IGMP.

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd
/// last byte padded with zero), folded to 16 bits.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // 64 bits: no overflow below 2^48 bytes, so one fold at the end.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to put in a header whose checksum field is zero.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Whether `data`, checksum field included, verifies.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    checksum(data) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: sum 0xddf2, checksum is its complement.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn appended_checksum_verifies() {
        let mut d = vec![0xffu8; 70_001];
        d.push(0); // even length, so the checksum lands on a word
        let c = checksum(&d);
        d.extend_from_slice(&c.to_be_bytes());
        assert!(verify(&d));
    }
}
