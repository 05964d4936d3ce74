//! IPv6's counterparts of [`super::arp`]: the unsolicited neighbour
//! advertisement that announces an address's new member, the MLDv2 general
//! query that makes the kernel re-report its groups, and the rewrite of the
//! link-layer address options of outbound NDP messages to a member's MAC.
//! Built from the formats of [`crate::wire`]; the rewrite is pure and
//! per-frame.

use super::frame::{l3_of, Mac, Malformed, ETH_HLEN, ETH_P_IPV6};
use crate::wire::ethernet;
use crate::wire::ipv6::{self, next_header};
use crate::wire::ndisc::{self, na_flags};
use crate::wire::{checksum, icmpv6, ipv6ext, mld};
use std::net::Ipv6Addr;

/// Max response delay of the injected query in milliseconds: the kernel
/// answers within 1 s, as for the IGMP query.
pub const MLD_QUERY_MAX_RESP_MS: u16 = 1000;
/// The querier's robustness variable: RFC 3810's default.
const MLD_QUERY_QRV: u8 = 2;
/// The querier's query interval code, in seconds (exact below 128).
const MLD_QUERY_QQIC: u8 = 10;

/// An unsolicited neighbour advertisement for `addr` from the member with
/// MAC `member_mac`: to all nodes, Solicited=0, Override=1 (so neighbours
/// replace the link-layer address they hold), the member's MAC as target
/// link-layer address, hop limit 255. IPv6's gratuitous ARP. `router`: the
/// group interface forwards, so the Router flag is set (as the kernel sets
/// it from `forwarding`): with R=0 neighbours would drop it as their router.
pub fn unsolicited_na(member_mac: Mac, addr: Ipv6Addr, router: bool) -> Vec<u8> {
    let r = if router { na_flags::ROUTER } else { 0 };
    ndisc::Repr::NeighborAdvert {
        flags: na_flags::OVERRIDE | r,
        target: addr,
        lladdr: Some(member_mac),
    }
    .frame(
        member_mac,
        ipv6::multicast_mac(ipv6::ALL_NODES),
        addr,
        ipv6::ALL_NODES,
    )
}

/// An MLDv2 general query from link-local `src` (Linux ignores queries from
/// other sources) to all nodes, hop limit 1, with the Hop-by-Hop Router
/// Alert option, as if it came from the wire. Injected into the group
/// interface, it makes the kernel re-send every report, which then leaves
/// through the current nominee; [`super::arp::igmp_general_query`] for IPv6.
pub fn mld_general_query(src_mac: Mac, src: Ipv6Addr) -> Vec<u8> {
    let query = mld::Repr::Query {
        max_resp_code: MLD_QUERY_MAX_RESP_MS,
        mcast_addr: Ipv6Addr::UNSPECIFIED,
        s_flag: false,
        qrv: MLD_QUERY_QRV,
        qqic: MLD_QUERY_QQIC,
        sources: &[],
    };
    query.frame(src_mac, src, ipv6::ALL_NODES)
}

/// Rewrites the source and target link-layer address options of an NDP
/// message (RS, RA, NS, NA, Redirect; untagged or behind one VLAN tag) to
/// `mac`, and updates the ICMPv6 checksum incrementally (RFC 1624). Returns
/// how many options were rewritten (0 for a DAD probe, which has none).
/// Anything that is not a whole NDP message is [`Malformed`], unchanged.
pub fn rewrite_ndp_lladdr(frame: &mut [u8], mac: Mac) -> Result<usize, Malformed> {
    rewrite_lladdr_options(frame, None, mac)
}

/// [`rewrite_ndp_lladdr`] for what the group interface sends: only the
/// options that carry the group's own MAC `own` become `mac`. Another MAC
/// in an option is someone else's (a Redirect's target link-layer address
/// names the better next hop, RFC 4861 4.6.1; a proxy's NA names the
/// proxied host) and stays as it is.
pub fn rewrite_own_ndp_lladdr(frame: &mut [u8], own: Mac, mac: Mac) -> Result<usize, Malformed> {
    rewrite_lladdr_options(frame, Some(own), mac)
}

fn rewrite_lladdr_options(frame: &mut [u8], only: Option<Mac>, mac: Mac) -> Result<usize, Malformed> {
    if frame.len() < ETH_HLEN {
        return Err(Malformed);
    }
    let (et, l3) = l3_of(frame);
    if et != ETH_P_IPV6 {
        return Err(Malformed);
    }
    // Where the message is, and where its link-layer addresses are: read
    // first (bounded by the options' own bound), written after.
    let mut at = [0usize; ndisc::MAX_OPTIONS];
    let mut n = 0;
    let msg_at = {
        let ip = ipv6::Packet::new_checked(&frame[l3..]).map_err(|_| Malformed)?;
        if ip.version() != ipv6::VERSION {
            return Err(Malformed);
        }
        let up = ipv6ext::walk(ip.next_header(), ip.payload()).map_err(|_| Malformed)?;
        if up.next_header != next_header::ICMPV6 || up.fragment.is_some_and(|f| !f.is_atomic()) {
            return Err(Malformed);
        }
        let msg = &ip.payload()[up.offset..];
        if !msg.first().is_some_and(|&t| icmpv6::is_ndp(t)) || msg.len() < icmpv6::HEADER_LEN {
            return Err(Malformed);
        }
        for o in ndisc::options(msg).map_err(|_| Malformed)? {
            let o = o.map_err(|_| Malformed)?;
            let lladdr = o.bytes.get(ndisc::field::OPT_LLADDR);
            if matches!(
                o.kind,
                ndisc::option::SOURCE_LLADDR | ndisc::option::TARGET_LLADDR
            ) && o.bytes.len() == ndisc::LLADDR_OPTION_LEN
                && only.is_none_or(|own| lladdr == Some(&own[..]))
            {
                at[n] = o.at + ndisc::field::OPT_LLADDR.start;
                n += 1;
            }
        }
        l3 + ipv6::HEADER_LEN + up.offset
    };
    let msg = &mut frame[msg_at..];
    let mut check = crate::wire::read_u16(msg, icmpv6::field::CHECKSUM);
    for &a in &at[..n] {
        let old: Mac = msg[a..a + ethernet::ADDRESS_LEN]
            .try_into()
            .map_err(|_| Malformed)?;
        // Options sit at multiples of 8 and the MAC two bytes in: the
        // replaced bytes start on a 16-bit word, as RFC 1624 needs.
        check = checksum::update(check, &old, &mac);
        msg[a..a + ethernet::ADDRESS_LEN].copy_from_slice(&mac);
    }
    icmpv6::Packet::new_unchecked(&mut *msg).set_checksum(check);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_DAD_NS, KERNEL_NA, KERNEL_NS, KERNEL_RS};

    const MEMBER: Mac = [2, 0, 0, 0, 1, 7];

    /// The IPv6 packet of an untagged frame, parsed.
    fn ip_of(f: &[u8]) -> ipv6::Packet<&[u8]> {
        ipv6::Packet::new_checked(&f[ETH_HLEN..]).unwrap()
    }

    fn ndp_of(f: &[u8]) -> ndisc::Repr {
        let ip = ip_of(f);
        let msg = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        ndisc::Repr::parse(&ip.src_addr(), &ip.dst_addr(), &msg).unwrap()
    }

    #[test]
    fn unsolicited_na_announces_the_member() {
        let a: Ipv6Addr = "2001:db8::200".parse().unwrap();
        let f = unsolicited_na(MEMBER, a, false);
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.src_addr(), MEMBER);
        assert_eq!(eth.dst_addr(), [0x33, 0x33, 0, 0, 0, 1]);
        let ip = ip_of(&f);
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
            (a, ipv6::ALL_NODES, 255)
        );
        assert_eq!(
            ndp_of(&f),
            ndisc::Repr::NeighborAdvert {
                flags: na_flags::OVERRIDE,
                target: a,
                lladdr: Some(MEMBER)
            }
        );
        // A forwarding group interface announces itself as a router.
        let r = unsolicited_na(MEMBER, a, true);
        assert!(matches!(
            ndp_of(&r),
            ndisc::Repr::NeighborAdvert { flags, .. } if flags == na_flags::OVERRIDE | na_flags::ROUTER
        ));
    }

    #[test]
    fn mld_query_is_link_local_hop_limit_one_with_router_alert() {
        let src = ipv6::link_local_from_mac(MEMBER);
        let f = mld_general_query(MEMBER, src);
        let ip = ip_of(&f);
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
            (src, ipv6::ALL_NODES, 1)
        );
        let h = ipv6ext::Header::new_checked(ip.payload(), ip.next_header()).unwrap();
        assert_eq!(
            ipv6ext::Repr::parse(&h),
            Ok(ipv6ext::Repr::HopByHop {
                next_header: next_header::ICMPV6,
                router_alert_mld: true
            })
        );
        let msg = icmpv6::Packet::new_checked(h.payload()).unwrap();
        assert_eq!(
            mld::Repr::parse(&src, &ipv6::ALL_NODES, &msg),
            Ok(mld::Repr::Query {
                max_resp_code: MLD_QUERY_MAX_RESP_MS,
                mcast_addr: Ipv6Addr::UNSPECIFIED,
                s_flag: false,
                qrv: MLD_QUERY_QRV,
                qqic: MLD_QUERY_QQIC,
                sources: &[],
            })
        );
    }

    /// The checksum a full recompute gives for the message of frame `f`.
    fn recomputed(f: &[u8]) -> u16 {
        let ip = ip_of(f);
        let mut msg = ip.payload().to_vec();
        let mut p = icmpv6::Packet::new_unchecked(&mut msg[..]);
        p.fill_checksum(&ip.src_addr(), &ip.dst_addr());
        p.checksum()
    }

    #[test]
    fn rewrites_link_layer_options_with_the_checksum_of_a_recompute() {
        for hex in [KERNEL_NS, KERNEL_NA, KERNEL_RS] {
            let mut f = from_hex(hex);
            let before = ndp_of(&f);
            assert_eq!(rewrite_ndp_lladdr(&mut f, MEMBER), Ok(1), "{before:?}");
            let ip = ip_of(&f);
            let got = icmpv6::Packet::new_checked(ip.payload()).unwrap().checksum();
            assert_eq!(got, recomputed(&f));
            let after = ndp_of(&f); // parses: the checksum verifies
            let lladdr = match after {
                ndisc::Repr::RouterSolicit { lladdr }
                | ndisc::Repr::NeighborSolicit { lladdr, .. }
                | ndisc::Repr::NeighborAdvert { lladdr, .. } => lladdr,
                r => panic!("{r:?}"),
            };
            assert_eq!(lladdr, Some(MEMBER));
        }
        // Every kind the wire module builds, with random-looking MACs.
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        for (i, r) in [
            ndisc::Repr::Redirect {
                target: src,
                dest: "2001:db8::9".parse().unwrap(),
                lladdr: Some([0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54]),
            },
            ndisc::Repr::RouterAdvert {
                hop_limit: 64,
                flags: 0,
                router_lifetime: 1800,
                reachable_time: 0,
                retrans_time: 0,
                lladdr: Some([0x02, 0xff, 0xff, 0xff, 0xff, 0xff]),
                mtu: Some(1500),
                prefix: None,
            },
        ]
        .into_iter()
        .enumerate()
        {
            let mut f = r.frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], src, ipv6::ALL_NODES);
            let mac = [0, 0, 0, 0, 0, i as u8];
            assert_eq!(rewrite_ndp_lladdr(&mut f, mac), Ok(1));
            let ip = ip_of(&f);
            let got = icmpv6::Packet::new_checked(ip.payload()).unwrap().checksum();
            assert_eq!(got, recomputed(&f), "{r:?}");
        }
    }

    #[test]
    fn dad_probes_and_non_ndp_are_left_alone() {
        let mut f = from_hex(KERNEL_DAD_NS);
        let orig = f.clone();
        assert_eq!(rewrite_ndp_lladdr(&mut f, MEMBER), Ok(0));
        assert_eq!(f, orig);
        let mut p = from_hex(crate::wire::KERNEL_PING6);
        assert_eq!(rewrite_ndp_lladdr(&mut p, MEMBER), Err(Malformed));
        let mut a = crate::datapath::arp::gratuitous_arp(MEMBER, "192.0.2.1".parse().unwrap());
        assert_eq!(rewrite_ndp_lladdr(&mut a, MEMBER), Err(Malformed));
        // Truncations: errors, never panics, never a half rewrite.
        let ns = from_hex(KERNEL_NS);
        for n in 0..ns.len() {
            let mut c = ns[..n].to_vec();
            let r = rewrite_ndp_lladdr(&mut c, MEMBER);
            assert!(r.is_err(), "len {n}: {r:?}");
            assert_eq!(c, ns[..n]);
        }
    }
}
