//! Frame classification and flow hashing: pure functions on byte slices.
//!
//! Every accessor checks bounds first; a frame that does not parse is reported
//! as [`Malformed`] so the caller counts and drops it instead of panicking.

use std::net::Ipv4Addr;

pub type Mac = [u8; 6];

pub const ETH_HLEN: usize = 14;
pub const ETH_ALEN: usize = 6;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const BROADCAST_MAC: Mac = [0xff; 6];

pub const IPPROTO_IGMP: u8 = 2;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

const IPV4_MIN_HLEN: usize = 20;
const IPV4_FLAG_MF: u16 = 0x2000;
const IPV4_FRAG_OFFSET_MASK: u16 = 0x1fff;

/// ARP over Ethernet for IPv4 (RFC 826): the only ARP shape we handle.
pub const ARP_LEN: usize = 28;
pub const ARP_HTYPE_ETHERNET: u16 = 1;
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;
/// Offsets inside the Ethernet frame.
pub const ARP_SHA: usize = ETH_HLEN + 8;
pub const ARP_SPA: usize = ETH_HLEN + 14;
pub const ARP_THA: usize = ETH_HLEN + 18;
pub const ARP_TPA: usize = ETH_HLEN + 24;

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

#[inline]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub fn dst_mac(frame: &[u8]) -> Mac {
    [frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]]
}

#[inline]
pub fn src_mac(frame: &[u8]) -> Mac {
    [frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]
}

/// Group bit of the first octet: broadcast and multicast.
#[inline]
pub fn is_multicast_mac(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

#[inline]
pub fn ethertype(frame: &[u8]) -> u16 {
    be16(frame, 12)
}

/// Parses an ARP payload (Ethernet/IPv4 only) and returns (op, sender IP, target IP).
pub fn parse_arp(frame: &[u8]) -> Result<(u16, Ipv4Addr, Ipv4Addr), Malformed> {
    if frame.len() < ETH_HLEN + ARP_LEN {
        return Err(Malformed);
    }
    let a = &frame[ETH_HLEN..];
    if be16(a, 0) != ARP_HTYPE_ETHERNET || be16(a, 2) != ETH_P_IP || a[4] != 6 || a[5] != 4 {
        return Err(Malformed);
    }
    let op = be16(a, 6);
    Ok((
        op,
        Ipv4Addr::from(be32(frame, ARP_SPA)),
        Ipv4Addr::from(be32(frame, ARP_TPA)),
    ))
}

/// Parses the IPv4 header at `l3` and extracts the flow key.
pub fn parse_ipv4_flow(frame: &[u8], l3: usize) -> Result<FlowKey, Malformed> {
    let ip = frame.get(l3..).ok_or(Malformed)?;
    if ip.len() < IPV4_MIN_HLEN || ip[0] >> 4 != 4 {
        return Err(Malformed);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < IPV4_MIN_HLEN || ip.len() < ihl {
        return Err(Malformed);
    }
    let proto = ip[9];
    let frag = be16(ip, 6);
    let fragmented = frag & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK) != 0;
    // Only the first fragment carries ports, so every fragment hashes on
    // addresses and protocol alone and a datagram never splits across members.
    let ports = if !fragmented && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && ip.len() >= ihl + 4 {
        be32(ip, ihl)
    } else {
        0
    };
    Ok(FlowKey {
        src: be32(ip, 12),
        dst: be32(ip, 16),
        proto,
        ports,
    })
}

/// Classifies a frame read from the group interface.
pub fn classify(frame: &[u8]) -> Result<Class, Malformed> {
    if frame.len() < ETH_HLEN {
        return Err(Malformed);
    }
    let et = ethertype(frame);
    if et == ETH_P_ARP {
        let (op, sender, target) = parse_arp(frame)?;
        return Ok(Class::Arp { op, sender, target });
    }
    if is_multicast_mac(&dst_mac(frame)) {
        return Ok(Class::Multicast);
    }
    if et == ETH_P_IP {
        return parse_ipv4_flow(frame, ETH_HLEN).map(Class::Ipv4Unicast);
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
        f[ETH_HLEN + 6] = 0x20; // MF
        let Class::Ipv4Unicast(k) = classify(&f).unwrap() else {
            panic!()
        };
        assert_eq!(k.ports, 0);
        let mut g = udp([192, 0, 2, 200], [192, 0, 2, 1], 7, 9);
        g[ETH_HLEN + 7] = 0x10; // offset, no ports in this fragment
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
            if n < ETH_HLEN + IPV4_MIN_HLEN {
                assert_eq!(r, Err(Malformed), "len {n}");
            }
        }
        let mut bad = f.clone();
        bad[ETH_HLEN] = 0x44; // IHL 4 words < minimum
        assert_eq!(classify(&bad), Err(Malformed));
        bad[ETH_HLEN] = 0x65; // version 6 in an IPv4 ethertype
        assert_eq!(classify(&bad), Err(Malformed));
    }

    #[test]
    fn multicast_and_arp_are_recognised() {
        let mut f = udp([192, 0, 2, 200], [239, 1, 1, 1], 1, 2);
        f[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 1, 1, 1]);
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
        assert_eq!(classify(&arp[..30]), Err(Malformed));
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
