//! IPv6 probe frames: ICMPv6 echo from a test address, and the answer to a
//! ping6 of one. Pure builders and a validating parser, as
//! [`super::frames`] for IPv4.

use crate::datapath::frame::Mac;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{icmpv6, ipv6ext};
use std::net::Ipv6Addr;

/// Probes are link-local: they must not be routed past the first hop
/// (in.mpathd sends its IPv6 probes with hop limit 1 too).
pub const PROBE_HOP_LIMIT: u8 = 1;
/// The hop limit of our answers to pings, Linux's default.
const ECHO_ANSWER_HOP_LIMIT: u8 = 64;

/// An ICMPv6 echo request carrying `payload`, from `src` to `dst`.
#[allow(clippy::too_many_arguments)]
pub fn echo6_request(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq_no: u16,
    payload: &[u8],
) -> Vec<u8> {
    echo6(
        src_mac,
        dst_mac,
        src,
        dst,
        PROBE_HOP_LIMIT,
        icmpv6::Repr::EchoRequest {
            ident,
            seq_no,
            data: payload,
        },
    )
}

fn echo6(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    icmp: icmpv6::Repr,
) -> Vec<u8> {
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next_header::ICMPV6,
        payload_len: icmp.buffer_len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: ethertype::IPV6,
    };
    ip.frame(eth, |p| {
        icmp.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(p))
    })
}

/// An ICMPv6 echo message in an untagged Ethernet/IPv6 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo6<'a> {
    pub eth_src: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub icmp: icmpv6::Repr<'a>,
}

/// The layers of an ICMPv6 echo message (extension headers walked, bounded),
/// or None when any does not parse (truncated, a fragment, bad checksum,
/// not echo).
pub fn parse_echo6(f: &[u8]) -> Option<Echo6<'_>> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    if eth.ethertype() != ethertype::IPV6 {
        return None;
    }
    let payload = ethernet::Frame::new_unchecked(f).payload();
    let ip = ipv6::Packet::new_checked(payload).ok()?;
    let ipr = ipv6::Repr::parse(&ip).ok()?;
    let up = ipv6ext::walk(ipr.next_header, ip.payload()).ok()?;
    if up.next_header != next_header::ICMPV6 || up.fragment.is_some_and(|f| !f.is_atomic()) {
        return None;
    }
    let msg = icmpv6::Packet::new_checked(&ip.payload()[up.offset..]).ok()?;
    let icmp = icmpv6::Repr::parse(&ipr.src_addr, &ipr.dst_addr, &msg).ok()?;
    Some(Echo6 {
        eth_src: eth.src_addr(),
        src: ipr.src_addr,
        dst: ipr.dst_addr,
        icmp,
    })
}

/// The answer to an echo request for `test_addr` (the daemon holds the
/// address, not the kernel): None for anything else.
pub fn echo6_reply_to(req: &[u8], my_mac: Mac, test_addr: Ipv6Addr) -> Option<Vec<u8>> {
    let e = parse_echo6(req)?;
    let icmpv6::Repr::EchoRequest { ident, seq_no, data } = e.icmp else {
        return None;
    };
    if e.dst != test_addr || e.src.is_unspecified() || e.src.is_multicast() {
        return None;
    }
    let reply = icmpv6::Repr::EchoReply { ident, seq_no, data };
    Some(echo6(
        my_mac,
        e.eth_src,
        test_addr,
        e.src,
        ECHO_ANSWER_HOP_LIMIT,
        reply,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_PING6, KERNEL_PONG6};

    #[test]
    fn answers_a_kernel_ping6_as_the_kernel_does_but_for_the_flow_label() {
        let req = from_hex(KERNEL_PING6);
        let me: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mac = [2, 0, 0, 0, 0, 0x0b];
        let mut ours = echo6_reply_to(&req, mac, me).unwrap();
        let kernel = from_hex(KERNEL_PONG6);
        // Linux labels its flows; we send label 0.
        let label = ethernet::HEADER_LEN + ipv6::field::VER_TC_FLOW.start;
        ours[label..label + 4].copy_from_slice(&kernel[label..label + 4]);
        assert_eq!(ours, kernel);
        assert_eq!(echo6_reply_to(&req, mac, "2001:db8::3".parse().unwrap()), None);
        assert_eq!(
            echo6_reply_to(&kernel, mac, "2001:db8::1".parse().unwrap()),
            None,
            "a reply"
        );
        for n in 0..req.len() {
            assert_eq!(echo6_reply_to(&req[..n], mac, me), None);
        }
    }

    #[test]
    fn probes_parse_back() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        let f = echo6_request([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], a, b, 0x4242, 7, &[9; 20]);
        let e = parse_echo6(&f).unwrap();
        assert_eq!((e.src, e.dst, e.eth_src), (a, b, [2, 0, 0, 0, 0, 1]));
        assert_eq!(
            e.icmp,
            icmpv6::Repr::EchoRequest {
                ident: 0x4242,
                seq_no: 7,
                data: &[9; 20]
            }
        );
        let ip = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(ip.hop_limit(), PROBE_HOP_LIMIT);
    }
}
