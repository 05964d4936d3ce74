//! The forwarding plan and the pure per-frame decisions.
//!
//! A [`Plan`] is an immutable snapshot published by the control side; the
//! data plane threads hold an `Arc` to the current one and never lock per
//! frame. [`outbound`] and [`inbound`] decide and rewrite a frame in place.

use super::buckets::{Buckets, Slot, NO_SLOT};
use super::counters::DropReason;
use super::frame::*;
use super::ndp::rewrite_own_ndp_lladdr;
use crate::detect::frames::{parse_echo_reply, ProbeKey};
use crate::wire::{ethernet, icmpv4, icmpv6, ipv4, ipv6, ipv6ext, ndisc};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How unicast IP picks a member: the configuration's enum, as is.
pub use crate::config::Outbound;

/// A member as the data plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub mac: Mac,
    /// Unicast is accepted on every present member that is not offline.
    pub accept: bool,
    /// The member's test address: its ARP and IP traffic goes to the prober.
    pub test_addr: Option<Ipv4Addr>,
    /// The member's IPv6 test address (its EUI-64 link-local, held by the
    /// daemon): its NDP and ICMPv6 traffic goes to the prober.
    pub test_addr6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub generation: u64,
    pub group_mac: Mac,
    /// Indexed by slot; `None` for members not present.
    pub ports: Vec<Option<Port>>,
    pub buckets: Buckets,
    pub nominee: Option<Slot>,
    /// (address, member) for every bound IPv4 data address.
    pub bindings: Vec<(Ipv4Addr, Slot)>,
    /// (address, member) for every bound IPv6 data address; a list of its
    /// own, so the IPv4 path compares 4-byte addresses only.
    pub bindings6: Vec<(Ipv6Addr, Slot)>,
    pub outbound: Outbound,
    pub seed: u64,
    /// Probing is on: ARP replies from targets to a member's MAC are copied
    /// to the prober.
    pub probing: bool,
    /// Every member's probe targets: only their ARP replies (neighbour
    /// advertisements) can be answers.
    pub targets: Vec<IpAddr>,
    /// The ICMP id of our probes and the key of their tags: only echo
    /// replies that carry both reach the prober.
    pub icmp_id: u16,
    pub probe_key: Option<ProbeKey>,
}

impl Plan {
    pub fn empty(group_mac: Mac, seed: u64) -> Plan {
        Plan {
            generation: 0,
            group_mac,
            ports: Vec::new(),
            buckets: Buckets::default(),
            nominee: None,
            bindings: Vec::new(),
            bindings6: Vec::new(),
            outbound: Outbound::Flow,
            seed,
            probing: false,
            targets: Vec::new(),
            icmp_id: 0,
            probe_key: None,
        }
    }

    #[inline]
    fn bound(&self, a: Ipv4Addr) -> Option<Slot> {
        self.bindings.iter().find(|(x, _)| *x == a).map(|(_, s)| *s)
    }

    #[inline]
    fn bound6(&self, a: u128) -> Option<Slot> {
        let a = Ipv6Addr::from(a);
        self.bindings6.iter().find(|(x, _)| *x == a).map(|(_, s)| *s)
    }

    #[inline]
    fn port(&self, s: Slot) -> Option<&Port> {
        self.ports.get(usize::from(s)).and_then(Option::as_ref)
    }

    #[inline]
    fn is_own_mac(&self, mac: &Mac) -> bool {
        *mac == self.group_mac || self.ports.iter().flatten().any(|p| p.mac == *mac)
    }
}

/// Where a frame received on a member goes besides (or instead of) the
/// group interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divert {
    /// Data traffic only.
    No,
    /// An ARP or ICMP echo request for the member's test address: answered
    /// by the control side under a rate limit, never passed on.
    Request { arp: bool },
    /// An echo reply to the member's test address that carries our id and a
    /// valid tag (for probe `counter`, from `from`): the prober only.
    Answer { counter: u64, from: IpAddr },
    /// An ARP reply from a probe target to the member: a copy to the
    /// prober, and on as usual.
    Tee,
    /// A probe target's neighbour advertisement to the member's IPv6 test
    /// address (the answer to our resolution): the prober only, limited
    /// with the targets' ARP replies, apart from the requests a LAN host
    /// can flood.
    Resolved,
    /// An MLD query while the member holds an IPv6 test address: a copy to
    /// the prober (which reports the test address's group), and on as
    /// usual; limited on its own, so a query flood starves nothing else.
    Query,
    /// Anything else for the test address (it lives in no stack): dropped.
    Discard,
}

/// Picks out probe traffic before the data path sees a frame: only what can
/// be an answer to our probes, or a request to answer, reaches the prober.
#[inline]
pub fn divert(plan: &Plan, slot: Slot, frame: &[u8]) -> Divert {
    let Some(port) = plan.port(slot) else {
        return Divert::No;
    };
    if frame.len() < ETH_HLEN {
        return Divert::No;
    }
    match ethertype(frame) {
        ETH_P_ARP => match parse_arp(frame) {
            Ok((ARP_OP_REQUEST, _, tpa)) if Some(tpa) == port.test_addr => Divert::Request { arp: true },
            Ok((ARP_OP_REPLY, spa, _))
                if plan.probing && dst_mac(frame) == port.mac && plan.targets.contains(&IpAddr::V4(spa)) =>
            {
                Divert::Tee
            }
            _ => Divert::No,
        },
        ETH_P_IP if frame.len() >= IPV4_AT + ipv4::MIN_HEADER_LEN => {
            let ip = ipv4::Packet::new_unchecked(&frame[IPV4_AT..]);
            if Some(ip.dst_addr()) != port.test_addr {
                return Divert::No;
            }
            let icmp_type = IPV4_AT + ip.header_len() + icmpv4::field::TYPE;
            if ip.protocol() != ipv4::protocol::ICMP || frame.len() <= icmp_type {
                return Divert::Discard;
            }
            match frame[icmp_type] {
                icmpv4::msg_type::ECHO_REQUEST => Divert::Request { arp: false },
                icmpv4::msg_type::ECHO_REPLY => {
                    let (Some(key), Some(r)) = (&plan.probe_key, parse_echo_reply(frame)) else {
                        return Divert::Discard;
                    };
                    match key.open(&r, slot, plan.icmp_id) {
                        Some(counter) => Divert::Answer { counter, from: r.src },
                        None => Divert::Discard,
                    }
                }
                _ => Divert::Discard,
            }
        }
        ETH_P_IPV6 => divert6(plan, slot, port, frame),
        _ => Divert::No,
    }
}

/// [`divert`] for IPv6: NDP about the member's IPv6 test address (NS for
/// it, to its solicited-node group or to it; NA claiming it), a probe
/// target's NA to the member, and ICMPv6 to the test address. Extension
/// headers are not walked here: our probes' answers carry none, and
/// anything else for the test address is dropped.
#[inline]
fn divert6(plan: &Plan, slot: Slot, port: &Port, frame: &[u8]) -> Divert {
    const L3: usize = ETH_HLEN;
    const ICMP_AT: usize = L3 + ipv6::HEADER_LEN;
    const ND_TARGET: std::ops::Range<usize> =
        ICMP_AT + ndisc::field::TARGET.start..ICMP_AT + ndisc::field::TARGET.end;
    if frame.len() <= ICMP_AT + icmpv6::field::TYPE {
        return Divert::No;
    }
    let ip = ipv6::Packet::new_unchecked(&frame[L3..]);
    let dst = ip.dst_addr();
    let to_test = port.test_addr6.is_some_and(|t| t == dst);
    if ip.next_header() == ipv6::next_header::HOP_BY_HOP && port.test_addr6.is_some() && dst.is_multicast() {
        // MLD queries (behind a Router Alert): the member answers for its
        // test address's solicited-node group, and the frame goes on.
        let up = ipv6ext::walk(ip.next_header(), &frame[ICMP_AT..]);
        let is_query = up.is_ok_and(|u| {
            u.next_header == ipv6::next_header::ICMPV6
                && frame.get(ICMP_AT + u.offset + icmpv6::field::TYPE) == Some(&icmpv6::msg_type::MLD_QUERY)
        });
        return if is_query { Divert::Query } else { Divert::No };
    }
    if ip.next_header() != ipv6::next_header::ICMPV6 {
        return if to_test { Divert::Discard } else { Divert::No };
    }
    let icmp_type = frame[ICMP_AT + icmpv6::field::TYPE];
    if matches!(
        icmp_type,
        icmpv6::msg_type::NEIGHBOR_SOLICIT | icmpv6::msg_type::NEIGHBOR_ADVERT
    ) && frame.len() >= ND_TARGET.end
    {
        let target = crate::wire::ipv6::address_of(&frame[ND_TARGET]);
        if to_test
            && icmp_type == icmpv6::msg_type::NEIGHBOR_ADVERT
            && port.test_addr6 != Some(target)
            && plan.targets.contains(&IpAddr::V6(target))
        {
            // A target's answer to the test address: the prober only.
            return Divert::Resolved;
        }
        if port.test_addr6 == Some(target) || to_test {
            // About the test address (NS for it, NA claiming it: DAD): the
            // prober only, as a request.
            return Divert::Request { arp: true };
        }
        if icmp_type == icmpv6::msg_type::NEIGHBOR_ADVERT
            && plan.probing
            && dst_mac(frame) == port.mac
            && plan.targets.contains(&IpAddr::V6(target))
        {
            return Divert::Tee;
        }
        return Divert::No;
    }
    if !to_test {
        return Divert::No;
    }
    match icmp_type {
        icmpv6::msg_type::ECHO_REQUEST => Divert::Request { arp: false },
        icmpv6::msg_type::ECHO_REPLY => {
            let (Some(key), Some(r)) = (&plan.probe_key, parse_echo_reply(frame)) else {
                return Divert::Discard;
            };
            match key.open(&r, slot, plan.icmp_id) {
                Some(counter) => Divert::Answer { counter, from: r.src },
                None => Divert::Discard,
            }
        }
        _ => Divert::Discard,
    }
}

/// Picks the member for a frame read from the group interface and rewrites
/// it for that member: Ethernet source (and ARP sender hardware address) set
/// to the member's MAC.
#[inline]
pub fn outbound(plan: &Plan, frame: &mut [u8]) -> Result<Slot, DropReason> {
    // The common frame (untagged unicast TCP or UDP) at fixed offsets, the
    // member it picks the one `classify` would give.
    if let Some(flow) = fast_flow(frame) {
        let slot = match flow {
            FastFlow::V4(k) => pick4(plan, &k),
            FastFlow::V6(k) => pick6(plan, &k),
        };
        let port = plan.port(slot).ok_or(DropReason::NoActiveMember)?;
        frame[ethernet::field::SOURCE].copy_from_slice(&port.mac);
        return Ok(slot);
    }
    let class = classify(frame).map_err(|_| DropReason::Malformed)?;
    let slot = match class {
        Class::Ipv4Unicast(k) => pick4(plan, &k),
        Class::Ipv6Unicast(k) => pick6(plan, &k),
        Class::Arp { sender, .. } => plan.bound(sender).or(plan.nominee).unwrap_or(NO_SLOT),
        // IPv6's ARP: from the member bound to the source, whose MAC the
        // options then carry; `::` (DAD), multicast and unbound sources
        // have no binding and leave through the nominee.
        Class::Ndp { src, .. } => plan.bound6(src).or(plan.nominee).unwrap_or(NO_SLOT),
        Class::Multicast | Class::OtherUnicast => plan.nominee.unwrap_or(NO_SLOT),
    };
    let port = plan.port(slot).ok_or(DropReason::NoActiveMember)?;
    ethernet::Frame::new_unchecked(&mut *frame).set_src_addr(port.mac);
    match class {
        Class::Arp { .. } => frame[ARP_SHA].copy_from_slice(&port.mac),
        // Neighbours learn the MAC in the options, not the Ethernet source:
        // where it is the group's, it must be the member's. Another MAC
        // there (a Redirect's better next hop) is not ours to change. A
        // message whose options do not parse leaves as it is (the
        // neighbour drops it, as it would ours).
        Class::Ndp { .. } => {
            let _ = rewrite_own_ndp_lladdr(frame, plan.group_mac, port.mac);
        }
        _ => {}
    }
    Ok(slot)
}

/// The member of a unicast IPv4 flow: its source's in bound mode (if
/// bound), else its bucket's.
#[inline(always)]
fn pick4(plan: &Plan, k: &FlowKey) -> Slot {
    let bound = match plan.outbound {
        Outbound::Bound => plan.bound(Ipv4Addr::from(k.src)),
        Outbound::Flow => None,
    };
    bound.unwrap_or_else(|| plan.buckets.lookup(flow_hash(k, plan.seed)))
}

/// [`pick4`] for IPv6.
#[inline(always)]
fn pick6(plan: &Plan, k: &FlowKey6) -> Slot {
    let bound = match plan.outbound {
        Outbound::Bound => plan.bound6(k.src),
        Outbound::Flow => None,
    };
    bound.unwrap_or_else(|| plan.buckets.lookup(flow_hash6(k, plan.seed)))
}

/// Decides whether a frame received on member `slot` goes into the group
/// interface, rewriting the member's MAC to the group's where it appears as
/// destination (Ethernet, and ARP target hardware address).
#[inline]
pub fn inbound(plan: &Plan, slot: Slot, frame: &mut [u8]) -> Result<(), DropReason> {
    if frame.len() < ETH_HLEN {
        return Err(DropReason::Malformed);
    }
    let port = match plan.port(slot) {
        Some(p) if p.accept => *p,
        _ => return Err(DropReason::Offline),
    };
    if plan.is_own_mac(&src_mac(frame)) {
        return Err(DropReason::Looped);
    }
    let dst = dst_mac(frame);
    if is_multicast_mac(&dst) {
        return nominee_only(plan, slot);
    }
    if dst != port.mac {
        // Unicast to the group's own MAC (a DHCP server answering chaddr):
        // no switch ever learns that MAC, so every member receives a
        // flooded copy; deliver the nominee's only, as for broadcast. The
        // destination is already the group's: nothing to rewrite.
        return if dst == plan.group_mac {
            nominee_only(plan, slot)
        } else {
            Err(DropReason::OtherMac)
        };
    }
    ethernet::Frame::new_unchecked(&mut *frame).set_dst_addr(plan.group_mac);
    if ethertype(frame) == ETH_P_ARP && frame.len() >= ETH_HLEN + ARP_LEN && frame[ARP_THA] == port.mac {
        frame[ARP_THA].copy_from_slice(&plan.group_mac);
    }
    Ok(())
}

/// One copy of a frame every member receives: the one the nominee received.
#[inline]
fn nominee_only(plan: &Plan, slot: Slot) -> Result<(), DropReason> {
    if plan.nominee == Some(slot) {
        Ok(())
    } else {
        Err(DropReason::NotNominee)
    }
}

/// Ports of the given MACs, accepting traffic, without test addresses (for
/// tests' plans).
#[cfg(test)]
pub(crate) fn plain_ports(macs: &[Mac]) -> Vec<Option<Port>> {
    macs.iter()
        .map(|&mac| {
            Some(Port {
                mac,
                accept: true,
                test_addr: None,
                test_addr6: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::arp::gratuitous_arp;
    use etherparse::PacketBuilder;

    const GMAC: Mac = [2, 0xaa, 0, 0, 0, 1];
    const M: [Mac; 3] = [[2, 0, 0, 0, 0, 10], [2, 0, 0, 0, 0, 11], [2, 0, 0, 0, 0, 12]];
    const ROUTER: Mac = [2, 0, 0, 0, 0, 1];

    fn set_arp_op(f: &mut [u8], op: u16) {
        crate::wire::arp::Packet::new_unchecked(&mut f[ETH_HLEN..]).set_operation(op);
    }

    fn plan() -> Plan {
        let mut p = Plan::empty(GMAC, 7);
        p.ports = plain_ports(&M);
        p.buckets.rebalance(&[0, 1, 2], &[]);
        p.nominee = Some(0);
        p.bindings = vec![
            (Ipv4Addr::new(192, 0, 2, 200), 1),
            (Ipv4Addr::new(192, 0, 2, 201), 2),
        ];
        p.bindings6 = vec![(V6_BOUND, 2)];
        p
    }

    /// An IPv6 data address bound to member 2 in [`plan`].
    const V6_BOUND: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201);
    const V6_ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn tcp(src: [u8; 4], sport: u16, dst_mac: Mac, src_mac: Mac) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv4(src, [192, 0, 2, 1], 64)
            .tcp(sport, 80, 1, 1000)
            .write(&mut v, &[0; 10])
            .unwrap();
        v
    }

    #[test]
    fn flows_spread_and_stay_put() {
        let p = plan();
        let mut seen = [0u32; 3];
        for port in 0..300u16 {
            let mut f = tcp([192, 0, 2, 200], 10000 + port, ROUTER, GMAC);
            let s = outbound(&p, &mut f).unwrap();
            seen[usize::from(s)] += 1;
            assert_eq!(src_mac(&f), M[usize::from(s)]);
            let mut again = tcp([192, 0, 2, 200], 10000 + port, ROUTER, GMAC);
            assert_eq!(outbound(&p, &mut again).unwrap(), s);
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn bound_mode_uses_the_source_binding() {
        let mut p = plan();
        p.outbound = Outbound::Bound;
        for port in 0..50 {
            let mut f = tcp([192, 0, 2, 201], 1000 + port, ROUTER, GMAC);
            assert_eq!(outbound(&p, &mut f).unwrap(), 2);
        }
    }

    #[test]
    fn arp_leaves_through_the_bound_member_with_its_mac() {
        let p = plan();
        let mut f = gratuitous_arp(GMAC, Ipv4Addr::new(192, 0, 2, 201));
        assert_eq!(outbound(&p, &mut f).unwrap(), 2);
        assert_eq!(src_mac(&f), M[2]);
        assert_eq!(&f[ARP_SHA], &M[2]);
        // Unbound sender (proxy ARP): the nominee.
        let mut f = gratuitous_arp(GMAC, Ipv4Addr::new(192, 0, 2, 99));
        assert_eq!(outbound(&p, &mut f).unwrap(), 0);
    }

    #[test]
    fn nothing_active_is_a_counted_drop() {
        let mut p = plan();
        p.buckets.rebalance(&[], &[]);
        p.nominee = None;
        p.bindings.clear();
        p.bindings6.clear();
        let mut f = tcp([192, 0, 2, 200], 1, ROUTER, GMAC);
        assert_eq!(outbound(&p, &mut f), Err(DropReason::NoActiveMember));
        assert_eq!(outbound(&p, &mut [0u8; 5]), Err(DropReason::Malformed));
    }

    fn tcp6(sport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        let (a, b): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:db8::200".parse().unwrap(), "2001:db8::1".parse().unwrap());
        PacketBuilder::ethernet2(GMAC, ROUTER)
            .ipv6(a.octets(), b.octets(), 64)
            .tcp(sport, 80, 1, 1000)
            .write(&mut v, &[0; 10])
            .unwrap();
        v
    }

    #[test]
    fn ipv6_flows_spread_and_stay_put_in_both_modes() {
        for mode in [Outbound::Flow, Outbound::Bound] {
            let mut p = plan();
            p.outbound = mode;
            let mut seen = [0u32; 3];
            for port in 0..300u16 {
                let mut f = tcp6(10000 + port);
                let s = outbound(&p, &mut f).unwrap();
                seen[usize::from(s)] += 1;
                assert_eq!(src_mac(&f), M[usize::from(s)]);
                assert_eq!(outbound(&p, &mut tcp6(10000 + port)).unwrap(), s);
            }
            assert!(seen.iter().all(|&n| n > 50), "{mode:?} {seen:?}");
        }
    }

    fn tcp6_from(src: Ipv6Addr, sport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(GMAC, ROUTER)
            .ipv6(src.octets(), V6_ROUTER.octets(), 64)
            .tcp(sport, 80, 1, 1000)
            .write(&mut v, &[0; 10])
            .unwrap();
        v
    }

    #[test]
    fn bound_mode_uses_the_ipv6_source_binding() {
        let mut p = plan();
        p.outbound = Outbound::Bound;
        for port in 0..50 {
            let mut f = tcp6_from(V6_BOUND, 1000 + port);
            assert_eq!(outbound(&p, &mut f).unwrap(), 2);
            assert_eq!(src_mac(&f), M[2]);
        }
        // Flow mode spreads the same source.
        p.outbound = Outbound::Flow;
        let slots: std::collections::HashSet<Slot> = (0..50)
            .map(|port| outbound(&p, &mut tcp6_from(V6_BOUND, 1000 + port)).unwrap())
            .collect();
        assert!(slots.len() > 1, "{slots:?}");
    }

    /// The lladdr option of an NS or NA frame.
    fn ndp_lladdr(f: &[u8]) -> Option<Mac> {
        use crate::wire::{icmpv6, ipv6, ndisc};
        let ip = ipv6::Packet::new_checked(&f[ETH_HLEN..]).unwrap();
        let msg = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        match ndisc::Repr::parse(&ip.src_addr(), &ip.dst_addr(), &msg).unwrap() {
            ndisc::Repr::NeighborSolicit { lladdr, .. } | ndisc::Repr::NeighborAdvert { lladdr, .. } => {
                lladdr
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn ndp_leaves_through_the_member_bound_to_its_source() {
        use crate::wire::{ipv6, ndisc};
        let p = plan();
        // The kernel's NS to resolve the router, from a bound address, and
        // its NA answering the router's NS for it: both from member 2 with
        // member 2's MAC in the options, in both outbound modes.
        let ns = ndisc::Repr::NeighborSolicit {
            target: V6_ROUTER,
            lladdr: Some(GMAC),
        }
        .frame(
            GMAC,
            ipv6::multicast_mac(ipv6::solicited_node(V6_ROUTER)),
            V6_BOUND,
            ipv6::solicited_node(V6_ROUTER),
        );
        let na = ndisc::Repr::NeighborAdvert {
            flags: ndisc::na_flags::SOLICITED | ndisc::na_flags::OVERRIDE,
            target: V6_BOUND,
            lladdr: Some(GMAC),
        }
        .frame(GMAC, ROUTER, V6_BOUND, V6_ROUTER);
        for mode in [Outbound::Flow, Outbound::Bound] {
            let mut p = p.clone();
            p.outbound = mode;
            for f in [&ns, &na] {
                let mut f = f.clone();
                assert_eq!(outbound(&p, &mut f).unwrap(), 2, "{mode:?}");
                assert_eq!(src_mac(&f), M[2]);
                assert_eq!(ndp_lladdr(&f), Some(M[2]));
            }
        }
        // DAD (from ::, no option) and an unbound source: the nominee.
        let mut dad = ndisc::Repr::NeighborSolicit {
            target: V6_BOUND,
            lladdr: None,
        }
        .frame(
            GMAC,
            ipv6::multicast_mac(ipv6::solicited_node(V6_BOUND)),
            Ipv6Addr::UNSPECIFIED,
            ipv6::solicited_node(V6_BOUND),
        );
        assert_eq!(outbound(&p, &mut dad).unwrap(), 0);
        assert_eq!(src_mac(&dad), M[0]);
        assert_eq!(ndp_lladdr(&dad), None);
        let mut unbound = ndisc::Repr::NeighborSolicit {
            target: V6_ROUTER,
            lladdr: Some(GMAC),
        }
        .frame(GMAC, ROUTER, "2001:db8::99".parse().unwrap(), V6_ROUTER);
        assert_eq!(outbound(&p, &mut unbound).unwrap(), 0);
        assert_eq!(ndp_lladdr(&unbound), Some(M[0]));
    }

    #[test]
    fn a_neighbour_solicitation_reaches_the_group_once() {
        use crate::wire::{ipv6, ndisc};
        let p = plan();
        // The router's multicast NS for a data address: every member
        // receives a copy (the switch floods it); only the nominee's goes
        // in, so the kernel answers it once.
        let ns = ndisc::Repr::NeighborSolicit {
            target: V6_BOUND,
            lladdr: Some(ROUTER),
        }
        .frame(
            ROUTER,
            ipv6::multicast_mac(ipv6::solicited_node(V6_BOUND)),
            V6_ROUTER,
            ipv6::solicited_node(V6_BOUND),
        );
        let delivered: Vec<Slot> = (0..3)
            .filter(|&s| inbound(&p, s, &mut ns.clone()).is_ok())
            .collect();
        assert_eq!(delivered, vec![0]);
        // A unicast NS (reachability check) to the bound member's MAC: in
        // once, from that member only, addressed to the group.
        let uni = ndisc::Repr::NeighborSolicit {
            target: V6_BOUND,
            lladdr: Some(ROUTER),
        }
        .frame(ROUTER, M[2], V6_ROUTER, V6_BOUND);
        let mut copies = Vec::new();
        for s in 0..3 {
            let mut f = uni.clone();
            if inbound(&p, s, &mut f).is_ok() {
                copies.push(f);
            }
        }
        assert_eq!(copies.len(), 1);
        assert_eq!(dst_mac(&copies[0]), GMAC);
    }

    #[test]
    fn ndp_leaves_through_the_nominee_with_its_mac_in_the_options() {
        use crate::wire::{from_hex, icmpv6, ipv6, ndisc, KERNEL_NA, KERNEL_NS};
        let lladdr_of = |f: &[u8]| {
            let ip = ipv6::Packet::new_checked(&f[ETH_HLEN..]).unwrap();
            let msg = icmpv6::Packet::new_checked(ip.payload()).unwrap();
            match ndisc::Repr::parse(&ip.src_addr(), &ip.dst_addr(), &msg).unwrap() {
                ndisc::Repr::NeighborSolicit { lladdr, .. } | ndisc::Repr::NeighborAdvert { lladdr, .. } => {
                    lladdr
                }
                r => panic!("{r:?}"),
            }
        };
        for hex in [KERNEL_NS, KERNEL_NA] {
            let kernel = from_hex(hex);
            // The kernel's own MAC in the options is the group's: rewritten.
            let mut p = plan();
            p.group_mac = src_mac(&kernel);
            let mut f = kernel.clone();
            assert_eq!(outbound(&p, &mut f).unwrap(), 0);
            assert_eq!(src_mac(&f), M[0]);
            assert_eq!(lladdr_of(&f), Some(M[0]));
            // Another MAC there (a Redirect's next hop, a proxied host) is
            // not ours and stays.
            let p = plan();
            let mut f = kernel.clone();
            assert_eq!(outbound(&p, &mut f).unwrap(), 0);
            assert_eq!(src_mac(&f), M[0]);
            assert_eq!(lladdr_of(&f), lladdr_of(&kernel));
            assert_eq!(f[ETH_HLEN..], kernel[ETH_HLEN..], "nothing else changed");
        }
    }

    #[test]
    fn inbound_unicast_for_the_member_is_rewritten() {
        let p = plan();
        let mut f = tcp([192, 0, 2, 1], 80, M[1], ROUTER);
        assert_eq!(inbound(&p, 1, &mut f), Ok(()));
        assert_eq!(dst_mac(&f), GMAC);
        let mut f = tcp([192, 0, 2, 1], 80, M[2], ROUTER);
        assert_eq!(inbound(&p, 1, &mut f), Err(DropReason::OtherMac));
        let mut f = tcp([192, 0, 2, 1], 80, M[1], M[0]);
        assert_eq!(inbound(&p, 1, &mut f), Err(DropReason::Looped));
    }

    #[test]
    fn inbound_broadcast_only_from_the_nominee() {
        let p = plan();
        let mut f = gratuitous_arp(ROUTER, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(inbound(&p, 0, &mut f.clone()), Ok(()));
        assert_eq!(inbound(&p, 1, &mut f), Err(DropReason::NotNominee));
    }

    #[test]
    fn inbound_unicast_to_the_group_mac_only_from_the_nominee() {
        // A DHCP server answers chaddr = the group's MAC; switches flood it
        // to every member, and exactly one copy must reach the group.
        let mut p = plan();
        let f = tcp([192, 0, 2, 1], 67, GMAC, ROUTER);
        assert_eq!(inbound(&p, 0, &mut f.clone()), Ok(()));
        for other in [1, 2] {
            assert_eq!(inbound(&p, other, &mut f.clone()), Err(DropReason::NotNominee));
        }
        let mut delivered = f.clone();
        inbound(&p, 0, &mut delivered).unwrap();
        assert_eq!(delivered, f, "already addressed to the group: unchanged");
        // The nominee moved: so does the one copy.
        p.nominee = Some(2);
        assert_eq!(inbound(&p, 0, &mut f.clone()), Err(DropReason::NotNominee));
        assert_eq!(inbound(&p, 2, &mut f.clone()), Ok(()));
        // No nominee (nothing active): nobody delivers it.
        p.nominee = None;
        for s in [0, 1, 2] {
            assert_eq!(inbound(&p, s, &mut f.clone()), Err(DropReason::NotNominee));
        }
        // An offline nominee accepts nothing, as for any frame.
        p.nominee = Some(1);
        p.ports[1] = Some(Port {
            mac: M[1],
            accept: false,
            test_addr: None,
            test_addr6: None,
        });
        assert_eq!(inbound(&p, 1, &mut f.clone()), Err(DropReason::Offline));
        // Another host's MAC is still not ours.
        let other = tcp([192, 0, 2, 1], 67, [2, 0xbb, 0, 0, 0, 9], ROUTER);
        assert_eq!(inbound(&p, 0, &mut other.clone()), Err(DropReason::OtherMac));
    }

    #[test]
    fn inbound_arp_reply_target_mac_is_rewritten() {
        let p = plan();
        let mut f = gratuitous_arp(ROUTER, Ipv4Addr::new(192, 0, 2, 1));
        ethernet::Frame::new_unchecked(&mut f[..]).set_dst_addr(M[2]);
        set_arp_op(&mut f, ARP_OP_REPLY);
        f[ARP_THA].copy_from_slice(&M[2]);
        assert_eq!(inbound(&p, 2, &mut f), Ok(()));
        assert_eq!(&f[ARP_THA], &GMAC);
    }

    /// Member 1's echo replies from `router` to its test address `ta`,
    /// built by `reply(ident, payload)`: only ours (id and tag under `key`)
    /// are answers. Returns our good reply and its probe's id.
    fn only_tagged_echo_replies_are_answers(
        p: &Plan,
        key: &ProbeKey,
        ta: IpAddr,
        router: IpAddr,
        reply: impl Fn(u16, &[u8]) -> Vec<u8>,
    ) -> (Vec<u8>, crate::detect::frames::ProbeId) {
        let id = crate::detect::frames::ProbeId {
            counter: 77,
            slot: 1,
            id: 0x4242,
            seq: 5,
            test_addr: ta,
            target: router,
        };
        let good = reply(0x4242, &key.seal(&id));
        assert_eq!(
            divert(p, 1, &good),
            Divert::Answer {
                counter: 77,
                from: router
            }
        );
        assert_eq!(
            divert(p, 1, &reply(0x4243, &key.seal(&id))),
            Divert::Discard,
            "other id"
        );
        assert_eq!(divert(p, 1, &reply(0x4242, &[0; 20])), Divert::Discard, "no tag");
        (good, id)
    }

    #[test]
    fn probe_traffic_is_diverted() {
        use crate::detect::frames::{echo_request, ProbeKey, PROBE_KEY_LEN};
        let mut p = plan();
        let ta = Ipv4Addr::new(192, 0, 2, 211);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        p.ports[1] = Some(Port {
            mac: M[1],
            accept: true,
            test_addr: Some(ta),
            test_addr6: None,
        });
        let key = ProbeKey::new([3; PROBE_KEY_LEN]);
        p.probe_key = Some(key.clone());
        p.icmp_id = 0x4242;
        // ARP request for the test address: prober only, on the member that has it.
        let mut req = gratuitous_arp(ROUTER, router);
        req[ARP_TPA].copy_from_slice(&ta.octets());
        assert_eq!(divert(&p, 1, &req), Divert::Request { arp: true });
        assert_eq!(divert(&p, 0, &req), Divert::No);
        // Other traffic for the test address goes nowhere.
        let f = tcp([192, 0, 2, 1], 80, M[1], ROUTER);
        assert_eq!(divert(&p, 1, &f), Divert::No);
        let mut tcp_to_ta = Vec::new();
        PacketBuilder::ethernet2(ROUTER, M[1])
            .ipv4(router.octets(), ta.octets(), 64)
            .tcp(1, 2, 3, 4)
            .write(&mut tcp_to_ta, &[0; 10])
            .unwrap();
        assert_eq!(divert(&p, 1, &tcp_to_ta), Divert::Discard);
        // An echo request to the test address is a request to answer.
        let ping = echo_request(ROUTER, M[1], router, ta, 9, 1, &[0; 20]);
        assert_eq!(divert(&p, 1, &ping), Divert::Request { arp: false });
        // Echo replies: only ours (id and tag) are answers.
        let reply = |ident: u16, payload: &[u8]| {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(ROUTER, M[1])
                .ipv4(router.octets(), ta.octets(), 64)
                .icmpv4_echo_reply(ident, 5)
                .write(&mut v, payload)
                .unwrap();
            v
        };
        let (good, id) =
            only_tagged_echo_replies_are_answers(&p, &key, IpAddr::V4(ta), IpAddr::V4(router), reply);
        let other_key = ProbeKey::new([4; PROBE_KEY_LEN]).seal(&id);
        assert_eq!(
            divert(&p, 1, &reply(0x4242, &other_key)),
            Divert::Discard,
            "other key"
        );
        for n in 0..good.len() {
            let _ = divert(&p, 1, &good[..n]);
        }
        // ARP replies to a member are copied to the prober only while
        // probing, and only from a target.
        let mut rep = gratuitous_arp(ROUTER, router);
        ethernet::Frame::new_unchecked(&mut rep[..]).set_dst_addr(M[2]);
        set_arp_op(&mut rep, ARP_OP_REPLY);
        assert_eq!(divert(&p, 2, &rep), Divert::No);
        p.probing = true;
        assert_eq!(divert(&p, 2, &rep), Divert::No, "not from a target");
        p.targets = vec![IpAddr::V4(router)];
        assert_eq!(divert(&p, 2, &rep), Divert::Tee);
        assert_eq!(divert(&p, 2, &rep[..ARP_SHA.start]), Divert::No);
    }

    #[test]
    fn ipv6_probe_traffic_is_diverted() {
        use crate::detect::frames::{ProbeKey, PROBE_KEY_LEN};
        use crate::detect::frames6::{echo6_request, neighbor_advert, neighbor_solicit};
        let mut p = plan();
        let ta = ipv6::link_local_from_mac(M[1]);
        let router = ipv6::link_local_from_mac(ROUTER);
        p.ports[1] = Some(Port {
            mac: M[1],
            accept: true,
            test_addr: None,
            test_addr6: Some(ta),
        });
        let key = ProbeKey::new([3; PROBE_KEY_LEN]);
        p.probe_key = Some(key.clone());
        p.icmp_id = 0x4242;
        // NS for the test address (to its solicited-node group, and a DAD
        // probe for it): the prober only, on the member that has it.
        let ns = neighbor_solicit(ROUTER, router, ta, None);
        assert_eq!(divert(&p, 1, &ns), Divert::Request { arp: true });
        assert_eq!(divert(&p, 0, &ns), Divert::No);
        let dad = neighbor_solicit(ROUTER, Ipv6Addr::UNSPECIFIED, ta, None);
        assert_eq!(divert(&p, 1, &dad), Divert::Request { arp: true });
        // An NA claiming the test address.
        let na = neighbor_advert(ROUTER, ta, router, M[1]);
        assert_eq!(divert(&p, 1, &na), Divert::Request { arp: true });
        // NS for another address: data traffic.
        let other = neighbor_solicit(ROUTER, router, "fe80::99".parse().unwrap(), None);
        assert_eq!(divert(&p, 1, &other), Divert::No);
        // A target's NA to the test address: the prober; to a member's MAC
        // for a data address (ARP mode): a copy, while probing, from a target.
        // Not from a target: counted with the requests a host can flood.
        let answer = neighbor_advert(ROUTER, router, ta, M[1]);
        assert_eq!(divert(&p, 1, &answer), Divert::Request { arp: true });
        let to_data = neighbor_advert(ROUTER, router, "fe80::200".parse().unwrap(), M[2]);
        assert_eq!(divert(&p, 2, &to_data), Divert::No);
        p.probing = true;
        assert_eq!(divert(&p, 2, &to_data), Divert::No, "not from a target");
        p.targets = vec![IpAddr::V6(router)];
        assert_eq!(divert(&p, 2, &to_data), Divert::Tee);
        // From a target: an answer, limited apart from the requests.
        assert_eq!(divert(&p, 1, &answer), Divert::Resolved);
        // Echo request to the test address: to answer.
        let ping = echo6_request(ROUTER, M[1], router, ta, 9, 1, &[0; 20]);
        assert_eq!(divert(&p, 1, &ping), Divert::Request { arp: false });
        // Echo replies: only ours (id and tag) are answers.
        let reply = |ident: u16, payload: &[u8]| {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(ROUTER, M[1])
                .ipv6(router.octets(), ta.octets(), 64)
                .icmpv6_echo_reply(ident, 5)
                .write(&mut v, payload)
                .unwrap();
            v
        };
        let (good, _) =
            only_tagged_echo_replies_are_answers(&p, &key, IpAddr::V6(ta), IpAddr::V6(router), reply);
        assert_eq!(divert(&p, 0, &good), Divert::No, "not this member's");
        // Anything else to the test address goes nowhere.
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(ROUTER, M[1])
            .ipv6(router.octets(), ta.octets(), 64)
            .udp(1, 2)
            .write(&mut udp, &[0; 10])
            .unwrap();
        assert_eq!(divert(&p, 1, &udp), Divert::Discard);
        // MLD queries: a copy for the member that has a test address.
        let query = crate::datapath::ndp::mld_general_query(ROUTER, router);
        assert_eq!(divert(&p, 1, &query), Divert::Query);
        assert_eq!(divert(&p, 0, &query), Divert::No);
        for f in [&good, &ns, &na, &ping, &udp, &query] {
            for n in 0..f.len() {
                let _ = divert(&p, 1, &f[..n]);
            }
        }
    }

    #[test]
    fn offline_or_absent_member_accepts_nothing() {
        let mut p = plan();
        p.ports[1] = Some(Port {
            mac: M[1],
            accept: false,
            test_addr: None,
            test_addr6: None,
        });
        p.ports[2] = None;
        let mut f = tcp([192, 0, 2, 1], 80, M[1], ROUTER);
        assert_eq!(inbound(&p, 1, &mut f), Err(DropReason::Offline));
        assert_eq!(inbound(&p, 2, &mut f), Err(DropReason::Offline));
    }
}
