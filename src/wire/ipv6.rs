//! IPv6 headers (RFC 8200), and the addresses derived from others: the
//! solicited-node group of an address (RFC 4291 2.7.1) and the link-local
//! address of a MAC (modified EUI-64, RFC 4291 2.5.1 and appendix A).

use super::ethernet;
use super::{read_u16, read_u32, write_u16, Error, Result};
use std::net::Ipv6Addr;

/// The version field of an IPv6 header.
pub const VERSION: u8 = 6;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Bytes of an address.
pub const ADDRESS_LEN: usize = 16;
/// All nodes on the link (RFC 4291 2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All routers on the link.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// Where MLDv2 reports go (RFC 3810 5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// Hop limit of NDP messages, checked on receipt: they never cross a router.
pub const NDP_HOP_LIMIT: u8 = 255;
/// The flow label is the low 20 bits of the first word.
const FLOW_LABEL_MASK: u32 = 0x000f_ffff;
const TRAFFIC_CLASS_SHIFT: u32 = 20;
const VERSION_SHIFT: u32 = 28;
/// The solicited-node prefix ff02::1:ff00:0/104: the low 24 bits are the address's.
const SOLICITED_NODE_PREFIX: u128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000;
const SOLICITED_NODE_LOW_BITS: u128 = 0x00ff_ffff;
/// The link-local prefix fe80::/64.
const LINK_LOCAL_PREFIX: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];
/// Modified EUI-64: the universal/local bit of the MAC's first octet is
/// inverted, and ff:fe goes between its two halves.
const EUI64_UL_BIT: u8 = 0x02;
const EUI64_FILLER: [u8; 2] = [0xff, 0xfe];
/// Ethernet multicast MACs of IPv6 groups: 33:33 and the group's low 32 bits (RFC 2464 7).
const MULTICAST_MAC_PREFIX: [u8; 2] = [0x33, 0x33];

/// Next-header values the daemon knows (the IP protocol numbers, shared
/// with IPv4 for the upper layers).
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
}

pub mod field {
    use crate::wire::Field;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// The solicited-node multicast group of `a`: ff02::1:ffXX:XXXX.
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(SOLICITED_NODE_PREFIX | (u128::from(a) & SOLICITED_NODE_LOW_BITS))
}

/// The Ethernet multicast address of IPv6 group `a`.
pub fn multicast_mac(a: Ipv6Addr) -> ethernet::Address {
    let o = a.octets();
    let [p0, p1] = MULTICAST_MAC_PREFIX;
    [p0, p1, o[12], o[13], o[14], o[15]]
}

/// The link-local address of an interface with MAC `mac` (modified EUI-64):
/// 02:00:5e:10:00:01 gives fe80::5eff:fe10:1, as Linux forms it.
pub fn link_local_from_mac(mac: ethernet::Address) -> Ipv6Addr {
    let mut o = [0u8; ADDRESS_LEN];
    o[..8].copy_from_slice(&LINK_LOCAL_PREFIX);
    o[8] = mac[0] ^ EUI64_UL_BIT;
    o[9..11].copy_from_slice(&mac[1..3]);
    o[11..13].copy_from_slice(&EUI64_FILLER);
    o[13..16].copy_from_slice(&mac[3..6]);
    Ipv6Addr::from(o)
}

/// Whether `a` is in fe80::/10.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The address in a 16-byte slice (a caller's checked range).
#[inline]
pub fn address_of(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; ADDRESS_LEN];
    o.copy_from_slice(&b[..ADDRESS_LEN]);
    Ipv6Addr::from(o)
}

#[inline]
pub(crate) fn address_at(b: &[u8], f: super::Field) -> Ipv6Addr {
    let mut o = [0u8; ADDRESS_LEN];
    o.copy_from_slice(&b[f]);
    Ipv6Addr::from(o)
}

/// A view of an IPv6 packet (the fixed header; extension headers are in
/// its payload, see [`super::ipv6ext`]).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds the header and the payload length it declares
    /// (more is link padding). Jumbograms (payload length 0 with a
    /// Hop-by-Hop jumbo option) do not exist on Ethernet: a zero length is
    /// an empty payload.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    fn first_word(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.first_word() >> VERSION_SHIFT) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> TRAFFIC_CLASS_SHIFT) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_LABEL_MASK
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        address_at(self.buffer.as_ref(), field::SRC_ADDR)
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        address_at(self.buffer.as_ref(), field::DST_ADDR)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: extension headers and upper layer, up to the payload
    /// length (link padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 6, traffic class and flow label (the first word).
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = u32::from(VERSION) << VERSION_SHIFT
            | u32::from(traffic_class) << TRAFFIC_CLASS_SHIFT
            | (flow_label & FLOW_LABEL_MASK);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, as [`Packet::payload`].
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The fixed header of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    /// Bytes after the fixed header (extension headers included).
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Repr {
    /// Parses a fixed header: version 6, the declared payload present.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.version() != VERSION {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header into a packet of at least [`Repr::total_len`]
    /// bytes; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
    }

    /// A whole frame: `eth`'s header, this header, and a payload of
    /// [`Repr::payload_len`] bytes written by `fill`; padded to the
    /// minimum frame length.
    pub fn frame(&self, eth: ethernet::Repr, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut v = eth.frame(self.total_len());
        let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
        let mut p = Packet::new_unchecked(f.payload_mut());
        self.emit(&mut p);
        fill(p.payload_mut());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_PING6};

    #[test]
    fn parses_a_kernel_header_and_emits_it_again() {
        let f = from_hex(KERNEL_PING6);
        let b = &f[ethernet::HEADER_LEN..];
        let p = Packet::new_checked(b).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                src_addr: "2001:db8::1".parse().unwrap(),
                dst_addr: "2001:db8::2".parse().unwrap(),
                next_header: next_header::ICMPV6,
                payload_len: 24,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0xaee3b,
            }
        );
        let mut out = b.to_vec();
        out[..HEADER_LEN].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
    }

    #[test]
    fn round_trip_and_truncations() {
        let r = Repr {
            src_addr: "fe80::1".parse().unwrap(),
            dst_addr: ALL_NODES,
            next_header: next_header::UDP,
            payload_len: 10,
            hop_limit: 1,
            traffic_class: 0xb8,
            flow_label: 0xfffff,
        };
        let mut b = vec![0u8; r.total_len() + 4]; // link padding after it
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(r));
        assert_eq!(p.payload().len(), 10);
        for n in 0..r.total_len() {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(Error::Truncated),
                "len {n}"
            );
        }
        b[0] = 0x45; // version 4
        assert_eq!(Repr::parse(&Packet::new_unchecked(&b[..])), Err(Error::Malformed));
    }

    #[test]
    fn derived_addresses() {
        // What Linux 6 assigns to an interface with this MAC (checked with
        // `ip -6 addr` in a namespace; "fe80::5e:10ff:fe00:1" would put
        // ff:fe after the fourth byte, not the third).
        assert_eq!(
            link_local_from_mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]),
            "fe80::5eff:fe10:1".parse::<Ipv6Addr>().unwrap()
        );
        // The captured frames' hosts: 02:00:00:00:00:0a is fe80::ff:fe00:a.
        assert_eq!(
            link_local_from_mac([2, 0, 0, 0, 0, 0x0a]),
            "fe80::ff:fe00:a".parse::<Ipv6Addr>().unwrap()
        );
        // A universal MAC gets the bit set: 00:1b:21:.. → 021b:21ff:..
        assert_eq!(
            link_local_from_mac([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]),
            "fe80::21b:21ff:feaa:bbcc".parse::<Ipv6Addr>().unwrap()
        );
        let a: Ipv6Addr = "2001:db8::12:3456:789a".parse().unwrap();
        let sn = solicited_node(a);
        assert_eq!(sn, "ff02::1:ff56:789a".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(sn), [0x33, 0x33, 0xff, 0x56, 0x78, 0x9a]);
        assert!(ethernet::is_multicast(&multicast_mac(ALL_NODES)));
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(is_link_local(&"febf::1".parse().unwrap()));
        assert!(!is_link_local(&"fec0::1".parse().unwrap()));
        assert!(!is_link_local(&ALL_NODES));
    }
}
