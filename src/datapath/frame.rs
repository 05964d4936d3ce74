//! Frame classification and flow hashing: pure functions on byte slices,
//! the per-frame fast path. Layouts and offsets come from [`crate::wire`].
//!
//! [`classify`] and the parsers check bounds first; a frame that does not
//! parse is reported as [`Malformed`] so the caller counts and drops it
//! instead of panicking. The small accessors (`dst_mac`, `src_mac`,
//! `ethertype`) do not check: they need a frame of at least `ETH_HLEN` bytes,
//! which their callers have checked.

use crate::wire::ethernet::{self, ethertype};
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, next_header};
use crate::wire::{arp, ipv4, ipv6ext, read_u32, vlan, Error, Field};
use std::net::Ipv4Addr;

/// An Ethernet address: the wire type, under the name the daemon uses.
pub type Mac = ethernet::Address;

pub const ETH_HLEN: usize = ethernet::HEADER_LEN;
pub const ETH_ALEN: usize = ethernet::ADDRESS_LEN;
pub const ETH_P_IP: u16 = ethertype::IPV4;
pub const ETH_P_ARP: u16 = ethertype::ARP;
pub const ETH_P_8021Q: u16 = ethertype::VLAN;
pub const ETH_P_IPV6: u16 = ethertype::IPV6;
pub const BROADCAST_MAC: Mac = ethernet::BROADCAST;

pub const IPPROTO_IGMP: u8 = ipv4::protocol::IGMP;
pub const IPPROTO_TCP: u8 = ipv4::protocol::TCP;
pub const IPPROTO_UDP: u8 = ipv4::protocol::UDP;

/// ARP over Ethernet for IPv4 (RFC 826): the only ARP shape we handle.
pub const ARP_LEN: usize = arp::PACKET_LEN;
pub const ARP_OP_REQUEST: u16 = arp::op::REQUEST;
pub const ARP_OP_REPLY: u16 = arp::op::REPLY;

/// `f` moved from the start of an Ethernet payload to the start of the frame.
const fn in_frame(f: Field) -> Field {
    f.start + ETH_HLEN..f.end + ETH_HLEN
}

/// Where the fast path reads and rewrites ARP addresses, in the frame.
pub const ARP_SHA: Field = in_frame(arp::field::SHA);
pub const ARP_THA: Field = in_frame(arp::field::THA);
pub const ARP_TPA: Field = in_frame(arp::field::TPA);
/// Where the IPv4 header of an untagged frame starts.
pub const IPV4_AT: usize = ETH_HLEN;
/// Where the IP header of an untagged frame starts (either version).
pub const L3_AT: usize = ETH_HLEN;
/// Where the IP header of a frame with one 802.1Q tag starts.
pub const L3_AT_TAGGED: usize = ETH_HLEN + vlan::TAG_LEN;

/// A frame too short or inconsistent to be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The fields of an IPv4 flow that pick a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowKey {
    pub src: u32,
    pub dst: u32,
    pub proto: u8,
    /// `src_port << 16 | dst_port`; zero for fragments and non-TCP/UDP.
    pub ports: u32,
}

/// The fields of an IPv6 flow that pick a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowKey6 {
    pub src: u128,
    pub dst: u128,
    /// The upper-layer protocol (after extension headers).
    pub proto: u8,
    /// `src_port << 16 | dst_port` for TCP and UDP; the flow label when
    /// the packet has no ports; zero for fragments.
    pub ports: u32,
}

/// What the outbound path needs to know about a frame read from the group interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Unicast IPv4: spread per flow.
    Ipv4Unicast(FlowKey),
    /// An ARP packet; leaves through the member bound to `sender`.
    Arp {
        op: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    /// Unicast IPv6: spread per flow.
    Ipv6Unicast(FlowKey6),
    /// A neighbour discovery message (ICMPv6 133-137, RS to Redirect), unicast
    /// or multicast: IPv6's ARP. Its link-layer address options name a MAC;
    /// it leaves through the member bound to its source address `src`.
    Ndp { msg_type: u8, src: u128 },
    /// Broadcast or multicast destination (not ARP, not NDP): nominee only.
    Multicast,
    /// Any other unicast (other ethertypes, ARP or more than one tag behind a VLAN tag).
    OtherUnicast,
}

/// The destination address of a frame of at least [`ETH_HLEN`] bytes.
#[inline]
pub fn dst_mac(frame: &[u8]) -> Mac {
    ethernet::Frame::new_unchecked(frame).dst_addr()
}

/// The source address of a frame of at least [`ETH_HLEN`] bytes.
#[inline]
pub fn src_mac(frame: &[u8]) -> Mac {
    ethernet::Frame::new_unchecked(frame).src_addr()
}

/// Group bit of the first octet: broadcast and multicast.
#[inline]
pub fn is_multicast_mac(mac: &Mac) -> bool {
    ethernet::is_multicast(mac)
}

/// The ethertype of a frame of at least [`ETH_HLEN`] bytes.
#[inline]
pub fn ethertype(frame: &[u8]) -> u16 {
    ethernet::Frame::new_unchecked(frame).ethertype()
}

/// Parses an ARP payload (Ethernet/IPv4 only) and returns (op, sender IP, target IP).
#[inline]
pub fn parse_arp(frame: &[u8]) -> Result<(u16, Ipv4Addr, Ipv4Addr), Malformed> {
    let payload = frame.get(ETH_HLEN..).ok_or(Malformed)?;
    let a = arp::Packet::new_checked(payload).map_err(|_| Malformed)?;
    if !a.is_ethernet_ipv4() {
        return Err(Malformed);
    }
    Ok((a.operation(), a.source_protocol_addr(), a.target_protocol_addr()))
}

/// Parses the IPv4 header at `l3` and extracts the flow key. Specialised
/// for speed: only the fields the key needs, and the total length is not
/// checked (a frame whose header is whole is forwarded whatever follows).
#[inline]
pub fn parse_ipv4_flow(frame: &[u8], l3: usize) -> Result<FlowKey, Malformed> {
    let ip = frame.get(l3..).ok_or(Malformed)?;
    if ip.len() < ipv4::MIN_HEADER_LEN {
        return Err(Malformed);
    }
    let h = ipv4::Packet::new_unchecked(ip);
    if h.version() != ipv4::VERSION {
        return Err(Malformed);
    }
    let ihl = h.header_len();
    if ihl < ipv4::MIN_HEADER_LEN || ip.len() < ihl {
        return Err(Malformed);
    }
    let proto = h.protocol();
    // Only the first fragment carries ports, so every fragment hashes on
    // addresses and protocol alone and a datagram never splits across members.
    let ports = if !h.is_fragment()
        && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
        && ip.len() >= ihl + ipv4::l4::PORTS.end
    {
        read_u32(&ip[ihl..], ipv4::l4::PORTS)
    } else {
        0
    };
    Ok(FlowKey {
        src: read_u32(ip, ipv4::field::SRC_ADDR),
        dst: read_u32(ip, ipv4::field::DST_ADDR),
        proto,
        ports,
    })
}

/// What the fast path reads of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Flow {
    Flow(FlowKey6),
    /// A neighbour discovery message of this ICMPv6 type, from `src`.
    Ndp {
        msg_type: u8,
        src: u128,
    },
}

#[inline]
fn read_u128(b: &[u8], f: Field) -> u128 {
    let mut o = [0u8; ipv6::ADDRESS_LEN];
    o.copy_from_slice(&b[f]);
    u128::from_be_bytes(o)
}

/// Parses the IPv6 header at `l3` and what follows it to the flow key,
/// walking extension headers (at most [`ipv6ext::MAX_EXT_HEADERS`]).
/// Specialised like [`parse_ipv4_flow`]: the payload length is not checked.
/// Ports for TCP and UDP; every fragment (but an atomic one) hashes on
/// addresses and protocol alone, so a datagram never splits across members;
/// other packets (ICMPv6, ESP, a chain too long to walk) on the flow label.
#[inline]
pub fn parse_ipv6_flow(frame: &[u8], l3: usize) -> Result<Ipv6Flow, Malformed> {
    let ip = frame.get(l3..).ok_or(Malformed)?;
    if ip.len() < ipv6::HEADER_LEN {
        return Err(Malformed);
    }
    let h = ipv6::Packet::new_unchecked(ip);
    if h.version() != ipv6::VERSION {
        return Err(Malformed);
    }
    let payload = &ip[ipv6::HEADER_LEN..];
    let (proto, ports) = match ipv6ext::walk(h.next_header(), payload) {
        Ok(u) => {
            // The walk checked every header whole: `offset` is inside.
            let l4 = &payload[u.offset..];
            match (u.fragment, u.next_header) {
                (Some(f), nh) if !f.is_atomic() => (nh, 0),
                (_, nh @ (next_header::TCP | next_header::UDP)) if l4.len() >= ipv4::l4::PORTS.end => {
                    (nh, read_u32(l4, ipv4::l4::PORTS))
                }
                (_, next_header::ICMPV6) => match l4.get(icmpv6::field::TYPE) {
                    Some(&t) if icmpv6::is_ndp(t) => {
                        return Ok(Ipv6Flow::Ndp {
                            msg_type: t,
                            src: read_u128(ip, ipv6::field::SRC_ADDR),
                        })
                    }
                    _ => (next_header::ICMPV6, h.flow_label()),
                },
                (_, nh) => (nh, h.flow_label()),
            }
        }
        Err(Error::Unsupported) => (next_header::NO_NEXT, h.flow_label()),
        Err(_) => return Err(Malformed),
    };
    Ok(Ipv6Flow::Flow(FlowKey6 {
        src: read_u128(ip, ipv6::field::SRC_ADDR),
        dst: read_u128(ip, ipv6::field::DST_ADDR),
        proto,
        ports,
    }))
}

/// The flow key of the common frame, from [`fast_flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastFlow {
    V4(FlowKey),
    V6(FlowKey6),
}

/// Bytes [`fast_flow`] reads of an IPv4 frame: Ethernet, a header without
/// options, the two ports.
pub(crate) const FAST4_LEN: usize = L3_AT + ipv4::MIN_HEADER_LEN + ipv4::l4::PORTS.end;
/// Bytes [`fast_flow`] reads of an IPv6 frame up to the upper layer.
pub(crate) const FAST6_LEN: usize = L3_AT + ipv6::HEADER_LEN;
/// Where [`fast_flow`] reads the ports of an IPv4 frame.
const FAST4_PORTS: Field = L3_AT + ipv4::MIN_HEADER_LEN..FAST4_LEN;
/// The flags-and-offset bits that make a packet a fragment.
pub(crate) const FRAGMENT_BITS: u16 = ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK;
/// The high nibble of an IPv6 header's first byte.
pub(crate) const VERSION_SHIFT: u8 = 4;

/// Where a frame's field `f` of the IP header (or the headers after it) is.
const fn at_l3(f: Field) -> Field {
    f.start + L3_AT..f.end + L3_AT
}

#[inline(always)]
fn be_u32(b: &[u8], f: Field) -> u32 {
    let mut o = [0u8; 4];
    o.copy_from_slice(&b[f]);
    u32::from_be_bytes(o)
}

#[inline(always)]
fn be_u128(b: &[u8], f: Field) -> u128 {
    let mut o = [0u8; ipv6::ADDRESS_LEN];
    o.copy_from_slice(&b[f]);
    u128::from_be_bytes(o)
}

/// The flow key of the frame the group interface sends most, read at fixed
/// offsets behind one bounds check: untagged unicast TCP or UDP over IPv4
/// without options and not a fragment, or over IPv6 with no extension
/// header or one Hop-by-Hop or Destination options header. `None` for
/// anything else, which [`classify`] handles; where this answers, it gives
/// the key [`classify`] gives (tested), so the member chosen is the same.
#[inline(always)]
pub fn fast_flow(frame: &[u8]) -> Option<FastFlow> {
    let h: &[u8; FAST4_LEN] = frame.first_chunk()?;
    if is_multicast_mac(&dst_mac(h)) {
        return None;
    }
    let et = u16::from_be_bytes([
        h[ethernet::field::ETHERTYPE.start],
        h[ethernet::field::ETHERTYPE.start + 1],
    ]);
    if et == ETH_P_IP {
        let flg_off = at_l3(ipv4::field::FLG_OFF);
        let frag = u16::from_be_bytes([h[flg_off.start], h[flg_off.start + 1]]);
        let proto = h[L3_AT + ipv4::field::PROTOCOL];
        let ver_ihl = h[L3_AT + ipv4::field::VER_IHL];
        if ipv4::version_of(ver_ihl) != ipv4::VERSION
            || ipv4::header_len_of(ver_ihl) != ipv4::MIN_HEADER_LEN
            || frag & FRAGMENT_BITS != 0
            || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        {
            return None;
        }
        return Some(FastFlow::V4(FlowKey {
            src: be_u32(h, at_l3(ipv4::field::SRC_ADDR)),
            dst: be_u32(h, at_l3(ipv4::field::DST_ADDR)),
            proto,
            ports: be_u32(h, FAST4_PORTS),
        }));
    }
    if et != ETH_P_IPV6 {
        return None;
    }
    let h: &[u8; FAST6_LEN] = frame.first_chunk()?;
    if h[L3_AT] >> VERSION_SHIFT != ipv6::VERSION {
        return None;
    }
    let mut nh = h[L3_AT + ipv6::field::NXT_HDR];
    let mut l4 = FAST6_LEN;
    if nh == next_header::DEST_OPTS || nh == next_header::HOP_BY_HOP {
        // Their length counts 8-byte units beyond the first (RFC 8200 4.3):
        // at least 8 bytes, so whole whenever the ports behind it are.
        let e = frame.get(l4..l4 + ipv6ext::field::OPTIONS_START)?;
        nh = e[ipv6ext::field::NXT_HDR];
        l4 += (usize::from(e[ipv6ext::field::LENGTH]) + 1) * ipv6ext::LEN_UNIT;
    }
    if nh != next_header::TCP && nh != next_header::UDP {
        return None;
    }
    let ports = frame.get(l4..l4 + ipv4::l4::PORTS.end)?;
    Some(FastFlow::V6(FlowKey6 {
        src: be_u128(h, at_l3(ipv6::field::SRC_ADDR)),
        dst: be_u128(h, at_l3(ipv6::field::DST_ADDR)),
        proto: nh,
        ports: be_u32(ports, ipv4::l4::PORTS),
    }))
}

/// The ethertype and IP header offset of a frame of at least [`ETH_HLEN`]
/// bytes, behind one 802.1Q tag if there is one.
#[inline]
pub fn l3_of(frame: &[u8]) -> (u16, usize) {
    let et = ethertype(frame);
    if et == ETH_P_8021Q {
        if let Ok(t) = vlan::Packet::new_checked(&frame[ETH_HLEN..]) {
            return (t.ethertype(), L3_AT_TAGGED);
        }
    }
    (et, L3_AT)
}

/// Classifies a frame read from the group interface. IPv4 and IPv6 are
/// read untagged or behind one 802.1Q tag; ARP untagged.
#[inline]
pub fn classify(frame: &[u8]) -> Result<Class, Malformed> {
    let et = ethernet::Frame::new_checked(frame)
        .map_err(|_| Malformed)?
        .ethertype();
    if et == ETH_P_ARP {
        let (op, sender, target) = parse_arp(frame)?;
        return Ok(Class::Arp { op, sender, target });
    }
    let multicast = is_multicast_mac(&dst_mac(frame));
    let (et, l3) = l3_of(frame);
    if et == ETH_P_IPV6 {
        // Before the multicast check: solicitations go to multicast groups.
        return match parse_ipv6_flow(frame, l3) {
            Ok(Ipv6Flow::Ndp { msg_type, src }) => Ok(Class::Ndp { msg_type, src }),
            Ok(_) | Err(_) if multicast => Ok(Class::Multicast),
            Ok(Ipv6Flow::Flow(k)) => Ok(Class::Ipv6Unicast(k)),
            Err(e) => Err(e),
        };
    }
    if multicast {
        return Ok(Class::Multicast);
    }
    if et == ETH_P_IP {
        return parse_ipv4_flow(frame, l3).map(Class::Ipv4Unicast);
    }
    Ok(Class::OtherUnicast)
}

/// [`fmix64`]'s shift and multipliers (MurmurHash3's).
pub(crate) const FMIX_SHIFT: u32 = 33;
pub(crate) const FMIX_MUL: [u64; 2] = [0xff51_afd7_ed55_8ccd, 0xc4ce_b9fe_1a85_ec53];

/// MurmurHash3's 64-bit finaliser: a cheap full-avalanche mix.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> FMIX_SHIFT;
    k = k.wrapping_mul(FMIX_MUL[0]);
    k ^= k >> FMIX_SHIFT;
    k = k.wrapping_mul(FMIX_MUL[1]);
    k ^ (k >> FMIX_SHIFT)
}

/// How far [`flow_hash`] rotates the seed for the protocol-and-ports word.
pub(crate) const FLOW4_SEED_ROT: u32 = 29;

/// Hashes a flow with a per-process random seed, so remote hosts cannot aim
/// many flows at one member.
#[inline]
pub fn flow_hash(k: &FlowKey, seed: u64) -> u64 {
    let a = (u64::from(k.src) << 32 | u64::from(k.dst)) ^ seed;
    let b = u64::from(k.proto) << 32 | u64::from(k.ports);
    fmix64(a ^ fmix64(b ^ seed.rotate_left(FLOW4_SEED_ROT)))
}

/// Odd multipliers of [`flow_hash6`], one per 64-bit word of the key (the
/// first is 2^64 / golden ratio; the others are MurmurHash3's and
/// splitmix64's constants).
pub(crate) const FLOW6_MUL: [u64; 5] = [
    0x9e37_79b9_7f4a_7c15,
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
];
/// Half a word: the low half of a product (the well-mixed high half of
/// the next one) meets the high half of its neighbour.
pub(crate) const HALF: u32 = 32;

/// The rotation of word `i` of [`flow_hash6`]'s key: different amounts per
/// word, so swapping source and destination (or any two words) changes
/// the hash.
#[inline(always)]
pub(crate) const fn flow6_rot(i: usize) -> u32 {
    (i as u32 * 13) % u64::BITS
}

/// Hashes an IPv6 flow with the per-process seed: each 64-bit word of the
/// key, keyed by a rotation of the seed, through its own multiply (the five
/// are independent, so they overlap in the CPU), combined, then [`fmix64`]
/// for the avalanche.
#[inline]
pub fn flow_hash6(k: &FlowKey6, seed: u64) -> u64 {
    let words = [
        (k.src >> 64) as u64,
        k.src as u64,
        (k.dst >> 64) as u64,
        k.dst as u64,
        u64::from(k.proto) << 32 | u64::from(k.ports),
    ];
    let mut h = 0u64;
    for (i, (w, m)) in words.into_iter().zip(FLOW6_MUL).enumerate() {
        let r = flow6_rot(i);
        h ^= (w ^ seed.rotate_left(r)).wrapping_mul(m).rotate_left(HALF + r);
    }
    fmix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sp, dp);
        let mut v = Vec::new();
        b.write(&mut v, &[1, 2, 3]).unwrap();
        v
    }

    #[test]
    fn classifies_udp_with_ports() {
        let f = udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53);
        match classify(&f).unwrap() {
            Class::Ipv4Unicast(k) => {
                assert_eq!(k.src, u32::from(Ipv4Addr::new(192, 0, 2, 200)));
                assert_eq!(k.dst, u32::from(Ipv4Addr::new(192, 0, 2, 1)));
                assert_eq!(k.proto, IPPROTO_UDP);
                assert_eq!(k.ports, 1000 << 16 | 53);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn fragments_hash_on_addresses_only() {
        let mut f = udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53);
        ipv4::Packet::new_unchecked(&mut f[IPV4_AT..]).set_flags_and_offset(ipv4::FLAG_MF);
        let Class::Ipv4Unicast(k) = classify(&f).unwrap() else {
            panic!()
        };
        assert_eq!(k.ports, 0);
        let mut g = udp([192, 0, 2, 200], [192, 0, 2, 1], 7, 9);
        // A later fragment (offset 16 words): no ports in it.
        ipv4::Packet::new_unchecked(&mut g[IPV4_AT..]).set_flags_and_offset(0x10);
        let Class::Ipv4Unicast(k2) = classify(&g).unwrap() else {
            panic!()
        };
        assert_eq!(flow_hash(&k, 5), flow_hash(&k2, 5));
    }

    #[test]
    fn truncated_frames_are_malformed_not_panics() {
        let f = udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53);
        for n in 0..f.len() {
            // Never panics; short IPv4 headers and short frames are errors.
            let r = classify(&f[..n]);
            if n < ETH_HLEN + ipv4::MIN_HEADER_LEN {
                assert_eq!(r, Err(Malformed), "len {n}");
            }
        }
        let mut bad = f.clone();
        bad[IPV4_AT + ipv4::field::VER_IHL] = 0x44; // IHL 4 words < minimum
        assert_eq!(classify(&bad), Err(Malformed));
        bad[IPV4_AT + ipv4::field::VER_IHL] = 0x65; // version 6 in an IPv4 ethertype
        assert_eq!(classify(&bad), Err(Malformed));
    }

    #[test]
    fn multicast_and_arp_are_recognised() {
        let mut f = udp([192, 0, 2, 200], [239, 1, 1, 1], 1, 2);
        ethernet::Frame::new_unchecked(&mut f[..]).set_dst_addr([0x01, 0x00, 0x5e, 1, 1, 1]);
        assert_eq!(classify(&f).unwrap(), Class::Multicast);
        let arp = crate::datapath::arp::gratuitous_arp([2, 0, 0, 0, 0, 9], Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(
            classify(&arp).unwrap(),
            Class::Arp {
                op: ARP_OP_REQUEST,
                sender: Ipv4Addr::new(192, 0, 2, 7),
                target: Ipv4Addr::new(192, 0, 2, 7)
            }
        );
        assert_eq!(classify(&arp[..ARP_TPA.start]), Err(Malformed));
    }

    #[test]
    fn flow_hash_spreads_and_depends_on_seed() {
        let mut counts = [0u32; 4];
        for port in 0..4000u32 {
            let k = FlowKey {
                src: 1,
                dst: 2,
                proto: 6,
                ports: port,
            };
            counts[(flow_hash(&k, 42) & 3) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        let k = FlowKey {
            src: 1,
            dst: 2,
            proto: 6,
            ports: 3,
        };
        assert_ne!(flow_hash(&k, 1), flow_hash(&k, 2));
    }

    const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn udp6(sp: u16, dp: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(A6, B6, 64)
            .udp(sp, dp)
            .write(&mut v, &[1, 2, 3])
            .unwrap();
        v
    }

    /// TCP 40000 -> 443 over IPv6 (A6 -> B6), carrying `payload`.
    fn tcp6(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(A6, B6, 64)
            .tcp(40000, 443, 1, 1000)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// TCP 40000 -> 443 from 192.0.2.200 to 198.51.100.7, carrying `payload`.
    fn tcp4(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 200], [198, 51, 100, 7], 64)
            .tcp(40000, 443, 1, 1000)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// `f` with extension header `ext` (whose next header is fixed up)
    /// inserted after the IPv6 header.
    fn with_ext(f: &[u8], kind: u8, ext: &[u8]) -> Vec<u8> {
        let at = L3_AT + ipv6::HEADER_LEN;
        let mut ext = ext.to_vec();
        let mut v = f[..at].to_vec();
        ext[ipv6ext::field::NXT_HDR] = v[L3_AT + ipv6::field::NXT_HDR];
        v[L3_AT + ipv6::field::NXT_HDR] = kind;
        v.extend_from_slice(&ext);
        v.extend_from_slice(&f[at..]);
        let mut ip = ipv6::Packet::new_unchecked(&mut v[L3_AT..]);
        let n = ip.payload_len() + ext.len() as u16;
        ip.set_payload_len(n);
        v
    }

    fn fragment(offset: u16, more: bool) -> [u8; ipv6ext::FRAGMENT_LEN] {
        let mut h = [0u8; ipv6ext::FRAGMENT_LEN];
        ipv6ext::Header::new_unchecked(&mut h[..], next_header::FRAGMENT).set_frag(offset, more, 7);
        h
    }

    fn key6(f: &[u8]) -> FlowKey6 {
        match classify(f) {
            Ok(Class::Ipv6Unicast(k)) => k,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn classifies_ipv6_tcp_and_udp_with_ports() {
        let k = key6(&udp6(1000, 53));
        assert_eq!((k.src, k.dst), (u128::from_be_bytes(A6), u128::from_be_bytes(B6)));
        assert_eq!((k.proto, k.ports), (next_header::UDP, 1000 << 16 | 53));
        let k = key6(&tcp6(&[0; 10]));
        assert_eq!((k.proto, k.ports), (next_header::TCP, 40000 << 16 | 443));
        assert_ne!(flow_hash6(&k, 1), flow_hash6(&k, 2));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let plain = key6(&udp6(1000, 53));
        let dest_opts = [0, 0, ipv6ext::option::PADN, 4, 0, 0, 0, 0];
        let f = with_ext(&udp6(1000, 53), next_header::DEST_OPTS, &dest_opts);
        let f = with_ext(&f, next_header::HOP_BY_HOP, &dest_opts);
        assert_eq!(key6(&f), plain);
        // Each truncation is an error, never a panic.
        for n in 0..f.len() {
            let r = classify(&f[..n]);
            if n < L3_AT + ipv6::HEADER_LEN + 2 * ipv6ext::FRAGMENT_LEN {
                assert_eq!(r, Err(Malformed), "len {n}");
            }
        }
    }

    #[test]
    fn ipv6_fragments_of_a_datagram_hash_alike() {
        let first = with_ext(&udp6(1000, 53), next_header::FRAGMENT, &fragment(0, true));
        let later = with_ext(&udp6(7, 9), next_header::FRAGMENT, &fragment(185, false));
        let (k1, k2) = (key6(&first), key6(&later));
        assert_eq!((k1.ports, k1.proto), (0, next_header::UDP));
        assert_eq!(k1, k2);
        // An atomic fragment is a whole datagram: its ports count.
        let atomic = with_ext(&udp6(1000, 53), next_header::FRAGMENT, &fragment(0, false));
        assert_eq!(key6(&atomic), key6(&udp6(1000, 53)));
    }

    #[test]
    fn ipv6_without_ports_hashes_on_the_flow_label() {
        let f = crate::wire::from_hex(crate::wire::KERNEL_PING6);
        let k = key6(&f);
        assert_eq!((k.proto, k.ports), (next_header::ICMPV6, 0xaee3b));
        // A chain longer than the walk's bound still has a flow key.
        let mut g = udp6(1, 2);
        for _ in 0..=ipv6ext::MAX_EXT_HEADERS {
            g = with_ext(
                &g,
                next_header::DEST_OPTS,
                &[0, 0, ipv6ext::option::PADN, 4, 0, 0, 0, 0],
            );
        }
        assert_eq!(key6(&g).proto, next_header::NO_NEXT);
    }

    #[test]
    fn ndp_is_recognised_unicast_or_multicast_and_mld_is_multicast() {
        use crate::wire::{from_hex, KERNEL_MLD_REPORT, KERNEL_NA, KERNEL_NS, KERNEL_RS};
        for (hex, t) in [
            (KERNEL_NS, icmpv6::msg_type::NEIGHBOR_SOLICIT),
            (KERNEL_NA, icmpv6::msg_type::NEIGHBOR_ADVERT),
            (KERNEL_RS, icmpv6::msg_type::ROUTER_SOLICIT),
        ] {
            let f = from_hex(hex);
            let src = ipv6::Packet::new_checked(&f[L3_AT..]).unwrap().src_addr();
            assert_eq!(
                classify(&f),
                Ok(Class::Ndp {
                    msg_type: t,
                    src: u128::from(src)
                })
            );
        }
        assert_eq!(classify(&from_hex(KERNEL_MLD_REPORT)), Ok(Class::Multicast));
        // A multicast frame that does not parse still goes to the nominee.
        let mut m = from_hex(KERNEL_MLD_REPORT);
        m.truncate(L3_AT + ipv6::HEADER_LEN + 2);
        assert_eq!(classify(&m), Ok(Class::Multicast));
        let mut bad = udp6(1, 2);
        bad[L3_AT] = 0x45; // version 4 in an IPv6 ethertype
        assert_eq!(classify(&bad), Err(Malformed));
    }

    /// `f` with an 802.1Q tag (VLAN 100) inserted after the addresses.
    fn tagged(f: &[u8]) -> Vec<u8> {
        let mut v = f[..vlan::TAG_OFFSET].to_vec();
        v.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        v.extend_from_slice(&100u16.to_be_bytes());
        v.extend_from_slice(&f[vlan::TAG_OFFSET..]);
        v
    }

    #[test]
    fn ip_behind_a_vlan_tag_is_classified() {
        let f = udp6(1000, 53);
        assert_eq!(classify(&tagged(&f)), classify(&f));
        let g = udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53);
        assert_eq!(classify(&tagged(&g)), classify(&g));
        let ns = crate::wire::from_hex(crate::wire::KERNEL_NS);
        assert_eq!(classify(&tagged(&ns)), classify(&ns));
        // A tag cut short is no IP packet.
        assert_eq!(classify(&tagged(&g)[..L3_AT + 2]), Ok(Class::OtherUnicast));
    }

    #[test]
    fn flow_hash6_tells_directions_apart() {
        let k = FlowKey6 {
            src: 1 << 100 | 5,
            dst: 2 << 100 | 9,
            proto: 17,
            ports: 1 << 16 | 2,
        };
        let back = FlowKey6 {
            src: k.dst,
            dst: k.src,
            ..k
        };
        assert_ne!(flow_hash6(&k, 3), flow_hash6(&back, 3));
        assert_ne!(flow_hash6(&k, 3), flow_hash6(&k, 4));
    }

    #[test]
    fn flow_hash6_spreads() {
        let mut counts = [0u32; 4];
        for port in 0..4000u32 {
            let k = FlowKey6 {
                src: 1,
                dst: 2,
                proto: 6,
                ports: port,
            };
            counts[(flow_hash6(&k, 42) & 3) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        // Hosts of one /64, and /64s of one /48, spread too.
        for shift in [0, 64] {
            let mut counts = [0u32; 4];
            for host in 0..4000u128 {
                let k = FlowKey6 {
                    src: 1,
                    dst: 0x2001_0db8 << 96 | host << shift,
                    proto: 6,
                    ports: 80,
                };
                counts[(flow_hash6(&k, 42) & 3) as usize] += 1;
            }
            for c in counts {
                assert!((800..1200).contains(&c), "shift {shift}: {counts:?}");
            }
        }
    }

    /// What [`classify`] makes of a frame, as [`fast_flow`] would say it.
    fn classify_as_fast(f: &[u8]) -> Option<FastFlow> {
        match classify(f) {
            Ok(Class::Ipv4Unicast(k)) => Some(FastFlow::V4(k)),
            Ok(Class::Ipv6Unicast(k)) => Some(FastFlow::V6(k)),
            _ => None,
        }
    }

    #[test]
    fn the_fast_path_reads_the_key_classify_reads() {
        let v4 = udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53);
        let v4_tcp = tcp4(&[]);
        let v6_tcp = tcp6(&[]);
        let opts = [0, 0, ipv6ext::option::PADN, 4, 0, 0, 0, 0];
        let long_opts = [
            0,
            1,
            ipv6ext::option::PADN,
            12,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let dest = with_ext(&udp6(1000, 53), next_header::DEST_OPTS, &opts);
        let hop = with_ext(&udp6(1000, 53), next_header::HOP_BY_HOP, &long_opts);
        let fast = [
            v4.clone(),
            v4_tcp,
            udp6(1000, 53),
            v6_tcp.clone(),
            dest.clone(),
            hop,
        ];
        for f in &fast {
            assert!(fast_flow(f).is_some(), "{f:02x?}");
            assert_eq!(fast_flow(f), classify_as_fast(f));
            // Truncated anywhere: the fast path declines or agrees.
            for n in 0..f.len() {
                let g = &f[..n];
                if let Some(k) = fast_flow(g) {
                    assert_eq!(Some(k), classify_as_fast(g), "len {n}");
                }
            }
        }
        // Everything else is left to classify.
        let mut frag = v4.clone();
        ipv4::Packet::new_unchecked(&mut frag[IPV4_AT..]).set_flags_and_offset(ipv4::FLAG_MF);
        let mut later = v4.clone();
        ipv4::Packet::new_unchecked(&mut later[IPV4_AT..]).set_flags_and_offset(1);
        let mut dont_fragment = v4.clone();
        ipv4::Packet::new_unchecked(&mut dont_fragment[IPV4_AT..]).set_flags_and_offset(ipv4::FLAG_DF);
        assert!(fast_flow(&dont_fragment).is_some(), "DF is not a fragment");
        let mut options = v4.clone();
        options[IPV4_AT + ipv4::field::VER_IHL] = 0x46;
        let mut multicast = v4.clone();
        ethernet::Frame::new_unchecked(&mut multicast[..]).set_dst_addr([0x01, 0x00, 0x5e, 1, 1, 1]);
        let mut icmp = v4.clone();
        icmp[IPV4_AT + ipv4::field::PROTOCOL] = ipv4::protocol::ICMP;
        let mut wrong_version = v6_tcp.clone();
        wrong_version[L3_AT] = 0x40;
        let mut tagged = v4[..ETH_HLEN - 2].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0, 7]);
        tagged.extend_from_slice(&v4[ETH_HLEN - 2..]);
        let v6_frag = with_ext(&udp6(1000, 53), next_header::FRAGMENT, &fragment(0, true));
        let two_ext = with_ext(&dest, next_header::HOP_BY_HOP, &opts);
        for f in [
            frag,
            later,
            options,
            multicast,
            icmp,
            wrong_version,
            tagged,
            v6_frag,
            two_ext,
        ] {
            assert_eq!(fast_flow(&f), None, "{f:02x?}");
        }
    }

    use crate::fuzzing::SplitMix64 as SplitMix;

    /// Mutated frames the loop tries.
    const MUTATION_CASES: usize = 100_000;
    /// At most this many mutations per case.
    const MAX_MUTATIONS: usize = 3;
    /// The loop's seed (any; fixed so a failure reproduces).
    const MUTATION_SEED: u64 = 0x1b2d_3c4e_5f60_7182;

    /// Seeded mutations of valid IPv4/IPv6 TCP/UDP frames, aimed at the
    /// bytes the fast path decides on (version, IHL, protocol, next header,
    /// extension length, fragment fields, ethertype, group bit), plus
    /// random bytes and truncations: wherever [`fast_flow`] answers, it
    /// answers what [`classify`] does.
    #[test]
    fn the_fast_path_agrees_with_classify_on_mutated_frames() {
        let v4_tcp = tcp4(&[9; 5]);
        let v6_tcp = tcp6(&[]);
        let opts = [0, 0, ipv6ext::option::PADN, 4, 0, 0, 0, 0];
        let seeds = [
            udp([192, 0, 2, 200], [192, 0, 2, 1], 1000, 53),
            v4_tcp,
            udp6(1000, 53),
            v6_tcp,
            with_ext(&udp6(1000, 53), next_header::DEST_OPTS, &opts),
            with_ext(&udp6(1000, 53), next_header::HOP_BY_HOP, &opts),
        ];
        let ext = FAST6_LEN;
        // The bytes the fast path decides on, in either family's layout.
        let hot = [
            0, // group bit of the destination MAC
            ethernet::field::ETHERTYPE.start,
            ethernet::field::ETHERTYPE.start + 1,
            L3_AT + ipv4::field::VER_IHL,
            L3_AT + ipv4::field::FLG_OFF.start,
            L3_AT + ipv4::field::FLG_OFF.start + 1,
            L3_AT + ipv4::field::PROTOCOL,
            L3_AT + ipv4::field::LENGTH.start,
            L3_AT + ipv4::field::LENGTH.start + 1,
            L3_AT + ipv6::field::NXT_HDR,
            L3_AT + ipv6::field::LENGTH.start,
            L3_AT + ipv6::field::LENGTH.start + 1,
            ext + ipv6ext::field::NXT_HDR,
            ext + ipv6ext::field::LENGTH,
        ];
        // Values that steer the parsers somewhere else.
        let values = [
            IPPROTO_TCP,
            IPPROTO_UDP,
            ipv4::protocol::ICMP,
            next_header::HOP_BY_HOP,
            next_header::DEST_OPTS,
            next_header::FRAGMENT,
            next_header::TCP,
            next_header::UDP,
            0x45,
            0x46,
            0x60,
            0x40,
            0,
            0xff,
        ];
        let mut rng = SplitMix(MUTATION_SEED);
        let (mut answered, mut declined) = (0usize, 0usize);
        let mut f = Vec::new();
        for _ in 0..MUTATION_CASES {
            f.clear();
            f.extend_from_slice(&seeds[rng.below(seeds.len())]);
            for _ in 0..=rng.below(MAX_MUTATIONS) {
                match rng.below(5) {
                    0 => {
                        let i = hot[rng.below(hot.len())];
                        if i < f.len() {
                            f[i] ^= 1 << rng.below(8);
                        }
                    }
                    1 => {
                        let i = hot[rng.below(hot.len())];
                        if i < f.len() {
                            f[i] = values[rng.below(values.len())];
                        }
                    }
                    2 => {
                        let i = rng.below(f.len().max(1));
                        if i < f.len() {
                            f[i] ^= 1 << rng.below(8);
                        }
                    }
                    3 => {
                        let n = rng.below(f.len() + 1);
                        f.truncate(n);
                    }
                    _ => {
                        // Ethertype of the other family.
                        let et = ethernet::field::ETHERTYPE.start;
                        if f.len() > et + 1 {
                            let other = if f[et + 1] == 0 { ETH_P_IPV6 } else { ETH_P_IP };
                            f[et..et + 2].copy_from_slice(&other.to_be_bytes());
                        }
                    }
                }
            }
            match fast_flow(&f) {
                Some(k) => {
                    answered += 1;
                    assert_eq!(Some(k), classify_as_fast(&f), "{f:02x?}");
                }
                None => declined += 1,
            }
        }
        // The loop reached both outcomes often (it tests something).
        assert!(answered > MUTATION_CASES / 10, "answered {answered}");
        assert!(declined > MUTATION_CASES / 10, "declined {declined}");
    }
}
