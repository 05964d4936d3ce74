//! The Internet checksum (RFC 1071) of IPv4 headers, ICMP and IGMP, the
//! IPv6 pseudo-header of ICMPv6 (RFC 8200 8.1), and its incremental update
//! (RFC 1624).

use std::net::Ipv6Addr;

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

/// Folds a 64-bit one's-complement accumulator to 16 bits.
#[inline]
const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of two folded sums.
#[inline]
pub const fn add(a: u16, b: u16) -> u16 {
    fold(a as u64 + b as u64)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1): source, destination,
/// upper-layer length and next header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u16 {
    let mut acc: u64 = 0;
    for a in [src, dst] {
        for w in a.segments() {
            acc += u64::from(w);
        }
    }
    acc += u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(next_header);
    fold(acc)
}

/// The checksum of an upper-layer message over IPv6 (ICMPv6, whose own
/// checksum field in `data` is zero).
#[inline]
pub fn checksum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    !add(
        pseudo_header_v6(src, dst, next_header, data.len() as u32),
        sum(data),
    )
}

/// Whether an upper-layer message over IPv6, checksum included, verifies.
#[inline]
pub fn verify_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> bool {
    checksum_v6(src, dst, next_header, data) == 0
}

/// RFC 1624 eqn. 3: the checksum after the bytes `old` (at an even offset
/// of the covered data) were replaced by `new` of the same length:
/// HC' = ~(~HC + ~m + m').
#[inline]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    !add(add(!check, !sum(old)), sum(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_update_matches_a_recompute() {
        let mut d: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let c = checksum(&d);
        let new = [0xffu8, 0, 0x12, 0x34, 0xfe, 0xdc];
        let old = d[10..16].to_vec();
        d[10..16].copy_from_slice(&new);
        assert_eq!(update(c, &old, &new), checksum(&d));
    }

    #[test]
    fn pseudo_header_sums_its_words() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut ph = Vec::new();
        ph.extend_from_slice(&a.octets());
        ph.extend_from_slice(&b.octets());
        ph.extend_from_slice(&0x0001_0020u32.to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(&a, &b, 58, 0x0001_0020), sum(&ph));
    }

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
