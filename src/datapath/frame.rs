//! Frame classification and flow hashing: pure functions on byte slices,
//! the per-frame fast path. Layouts and offsets come from [`crate::wire`].
//!
//! [`classify`] and the parsers check bounds first; a frame that does not
//! parse is reported as [`Malformed`] so the caller counts and drops it
//! instead of panicking. The small accessors (`dst_mac`, `src_mac`,
//! `ethertype`) do not check: they need a frame of at least `ETH_HLEN` bytes,
//! which their callers have checked.

use crate::wire::ethernet::{self, ethertype};
use crate::wire::{arp, ipv4, read_u32, Field};
use std::net::Ipv4Addr;

/// An Ethernet address: the wire type, under the name the daemon uses.
pub type Mac = ethernet::Address;

pub const ETH_HLEN: usize = ethernet::HEADER_LEN;
pub const ETH_ALEN: usize = ethernet::ADDRESS_LEN;
pub const ETH_P_IP: u16 = ethertype::IPV4;
pub const ETH_P_ARP: u16 = ethertype::ARP;
pub const ETH_P_8021Q: u16 = ethertype::VLAN;
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
    /// Broadcast or multicast destination (not ARP): nominee only.
    Multicast,
    /// Any other unicast (IPv6 while disabled, VLAN-tagged, other ethertypes).
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

/// Classifies a frame read from the group interface.
pub fn classify(frame: &[u8]) -> Result<Class, Malformed> {
    let et = ethernet::Frame::new_checked(frame)
        .map_err(|_| Malformed)?
        .ethertype();
    if et == ETH_P_ARP {
        let (op, sender, target) = parse_arp(frame)?;
        return Ok(Class::Arp { op, sender, target });
    }
    if is_multicast_mac(&dst_mac(frame)) {
        return Ok(Class::Multicast);
    }
    if et == ETH_P_IP {
        return parse_ipv4_flow(frame, IPV4_AT).map(Class::Ipv4Unicast);
    }
    Ok(Class::OtherUnicast)
}

/// MurmurHash3's 64-bit finaliser: a cheap full-avalanche mix.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Hashes a flow with a per-process random seed, so remote hosts cannot aim
/// many flows at one member.
#[inline]
pub fn flow_hash(k: &FlowKey, seed: u64) -> u64 {
    let a = (u64::from(k.src) << 32 | u64::from(k.dst)) ^ seed;
    let b = u64::from(k.proto) << 32 | u64::from(k.ports);
    fmix64(a ^ fmix64(b ^ seed.rotate_left(29)))
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
}
