//! IPv6 probe frames: ICMPv6 echo from a test address, and the answer to a
//! ping6 of one. Pure builders and a validating parser, as
//! [`super::frames`] for IPv4.

use super::frames::{EchoReply, ProbeInput, PROBE_PAYLOAD_LEN};
use crate::datapath::frame::Mac;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv6::{self, next_header};
use crate::wire::ndisc::{self, na_flags};
use crate::wire::{icmpv6, ipv6ext, mld};
use std::net::{IpAddr, Ipv6Addr};

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

/// An ICMPv6 echo reply carrying a probe payload, or None.
pub fn parse_echo6_reply(f: &[u8]) -> Option<EchoReply> {
    let e = parse_echo6(f)?;
    let icmpv6::Repr::EchoReply { ident, seq_no, data } = e.icmp else {
        return None;
    };
    Some(EchoReply {
        eth_src: e.eth_src,
        src: IpAddr::V6(e.src),
        dst: IpAddr::V6(e.dst),
        id: ident,
        seq: seq_no,
        payload: data.get(..PROBE_PAYLOAD_LEN)?.try_into().ok()?,
    })
}

/// A neighbour solicitation for `target` from `src` on the member with MAC
/// `src_mac`. From `::` it is a DAD probe (RFC 4862 5.4.2: no source
/// link-layer option, to the solicited-node group); otherwise it carries
/// the member's MAC and goes to `dst_mac` when the target's MAC is known
/// (unicast, as Linux's reachability probes), else to the target's
/// solicited-node group.
pub fn neighbor_solicit(src_mac: Mac, src: Ipv6Addr, target: Ipv6Addr, dst_mac: Option<Mac>) -> Vec<u8> {
    let group = ipv6::solicited_node(target);
    let (dst, dst_mac) = match dst_mac {
        Some(m) if !src.is_unspecified() => (target, m),
        _ => (group, ipv6::multicast_mac(group)),
    };
    ndisc::Repr::NeighborSolicit {
        target,
        lladdr: (!src.is_unspecified()).then_some(src_mac),
    }
    .frame(src_mac, dst_mac, src, dst)
}

/// The answer to a neighbour solicitation for the test address `addr`,
/// from `to` (`to_mac`): Solicited=1, Override=1, the member's MAC as
/// target link-layer address.
pub fn neighbor_advert(my_mac: Mac, addr: Ipv6Addr, to: Ipv6Addr, to_mac: Mac) -> Vec<u8> {
    ndisc::Repr::NeighborAdvert {
        flags: na_flags::SOLICITED | na_flags::OVERRIDE,
        target: addr,
        lladdr: Some(my_mac),
    }
    .frame(my_mac, to_mac, addr, to)
}

/// An MLDv2 report from `src` (`::` while the test address is tentative,
/// RFC 3590) that the member listens to `group` (a test address's
/// solicited-node group), so snooping switches deliver its NS to the
/// member. `change`: a state-change report (on joining), else the current
/// state (the answer to a query).
pub fn mld_report(src_mac: Mac, src: Ipv6Addr, group: Ipv6Addr, change: bool) -> Vec<u8> {
    let kind = if change {
        mld::record_type::CHANGE_TO_EXCLUDE
    } else {
        mld::record_type::MODE_IS_EXCLUDE
    };
    mld_record(src_mac, src, group, kind)
}

/// An MLDv2 report that the member no longer listens to `group` (an old
/// test address's solicited-node group, after a MAC change): a change to
/// INCLUDE with no sources (RFC 3810 6.1).
pub fn mld_leave(src_mac: Mac, src: Ipv6Addr, group: Ipv6Addr) -> Vec<u8> {
    mld_record(src_mac, src, group, mld::record_type::CHANGE_TO_INCLUDE)
}

/// An MLDv2 report of one source-less record of type `kind` for `group`.
fn mld_record(src_mac: Mac, src: Ipv6Addr, group: Ipv6Addr, kind: u8) -> Vec<u8> {
    let mut record = [0u8; mld::RECORD_HEADER_LEN];
    record[mld::field::RECORD_TYPE] = kind;
    record[mld::field::RECORD_MCAST_ADDR].copy_from_slice(&group.octets());
    let report = mld::Repr::Report {
        nr_records: 1,
        records: &record,
    };
    report.frame(src_mac, src, ipv6::ALL_MLDV2_ROUTERS)
}

/// The group an MLD query in `f` asks about (`::` for a general query), if
/// `f` is one: link-local source, hop limit 1 (RFC 3810 5.1.14), checksum
/// verified.
pub fn parse_mld_query(f: &[u8]) -> Option<Ipv6Addr> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    if eth.ethertype() != ethertype::IPV6 {
        return None;
    }
    let ip = ipv6::Packet::new_checked(eth.payload()).ok()?;
    let ipr = ipv6::Repr::parse(&ip).ok()?;
    if ipr.hop_limit != mld::HOP_LIMIT || !ipv6::is_link_local(&ipr.src_addr) {
        return None;
    }
    let up = ipv6ext::walk(ipr.next_header, ip.payload()).ok()?;
    if up.next_header != next_header::ICMPV6 || up.fragment.is_some() {
        return None;
    }
    let msg = icmpv6::Packet::new_checked(&ip.payload()[up.offset..]).ok()?;
    match mld::Repr::parse(&ipr.src_addr, &ipr.dst_addr, &msg).ok()? {
        mld::Repr::Query { mcast_addr, .. } => Some(mcast_addr),
        mld::Repr::Report { .. } => None,
    }
}

/// An NDP message in an untagged Ethernet/IPv6 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nd {
    pub eth_src: Mac,
    pub eth_dst: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub repr: ndisc::Repr,
}

/// The NS or NA in `f`, or None when it is none, does not parse, or has
/// crossed a router (hop limit below 255, RFC 4861 7.1).
pub fn parse_nd(f: &[u8]) -> Option<Nd> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    if eth.ethertype() != ethertype::IPV6 {
        return None;
    }
    let ip = ipv6::Packet::new_checked(eth.payload()).ok()?;
    let ipr = ipv6::Repr::parse(&ip).ok()?;
    if ipr.next_header != next_header::ICMPV6 || ipr.hop_limit != ipv6::NDP_HOP_LIMIT {
        return None;
    }
    let msg = icmpv6::Packet::new_checked(ip.payload()).ok()?;
    let repr = ndisc::Repr::parse(&ipr.src_addr, &ipr.dst_addr, &msg).ok()?;
    matches!(
        repr,
        ndisc::Repr::NeighborSolicit { .. } | ndisc::Repr::NeighborAdvert { .. }
    )
    .then_some(Nd {
        eth_src: eth.src_addr(),
        eth_dst: eth.dst_addr(),
        src: ipr.src_addr,
        dst: ipr.dst_addr,
        repr,
    })
}

/// What an NS or NA received on the member with MAC `mac` and IPv6 test
/// address `test6` asks of the control side.
pub fn nd_input(nd: &Nd, mac: Mac, test6: Option<Ipv6Addr>) -> ProbeInput {
    if nd.eth_src == mac {
        return ProbeInput::Ignored; // our own, looped back
    }
    match nd.repr {
        ndisc::Repr::NeighborSolicit { target, lladdr } if Some(target) == test6 => {
            if nd.src.is_unspecified() {
                // Another host's DAD probe for our address: a duplicate
                // while ours is tentative, else defended (RFC 4861 7.2.4:
                // Solicited=0, to all nodes).
                let defence = ndisc::Repr::NeighborAdvert {
                    flags: na_flags::OVERRIDE,
                    target,
                    lladdr: Some(mac),
                }
                .frame(mac, ipv6::multicast_mac(ipv6::ALL_NODES), target, ipv6::ALL_NODES);
                return ProbeInput::Duplicate {
                    mac: nd.eth_src,
                    dad_probe: true,
                    defence,
                };
            }
            if nd.src.is_multicast() {
                return ProbeInput::Ignored;
            }
            ProbeInput::AnswerNs(neighbor_advert(mac, target, nd.src, lladdr.unwrap_or(nd.eth_src)))
        }
        ndisc::Repr::NeighborAdvert { target, lladdr, .. } if Some(target) == test6 => {
            ProbeInput::Duplicate {
                mac: lladdr.unwrap_or(nd.eth_src),
                dad_probe: false,
                defence: Vec::new(),
            }
        }
        // A target's answer to our solicitation: solicited, sent from the
        // address it is about, to this member. Its link-layer address is
        // the option, else (answers to a unicast NS carry none: Linux
        // adds it only for multicast ones) the frame's source.
        ndisc::Repr::NeighborAdvert {
            flags,
            target,
            lladdr,
        } if flags & na_flags::SOLICITED != 0 && nd.src == target && nd.eth_dst == mac => {
            ProbeInput::ArpReply {
                from: IpAddr::V6(target),
                mac: lladdr.unwrap_or(nd.eth_src),
            }
        }
        _ => ProbeInput::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_PING6, KERNEL_PONG6};

    #[test]
    fn a_targets_answer_to_a_unicast_ns_counts_without_a_link_layer_option() {
        let me: Mac = [2, 0, 0, 0, 0, 1];
        let router: Mac = [2, 0, 0, 0, 0, 2];
        let (rl, src) = (ipv6::link_local_from_mac(router), ipv6::link_local_from_mac(me));
        // Linux answers a unicast NS without the target link-layer option.
        let bare = ndisc::Repr::NeighborAdvert {
            flags: na_flags::SOLICITED | na_flags::ROUTER,
            target: rl,
            lladdr: None,
        }
        .frame(router, me, rl, src);
        let reply = ProbeInput::ArpReply {
            from: IpAddr::V6(rl),
            mac: router,
        };
        assert_eq!(nd_input(&parse_nd(&bare).unwrap(), me, None), reply);
        // Not solicited, or to another MAC: not an answer.
        let unsolicited = ndisc::Repr::NeighborAdvert {
            flags: na_flags::OVERRIDE,
            target: rl,
            lladdr: None,
        }
        .frame(router, me, rl, src);
        assert_eq!(
            nd_input(&parse_nd(&unsolicited).unwrap(), me, None),
            ProbeInput::Ignored
        );
        let elsewhere = ndisc::Repr::NeighborAdvert {
            flags: na_flags::SOLICITED,
            target: rl,
            lladdr: None,
        }
        .frame(router, [2, 0, 0, 0, 0, 9], rl, src);
        assert_eq!(
            nd_input(&parse_nd(&elsewhere).unwrap(), me, None),
            ProbeInput::Ignored
        );
    }

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

    #[test]
    fn ns_for_the_test_address_is_answered_and_claims_are_duplicates() {
        use crate::detect::frames::{probe_input, ProbeInput, ProbeKey, PROBE_KEY_LEN};
        let me: Mac = [2, 0, 0, 0, 0, 1];
        let router: Mac = [2, 0, 0, 0, 0, 2];
        let ta = ipv6::link_local_from_mac(me);
        let rl = ipv6::link_local_from_mac(router);
        let key = ProbeKey::new([1; PROBE_KEY_LEN]);
        let input = |f: &[u8]| probe_input(f, 0, me, None, Some(ta), 7, &key);
        // The router resolves our test address: NA S=1 O=1 with our MAC,
        // to the router's link-layer address.
        let ns = neighbor_solicit(router, rl, ta, None);
        let ProbeInput::AnswerNs(na) = input(&ns) else {
            panic!("not answered");
        };
        let nd = parse_nd(&na).unwrap();
        assert_eq!((nd.eth_src, nd.eth_dst, nd.src, nd.dst), (me, router, ta, rl));
        assert_eq!(
            nd.repr,
            ndisc::Repr::NeighborAdvert {
                flags: na_flags::SOLICITED | na_flags::OVERRIDE,
                target: ta,
                lladdr: Some(me)
            }
        );
        // Another host's DAD probe, or its NA, for our address: a duplicate.
        let dad = neighbor_solicit(router, Ipv6Addr::UNSPECIFIED, ta, None);
        let ProbeInput::Duplicate {
            mac,
            dad_probe: true,
            defence,
        } = input(&dad)
        else {
            panic!("not a duplicate");
        };
        assert_eq!(mac, router);
        // The defence of an assigned address: NA, Solicited=0, Override=1, to all nodes.
        let d = parse_nd(&defence).unwrap();
        assert_eq!((d.eth_src, d.src, d.dst), (me, ta, ipv6::ALL_NODES));
        assert_eq!(
            d.repr,
            ndisc::Repr::NeighborAdvert {
                flags: na_flags::OVERRIDE,
                target: ta,
                lladdr: Some(me)
            }
        );
        // (A defending host's NA: to all nodes, Solicited=0.)
        let claim = crate::datapath::ndp::unsolicited_na(router, ta, false);
        assert_eq!(
            input(&claim),
            ProbeInput::Duplicate {
                mac: router,
                dad_probe: false,
                defence: Vec::new()
            }
        );
        // A "solicited" NA to a group is invalid (RFC 4861 7.1.2): nothing.
        let bogus = neighbor_advert(router, ta, ipv6::ALL_NODES, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(input(&bogus), ProbeInput::Ignored);
        // So is a "DAD probe" that is not to the solicited-node group.
        let bogus = neighbor_solicit(router, Ipv6Addr::UNSPECIFIED, ta, None);
        let mut bogus = bogus;
        let at = crate::datapath::frame::ETH_HLEN + ipv6::field::DST_ADDR.start;
        bogus[at..at + ipv6::ADDRESS_LEN].copy_from_slice(&ipv6::ALL_NODES.octets());
        assert_eq!(
            input(&bogus),
            ProbeInput::Ignored,
            "wrong destination (and checksum)"
        );
        // Our own DAD probe, looped back: nothing.
        let ours = neighbor_solicit(me, Ipv6Addr::UNSPECIFIED, ta, None);
        assert_eq!(input(&ours), ProbeInput::Ignored);
        // A DAD probe has no source link-layer option and goes to the
        // solicited-node group; a resolution has one.
        let d = parse_nd(&ours).unwrap();
        assert_eq!(d.dst, ipv6::solicited_node(ta));
        assert_eq!(d.eth_dst, ipv6::multicast_mac(ipv6::solicited_node(ta)));
        assert_eq!(
            d.repr,
            ndisc::Repr::NeighborSolicit {
                target: ta,
                lladdr: None
            }
        );
        // A target's solicited NA to us: its MAC, for the prober.
        let answer = neighbor_advert(router, rl, ta, me);
        assert_eq!(
            input(&answer),
            ProbeInput::ArpReply {
                from: IpAddr::V6(rl),
                mac: router
            }
        );
        // Not solicited, or about another address than its source: ignored.
        let mut unsolicited = crate::datapath::ndp::unsolicited_na(router, rl, true);
        ethernet::Frame::new_unchecked(&mut unsolicited[..]).set_dst_addr(me);
        assert_eq!(input(&unsolicited), ProbeInput::Ignored);
        let proxy = neighbor_advert(router, "fe80::77".parse().unwrap(), ta, me);
        let mut proxy = proxy;
        // Source rewritten to the router's address (checksum refreshed).
        let at = ethernet::HEADER_LEN + ipv6::field::SRC_ADDR.start;
        proxy[at..at + 16].copy_from_slice(&rl.octets());
        let mut ip = ipv6::Packet::new_unchecked(&mut proxy[ethernet::HEADER_LEN..]);
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        icmpv6::Packet::new_unchecked(ip.payload_mut()).fill_checksum(&s, &d);
        assert_eq!(input(&proxy), ProbeInput::Ignored);
        // A hop limit below 255: crossed a router, never NDP.
        let mut routed = ns.clone();
        routed[ethernet::HEADER_LEN + ipv6::field::HOP_LIMIT] = 254;
        assert_eq!(parse_nd(&routed), None);
        for n in 0..ns.len() {
            let _ = input(&ns[..n]);
        }
    }

    #[test]
    fn a_unicast_ns_goes_to_the_known_mac_never_from_unspecified() {
        let me: Mac = [2, 0, 0, 0, 0, 1];
        let router: Mac = [2, 0, 0, 0, 0, 2];
        let src: Ipv6Addr = "2001:db8::200".parse().unwrap();
        let target: Ipv6Addr = "fe80::1".parse().unwrap();
        let nd = parse_nd(&neighbor_solicit(me, src, target, Some(router))).unwrap();
        assert_eq!((nd.eth_dst, nd.dst), (router, target));
        assert_eq!(
            nd.repr,
            ndisc::Repr::NeighborSolicit {
                target,
                lladdr: Some(me)
            }
        );
        let nd = parse_nd(&neighbor_solicit(me, src, target, None)).unwrap();
        assert_eq!(nd.dst, ipv6::solicited_node(target));
        // From `::` it is always the DAD form, whatever MAC is known.
        let nd = parse_nd(&neighbor_solicit(me, Ipv6Addr::UNSPECIFIED, target, Some(router))).unwrap();
        assert_eq!(nd.dst, ipv6::solicited_node(target));
        assert_eq!(nd.repr, ndisc::Repr::NeighborSolicit { target, lladdr: None });
    }

    #[test]
    fn echo6_replies_open_only_for_their_probe() {
        use crate::detect::frames::{probe_input, ProbeId, ProbeInput, ProbeKey, PROBE_KEY_LEN};
        let me: Mac = [2, 0, 0, 0, 0, 1];
        let router: Mac = [2, 0, 0, 0, 0, 2];
        let ta = ipv6::link_local_from_mac(me);
        let rl = ipv6::link_local_from_mac(router);
        let key = ProbeKey::new([1; PROBE_KEY_LEN]);
        let id = ProbeId {
            counter: 9,
            slot: 2,
            id: 7,
            seq: 3,
            test_addr: IpAddr::V6(ta),
            target: IpAddr::V6(rl),
        };
        let reply = |src: Ipv6Addr, payload: &[u8]| {
            echo6(
                router,
                me,
                src,
                ta,
                64,
                icmpv6::Repr::EchoReply {
                    ident: 7,
                    seq_no: 3,
                    data: payload,
                },
            )
        };
        let good = reply(rl, &key.seal(&id));
        let input = |f: &[u8], slot| probe_input(f, slot, me, None, Some(ta), 7, &key);
        assert_eq!(
            input(&good, 2),
            ProbeInput::EchoReply {
                from: IpAddr::V6(rl),
                eth_src: router,
                seq: 3,
                counter: 9
            }
        );
        assert_eq!(input(&good, 1), ProbeInput::NotProbe, "another member's");
        let other = reply("fe80::66".parse().unwrap(), &key.seal(&id));
        assert_eq!(input(&other, 2), ProbeInput::NotProbe, "from another address");
        assert_eq!(input(&reply(rl, &[0; 20]), 2), ProbeInput::NotProbe, "forged tag");
        // The IPv4 tag of the same fields does not open an IPv6 reply.
        let v4 = ProbeId {
            test_addr: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 201)),
            target: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
            ..id
        };
        assert_eq!(input(&reply(rl, &key.seal(&v4)), 2), ProbeInput::NotProbe);
        // A discovery answer: the echo went to ff02::1.
        let disc = ProbeId {
            target: IpAddr::V6(ipv6::ALL_NODES),
            ..id
        };
        assert!(matches!(
            input(&reply("fe80::5".parse().unwrap(), &key.seal(&disc)), 2),
            ProbeInput::EchoReply { .. }
        ));
        // A ping6 of the test address is answered.
        let ping = echo6_request(router, me, rl, ta, 1, 1, &[5; 8]);
        assert!(matches!(input(&ping, 2), ProbeInput::AnswerEcho(_)));
    }

    #[test]
    fn mld_queries_are_answered_for_the_test_address_group() {
        use crate::detect::frames::{probe_input, ProbeInput, ProbeKey, PROBE_KEY_LEN};
        let me: Mac = [2, 0, 0, 0, 0, 1];
        let router: Mac = [2, 0, 0, 0, 0, 2];
        let ta = ipv6::link_local_from_mac(me);
        let group = ipv6::solicited_node(ta);
        let key = ProbeKey::new([1; PROBE_KEY_LEN]);
        let query = crate::datapath::ndp::mld_general_query(router, ipv6::link_local_from_mac(router));
        assert_eq!(parse_mld_query(&query), Some(Ipv6Addr::UNSPECIFIED));
        let ProbeInput::AnswerMld(report) = probe_input(&query, 0, me, None, Some(ta), 7, &key) else {
            panic!("not answered");
        };
        // The report: from the test address to ff02::16, hop limit 1, one
        // record for the solicited-node group, checksum valid.
        let ip = ipv6::Packet::new_checked(&report[ethernet::HEADER_LEN..]).unwrap();
        let ipr = ipv6::Repr::parse(&ip).unwrap();
        assert_eq!(
            (ipr.src_addr, ipr.dst_addr, ipr.hop_limit),
            (ta, ipv6::ALL_MLDV2_ROUTERS, 1)
        );
        let up = ipv6ext::walk(ipr.next_header, ip.payload()).unwrap();
        let msg = icmpv6::Packet::new_checked(&ip.payload()[up.offset..]).unwrap();
        let mld::Repr::Report { nr_records, records } =
            mld::Repr::parse(&ta, &ipv6::ALL_MLDV2_ROUTERS, &msg).unwrap()
        else {
            panic!("not a report");
        };
        assert_eq!(nr_records, 1);
        let r: Vec<_> = mld::records(records, nr_records).collect();
        assert_eq!(r.len(), 1);
        let r = r[0].unwrap();
        assert_eq!(
            (r.record_type, r.mcast_addr),
            (mld::record_type::MODE_IS_EXCLUDE, group)
        );
        // Without an IPv6 test address nothing is answered; a report is no query.
        assert_eq!(
            probe_input(&query, 0, me, None, None, 7, &key),
            ProbeInput::Ignored
        );
        assert_eq!(parse_mld_query(&report), None);
        let join = mld_report(me, Ipv6Addr::UNSPECIFIED, group, true);
        assert_eq!(parse_mld_query(&join), None);
        // Leaving (after a MAC change): a change to INCLUDE with no sources.
        let leave = mld_leave(me, Ipv6Addr::UNSPECIFIED, group);
        let ip = ipv6::Packet::new_checked(&leave[ethernet::HEADER_LEN..]).unwrap();
        let ipr = ipv6::Repr::parse(&ip).unwrap();
        let up = ipv6ext::walk(ipr.next_header, ip.payload()).unwrap();
        let msg = icmpv6::Packet::new_checked(&ip.payload()[up.offset..]).unwrap();
        let mld::Repr::Report { nr_records, records } =
            mld::Repr::parse(&ipr.src_addr, &ipr.dst_addr, &msg).unwrap()
        else {
            panic!("not a report");
        };
        let r: Vec<_> = mld::records(records, nr_records).collect();
        let r = r[0].unwrap();
        assert_eq!(
            (r.record_type, r.mcast_addr, r.sources.len()),
            (mld::record_type::CHANGE_TO_INCLUDE, group, 0)
        );
        for n in 0..query.len() {
            let _ = probe_input(&query[..n], 0, me, None, Some(ta), 7, &key);
        }
    }
}
