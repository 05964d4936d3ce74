//! Frames the daemon builds for the group itself: gratuitous ARP, and the
//! IGMP query used to make the kernel re-announce its multicast
//! memberships. Built from the formats of [`crate::wire`].

use super::frame::Mac;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::{arp, igmp, ipv4};
use std::net::Ipv4Addr;

/// Max response time in tenths of a second: the kernel answers within 1 s.
pub const IGMP_QUERY_MAX_RESP_DECISECONDS: u8 = 10;
/// The querier's robustness variable: RFC 3376's default.
const IGMP_QUERY_QRV: u8 = 2;
/// The querier's query interval code, in seconds (exact below 128).
const IGMP_QUERY_QQIC: u8 = 10;
/// Queries are link-local control traffic: never routed.
const IGMP_QUERY_TTL: u8 = 1;
/// DSCP CS6 (internetwork control), as Linux sends its own IGMP.
const IGMP_QUERY_DSCP_ECN: u8 = 0xc0;

/// A gratuitous ARP in the broadcast-request form: sender IP = target IP,
/// target MAC zero. Linux accepts a changed MAC within its locktime only
/// from such a frame, so neighbours switch to the new member at once.
pub fn gratuitous_arp(sender_mac: Mac, addr: Ipv4Addr) -> Vec<u8> {
    arp::Repr {
        operation: arp::op::REQUEST,
        source_hardware_addr: sender_mac,
        source_protocol_addr: addr,
        target_hardware_addr: ethernet::UNSPECIFIED,
        target_protocol_addr: addr,
    }
    .frame(sender_mac, ethernet::BROADCAST)
}

/// An IGMPv3 general query from 0.0.0.0 (a querier with no address), as if
/// it came from the wire, addressed to the all-hosts group (ipmp0's own
/// frames reach the kernel only if it accepts the destination; all-hosts
/// multicast always is). Injected into the group interface, it makes the
/// kernel re-send every membership report, which then leaves through the
/// current nominee.
pub fn igmp_general_query(src_mac: Mac) -> Vec<u8> {
    let query = igmp::Repr {
        max_resp_code: IGMP_QUERY_MAX_RESP_DECISECONDS,
        group: Ipv4Addr::UNSPECIFIED,
        qrv: IGMP_QUERY_QRV,
        qqic: IGMP_QUERY_QQIC,
    };
    let ip = ipv4::Repr {
        src_addr: Ipv4Addr::UNSPECIFIED,
        dst_addr: ipv4::ALL_HOSTS,
        protocol: ipv4::protocol::IGMP,
        payload_len: query.buffer_len(),
        ttl: IGMP_QUERY_TTL,
        dscp_ecn: IGMP_QUERY_DSCP_ECN,
        dont_frag: false,
        // Queries carry Router Alert (RFC 2236, 3376).
        router_alert: true,
    };
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: ethernet::ipv4_multicast(ipv4::ALL_HOSTS),
        ethertype: ethertype::IPV4,
    };
    ip.frame(eth, |p| query.emit(&mut igmp::Packet::new_unchecked(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::frame::{src_mac, BROADCAST_MAC, ETH_HLEN};
    use crate::wire::checksum;

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
        assert_eq!(crate::datapath::frame::dst_mac(&f), BROADCAST_MAC);
        assert_eq!(src_mac(&f), mac);
    }

    #[test]
    fn igmp_query_checksums_verify() {
        let f = igmp_general_query([2, 0, 0, 0, 0, 1]);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        assert_eq!(ip.protocol(), etherparse::IpNumber::IGMP);
        assert_eq!(ip.destination(), ipv4::ALL_HOSTS.octets());
        let hl = usize::from(ip.ihl()) * 4;
        let total = usize::from(ip.total_len());
        assert!(checksum::verify(&f[ETH_HLEN..ETH_HLEN + hl]));
        assert!(checksum::verify(&f[ETH_HLEN + hl..ETH_HLEN + total]));
    }

    #[test]
    fn igmp_query_is_the_kernels_but_for_df_and_timers() {
        // A Linux bridge querier's query, with our source MAC, no DF, our
        // max response time and interval code: then the same bytes.
        let mut k = crate::wire::from_hex(crate::wire::KERNEL_IGMP_QUERY);
        let ours = igmp_general_query(src_mac(&k));
        let mut ip = ipv4::Packet::new_unchecked(&mut k[ETH_HLEN..]);
        ip.set_flags_and_offset(0);
        ip.fill_checksum();
        let mut q = igmp::Packet::new_unchecked(ip.payload_mut());
        q.set_max_resp_code(IGMP_QUERY_MAX_RESP_DECISECONDS);
        q.set_qqic(IGMP_QUERY_QQIC);
        q.fill_checksum();
        assert_eq!(ours[..k.len()], k[..]);
    }
}
