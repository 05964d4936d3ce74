//! Frames the daemon builds itself: gratuitous ARP and the IGMP query used
//! to make the kernel re-announce its multicast memberships.

use super::frame::*;
use std::net::Ipv4Addr;

/// Minimum Ethernet payload; shorter frames are padded by us so a relay
/// that does not pad (AF_PACKET does not) still sends a legal frame.
const ETH_MIN_FRAME: usize = 60;

/// An Ethernet frame of `len` bytes (padded to the minimum) with its header.
pub fn eth_frame(dst: Mac, src: Mac, ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(ETH_MIN_FRAME)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
}

/// An Ethernet/IPv4 ARP frame.
pub fn arp_frame(op: u16, src: Mac, dst: Mac, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = eth_frame(dst, src, ETH_P_ARP, ETH_HLEN + ARP_LEN);
    f[14..16].copy_from_slice(&ARP_HTYPE_ETHERNET.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[ARP_SHA..ARP_SHA + 6].copy_from_slice(&sha);
    f[ARP_SPA..ARP_SPA + 4].copy_from_slice(&spa.octets());
    f[ARP_THA..ARP_THA + 6].copy_from_slice(&tha);
    f[ARP_TPA..ARP_TPA + 4].copy_from_slice(&tpa.octets());
    f
}

/// A gratuitous ARP in the broadcast-request form: sender IP = target IP,
/// target MAC zero. Linux accepts a changed MAC within its locktime only
/// from such a frame, so neighbours switch to the new member at once.
pub fn gratuitous_arp(sender_mac: Mac, addr: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        ARP_OP_REQUEST,
        sender_mac,
        BROADCAST_MAC,
        sender_mac,
        addr,
        [0; 6],
        addr,
    )
}

const IGMP_ALL_HOSTS: [u8; 4] = [224, 0, 0, 1];
const IGMP_ALL_HOSTS_MAC: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
const IGMP_MEMBERSHIP_QUERY: u8 = 0x11;
/// Max response time in tenths of a second: the kernel answers within 1 s.
pub const IGMP_QUERY_MAX_RESP_DECISECONDS: u8 = 10;
const IGMPV3_QUERY_LEN: usize = 12;

/// RFC 1071 Internet checksum.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IGMPv3 general query from 0.0.0.0 (a querier with no address), as if
/// it came from the wire, addressed to `dst_mac` (ipmp0's own frames reach the
/// kernel only if it accepts the destination; all-hosts multicast always is).
/// Injected into the group interface, it makes the kernel re-send every
/// membership report, which then leaves through the current nominee.
pub fn igmp_general_query(src_mac: Mac) -> Vec<u8> {
    let ihl = 24; // 20 + Router Alert option, as queries carry (RFC 2236/3376)
    let total = ihl + IGMPV3_QUERY_LEN;
    let mut f = eth_frame(IGMP_ALL_HOSTS_MAC, src_mac, ETH_P_IP, ETH_HLEN + total);
    let ip = &mut f[ETH_HLEN..ETH_HLEN + ihl];
    ip[0] = 0x46;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 1; // TTL 1: link-local control traffic
    ip[9] = IPPROTO_IGMP;
    ip[16..20].copy_from_slice(&IGMP_ALL_HOSTS);
    ip[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // Router Alert
    let c = inet_checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let q = &mut f[ETH_HLEN + ihl..];
    q[0] = IGMP_MEMBERSHIP_QUERY;
    q[1] = IGMP_QUERY_MAX_RESP_DECISECONDS;
    q[8] = 2; // QRV
    q[9] = 10; // QQIC
    let c = inet_checksum(q);
    q[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_is_a_broadcast_request_for_itself() {
        let mac = [2, 1, 2, 3, 4, 5];
        let a = Ipv4Addr::new(192, 0, 2, 200);
        let f = gratuitous_arp(mac, a);
        let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Arp(arp)) = p.net else {
            panic!("not ARP")
        };
        assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST);
        assert_eq!(arp.sender_hw_addr(), &mac);
        assert_eq!(arp.sender_protocol_addr(), &a.octets());
        assert_eq!(arp.target_protocol_addr(), &a.octets());
        assert_eq!(arp.target_hw_addr(), &[0; 6]);
        assert_eq!(&f[..6], &BROADCAST_MAC);
        assert_eq!(src_mac(&f), mac);
    }

    #[test]
    fn igmp_query_checksums_verify() {
        let f = igmp_general_query([2, 0, 0, 0, 0, 1]);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        assert_eq!(ip.protocol(), etherparse::IpNumber::IGMP);
        assert_eq!(ip.destination(), IGMP_ALL_HOSTS);
        assert_eq!(inet_checksum(&f[ETH_HLEN..ETH_HLEN + 24]), 0);
        assert_eq!(inet_checksum(&f[ETH_HLEN + 24..ETH_HLEN + 36]), 0);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: sum 0xddf2, checksum is its complement.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(&d), !0xddf2);
    }
}
