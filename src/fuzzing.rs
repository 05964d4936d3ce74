//! Fuzz target bodies: one function per input-reading part of the daemon.
//!
//! Each takes arbitrary bytes, drives the real parser or decision with them
//! and checks what must hold whatever the input (besides not panicking). The
//! same bodies run under libFuzzer (`fuzz/`, nightly, `scripts/fuzz.sh`) and
//! as bounded randomized tests on stable (`tests/fuzz_bounded.rs`).
//! [`seeds`] gives valid inputs to start from, so mutations reach the deep
//! paths and not only the early rejections.

use crate::config;
use crate::control::{self, Envelope, Request};
use crate::datapath::arp::{gratuitous_arp, igmp_general_query};
use crate::datapath::buckets::{Slot, NO_SLOT};
use crate::datapath::counters::DropReason;
use crate::datapath::frame::*;
use crate::datapath::plan::{self, Divert, Outbound, Plan, Port};
use crate::datapath::vnet::{self, VnetHdr, MAX_FRAME, VNET_HDR_LEN};
use crate::detect::frames::{self, ProbeInput};
use crate::detect::frames6;
use crate::detect::probe::{Method, Out, Prober};
use crate::sys::packet::{auxdata, parse_auxdata_vlan, HEADROOM};
use crate::wire::checksum::checksum as inet_checksum;
use crate::wire::ipv6::link_local_from_mac;
use crate::wire::{ethernet, icmpv4, ipv4, vlan};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// splitmix64: a small, seeded, reproducible stream of numbers, enough to
/// drive mutations (the bounded fuzz runs, the unit tests' mutation loops).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// splitmix64's increment and mixing constants (Steele, Lea, Flood 2014).
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    const MIX1: u64 = 0xbf58_476d_1ce4_e5b9;
    const MIX2: u64 = 0x94d0_49bb_1331_11eb;

    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(Self::MIX1);
        z = (z ^ (z >> 27)).wrapping_mul(Self::MIX2);
        z ^ (z >> 31)
    }

    /// Close enough to uniform in 0..n; 0 when n is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// n bytes of the stream.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A fuzz target: its name (the file under fuzz/fuzz_targets/) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order scripts and tests run them.
pub const TARGETS: &[Target] = &[
    ("frame_classify", frame_classify),
    ("arp_parse", arp_parse),
    ("icmp_echo", icmp_echo),
    ("igmp_checksum", igmp_checksum),
    ("vnet_header", vnet_header),
    ("vlan_auxdata", vlan_auxdata),
    ("datapath_plan", datapath_plan),
    ("probe_reply", probe_reply),
    ("config_toml", config_toml),
    ("config_flags", config_flags),
    ("control_request", control_request),
    ("ipv6_parse", ipv6_parse),
    ("icmpv6_parse", icmpv6_parse),
    ("ndp_rewrite", ndp_rewrite),
    ("echo6", echo6),
];

mod ipv6;
pub use ipv6::{echo6, icmpv6_parse, ipv6_parse, ndp_rewrite};

/// Reads fields off the front of the fuzz input; zeros once it runs out, so
/// every input is usable.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) << 32 | u64::from(self.u32())
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn ip(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.u32())
    }
    /// An IPv4 or an IPv6 address; IPv6 ones are link-local (what the
    /// probers' targets usually are) or the input's 16 bytes.
    fn any_ip(&mut self) -> IpAddr {
        match self.u8() % 3 {
            0 => IpAddr::V4(self.ip()),
            1 => IpAddr::V6(crate::wire::ipv6::link_local_from_mac(self.mac())),
            _ => IpAddr::V6(std::net::Ipv6Addr::from(
                (u128::from(self.u32()) << 96)
                    | (u128::from(self.u32()) << 64)
                    | u128::from(self.u32()) << 32
                    | u128::from(self.u32()),
            )),
        }
    }
    fn mac(&mut self) -> Mac {
        [self.u8(), self.u8(), self.u8(), self.u8(), self.u8(), self.u8()]
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Every `wire` parser on `data` as a frame and on its payload (untagged
/// and tagged). None may panic, and what parses, emitted again, parses the
/// same; a parser bug panics here.
fn wire_round_trips(data: &[u8]) {
    use crate::wire::{arp, igmp};
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let r = ethernet::Repr::parse(&f).expect("a whole header parses");
        let mut out = [0u8; ethernet::HEADER_LEN];
        r.emit(&mut ethernet::Frame::new_unchecked(&mut out[..]));
        assert_eq!(out[..], data[..ethernet::HEADER_LEN]);
    }
    for at in [0, ethernet::HEADER_LEN, ethernet::HEADER_LEN + vlan::TAG_LEN] {
        let Some(b) = data.get(at..) else {
            continue;
        };
        if let Ok(r) = arp::Packet::new_checked(b).and_then(|p| arp::Repr::parse(&p)) {
            let mut out = [0u8; arp::PACKET_LEN];
            r.emit(&mut arp::Packet::new_unchecked(&mut out[..]));
            assert_eq!(out[..], b[..arp::PACKET_LEN]);
        }
        let Ok(p) = ipv4::Packet::new_checked(b) else {
            continue;
        };
        if let Ok(r) = ipv4::Repr::parse(&p) {
            assert_eq!(r.payload_len, p.payload().len());
            let mut out = vec![0u8; r.total_len()];
            r.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
            let again = ipv4::Packet::new_checked(&out[..]).expect("what we emit is whole");
            assert!(again.verify_checksum());
            assert_eq!(ipv4::Repr::parse(&again), Ok(r));
        }
        if let Ok(r) = icmpv4::Packet::new_checked(p.payload()).and_then(|q| icmpv4::Repr::parse(&q)) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut icmpv4::Packet::new_unchecked(&mut out[..]));
            assert_eq!(
                icmpv4::Repr::parse(&icmpv4::Packet::new_unchecked(&out[..])),
                Ok(r)
            );
        }
        if let Ok(r) = igmp::Packet::new_checked(p.payload()).and_then(|q| igmp::Repr::parse(&q)) {
            let mut out = [0u8; igmp::QUERY_V3_LEN];
            r.emit(&mut igmp::Packet::new_unchecked(&mut out[..]));
            assert_eq!(igmp::Repr::parse(&igmp::Packet::new_unchecked(&out[..])), Ok(r));
        }
    }
}

/// Frame classification and the flow key, as the outbound thread reads
/// every frame from the group interface (its fast path agreeing); and the
/// `wire` parsers.
pub fn frame_classify(data: &[u8]) {
    wire_round_trips(data);
    // The fixed-offset fast path answers only what classify answers.
    if let Some(fast) = fast_flow(data) {
        let slow = match classify(data) {
            Ok(Class::Ipv4Unicast(k)) => Some(FastFlow::V4(k)),
            Ok(Class::Ipv6Unicast(k)) => Some(FastFlow::V6(k)),
            _ => None,
        };
        assert_eq!(Some(fast), slow);
    }
    match classify(data) {
        Ok(Class::Ipv4Unicast(k)) => {
            let (et, l3) = l3_of(data);
            assert!(data.len() >= l3 + ipv4::MIN_HEADER_LEN);
            assert_eq!(et, ETH_P_IP);
            assert!(!is_multicast_mac(&dst_mac(data)));
            let ip = ipv4::Packet::new_unchecked(&data[l3..]);
            assert_eq!(k.src, u32::from(ip.src_addr()));
            let _ = flow_hash(&k, k.ports.into());
        }
        Ok(Class::Arp { .. }) => assert!(data.len() >= ETH_HLEN + ARP_LEN),
        Ok(Class::Multicast) => assert!(is_multicast_mac(&dst_mac(data))),
        Ok(Class::OtherUnicast) => assert!(!matches!(l3_of(data).0, ETH_P_IP | ETH_P_IPV6)),
        Ok(Class::Ipv6Unicast(_) | Class::Ndp { .. }) => assert_eq!(l3_of(data).0, ETH_P_IPV6),
        Err(Malformed) => {}
    }
    // The IPv4 parser at every offset a tag or a shim could put it.
    for l3 in [0, ETH_HLEN, ETH_HLEN + vlan::TAG_LEN, data.len(), data.len() + 1] {
        if let Ok(k) = parse_ipv4_flow(data, l3) {
            assert!(data.len() >= l3 + ipv4::MIN_HEADER_LEN);
            if k.ports != 0 {
                assert!(k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP);
            }
        }
    }
}

/// The ARP parsers of the data plane and of the prober.
pub fn arp_parse(data: &[u8]) {
    let plain = parse_arp(data);
    let info = frames::parse_arp_info(data);
    if let Some(i) = info {
        let (op, spa, tpa) = plain.expect("parse_arp_info accepted what parse_arp refuses");
        assert_eq!((i.op, i.spa, i.tpa), (op, spa, tpa));
        assert_eq!(i.dst, dst_mac(data));
        assert_eq!(ethertype(data), ETH_P_ARP);
    }
    if plain.is_ok() && data.len() >= ETH_HLEN && ethertype(data) == ETH_P_ARP {
        assert!(info.is_some());
    }
}

/// ICMP echo parsing and the answer for a test address.
pub fn icmp_echo(data: &[u8]) {
    let mut inp = Input(data);
    let my_mac = inp.mac();
    let test_addr = inp.ip();
    let f = inp.rest();
    if let Some(r) = frames::parse_echo_reply(f) {
        // IPv4 or IPv6, with addresses of the frame's family.
        match ethertype(f) {
            ETH_P_IP => assert!(r.src.is_ipv4() && r.dst.is_ipv4()),
            ETH_P_IPV6 => assert!(r.src.is_ipv6() && r.dst.is_ipv6()),
            other => panic!("an echo reply in ethertype {other:#x}"),
        }
        let key = frames::ProbeKey::new([r.payload[0]; frames::PROBE_KEY_LEN]);
        let _ = key.open(&r, r.payload[1], r.id);
    }
    if let Some(reply) = frames::echo_reply_to(f, my_mac, test_addr) {
        // Our answer is a well-formed echo reply from the test address to
        // the requester, with both checksums right.
        assert_eq!(src_mac(&reply), my_mac);
        assert_eq!(dst_mac(&reply), src_mac(f));
        let ip = ipv4::Packet::new_checked(&reply[IPV4_AT..]).expect("a whole IPv4 packet");
        assert!(ip.verify_checksum());
        assert!(icmpv4::Packet::new_checked(ip.payload()).is_ok_and(|p| p.verify_checksum()));
        assert_eq!(ip.src_addr(), test_addr);
        if let Some(r) = frames::parse_echo_reply(&reply) {
            assert_eq!(r.src, test_addr);
        }
    }
}

/// The Internet checksum and the IGMP query built from arbitrary MACs: the
/// kernel only honours a query whose checksums verify.
pub fn igmp_checksum(data: &[u8]) {
    let c = inet_checksum(data);
    // Appending the checksum to even-length data makes the whole verify.
    if data.len() % 2 == 0 && data.len() <= MAX_FRAME {
        let mut v = data.to_vec();
        v.extend_from_slice(&c.to_be_bytes());
        assert_eq!(inet_checksum(&v), 0, "checksum {c:#x}");
    }
    let mut inp = Input(data);
    let q = igmp_general_query(inp.mac());
    assert!(matches!(classify(&q), Ok(Class::Multicast)));
    let ip = ipv4::Packet::new_checked(&q[IPV4_AT..]).expect("a whole IPv4 packet");
    assert!(ip.verify_checksum());
    assert!(crate::wire::igmp::Packet::new_checked(ip.payload()).is_ok_and(|p| p.verify_checksum()));
    let g = gratuitous_arp(inp.mac(), inp.ip());
    assert!(parse_arp(&g).is_ok());
}

/// The virtio-net header checks of both directions: what the outbound
/// thread checks on a frame from the TAP, and the receive path's VLAN
/// reinsertion and checks on a frame from a member.
pub fn vnet_header(data: &[u8]) {
    let mut inp = Input(data);
    let vlan = match inp.u8() & 3 {
        0 | 1 => None,
        _ => Some((inp.u16(), inp.u16())),
    };
    let buf = inp.rest();
    // Outbound: the TAP's header in front of the frame.
    if let Ok(h) = VnetHdr::parse(buf) {
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::parse(&b), Ok(h));
        let frame_len = buf.len() - VNET_HDR_LEN;
        if h.validate(frame_len).is_ok() {
            assert!(frame_len <= MAX_FRAME);
            if h.flags & vnet::F_NEEDS_CSUM != 0 {
                let end = usize::from(h.csum_start) + usize::from(h.csum_offset) + 2;
                assert!(end <= frame_len);
            }
        }
        let mut shifted = h;
        if shifted.shift_for_vlan().is_ok() && h.flags & vnet::F_NEEDS_CSUM != 0 {
            assert_eq!(
                usize::from(shifted.csum_start),
                usize::from(h.csum_start) + vlan::TAG_LEN
            );
        }
    }
    // Inbound: a receive slot, headroom first.
    let mut slot = vec![0u8; HEADROOM + buf.len()];
    slot[HEADROOM..].copy_from_slice(buf);
    if let Ok((start, len)) = vnet::prepare_rx(&mut slot, buf.len(), vlan) {
        assert!(start + len <= slot.len());
        let out = &slot[start..start + len];
        let h = VnetHdr::parse(out).expect("a prepared frame has a header");
        assert!(h.validate(len - VNET_HDR_LEN).is_ok());
        assert!(len - VNET_HDR_LEN >= ETH_HLEN);
        if let Some((tpid, tci)) = vlan {
            assert_eq!(len, buf.len() + vlan::TAG_LEN);
            let f = ethernet::Frame::new_unchecked(&out[VNET_HDR_LEN..]);
            let tag = vlan::Packet::new_unchecked(f.payload());
            assert_eq!((f.ethertype(), tag.tci()), (tpid, tci));
            let (macs, tagged) = (vlan::TAG_OFFSET, vlan::TAG_OFFSET + vlan::TAG_LEN);
            let (f, orig) = (&out[VNET_HDR_LEN..], &buf[VNET_HDR_LEN..]);
            assert_eq!(f[..macs], orig[..macs]);
            assert_eq!(f[tagged..], orig[macs..]);
        } else {
            assert_eq!(out, buf);
        }
    }
    // The receive path refuses a length its slot cannot hold.
    let mut short = vec![0u8; HEADROOM + buf.len()];
    assert!(vnet::prepare_rx(&mut short, buf.len() + 1, vlan).is_err());
}

/// VLAN tags delivered out of band in PACKET_AUXDATA control messages.
pub fn vlan_auxdata(data: &[u8]) {
    if parse_auxdata_vlan(data).is_some() {
        // A control message header and a whole tpacket_auxdata were read.
        assert!(data.len() >= std::mem::size_of::<libc::cmsghdr>() + auxdata::LEN);
    }
}

/// Most members a fuzzed plan has: beyond a few, more slots add nothing.
const FUZZ_MAX_PORTS: usize = 8;
/// Most data address bindings a fuzzed plan has.
const FUZZ_MAX_BINDINGS: usize = 8;

/// A forwarding plan drawn from the input: members with arbitrary MACs
/// (duplicates and the group's own included), absent and offline members,
/// test addresses, bindings to any slot, a bucket map from arbitrary
/// active sets, any nominee.
fn arbitrary_plan(inp: &mut Input) -> Plan {
    let mut p = Plan::empty(inp.mac(), inp.u64());
    let n = usize::from(inp.u8()) % (FUZZ_MAX_PORTS + 1);
    for _ in 0..n {
        let flags = inp.u8();
        if flags & 1 == 0 {
            p.ports.push(None);
            continue;
        }
        let mac = inp.mac();
        let test_addr = if flags & 4 == 4 { Some(inp.ip()) } else { None };
        p.ports.push(Some(Port {
            mac,
            accept: flags & 2 == 2,
            test_addr,
            test_addr6: (flags & 8 == 8).then(|| link_local_from_mac(mac)),
        }));
    }
    let active: Vec<Slot> = (0..inp.u8() % 6).map(|_| inp.u8() % 12).collect();
    let replacements: Vec<(Slot, Slot)> = (0..inp.u8() % 3)
        .map(|_| (inp.u8() % 12, inp.u8() % 12))
        .collect();
    p.buckets.rebalance(&active, &replacements);
    if inp.bool() {
        let active: Vec<Slot> = (0..inp.u8() % 6).map(|_| inp.u8() % 12).collect();
        p.buckets.rebalance(&active, &[]);
    }
    let nominee = inp.u8();
    p.nominee = (nominee != NO_SLOT).then_some(nominee % 12);
    let b = usize::from(inp.u8()) % (FUZZ_MAX_BINDINGS + 1);
    p.bindings = (0..b).map(|_| (inp.ip(), inp.u8() % 12)).collect();
    let b6 = usize::from(inp.u8()) % (FUZZ_MAX_BINDINGS + 1);
    p.bindings6 = (0..b6)
        .map(|_| {
            let a = (u128::from(inp.u64()) << 64) | u128::from(inp.u64());
            (std::net::Ipv6Addr::from(a), inp.u8() % 12)
        })
        .collect();
    p.outbound = if inp.bool() {
        Outbound::Bound
    } else {
        Outbound::Flow
    };
    p.probing = inp.bool();
    p.targets = (0..inp.u8() % 4).map(|_| inp.any_ip()).collect();
    p.icmp_id = inp.u16();
    if inp.bool() {
        p.probe_key = Some(frames::ProbeKey::new([inp.u8(); frames::PROBE_KEY_LEN]));
    }
    p
}

/// `outbound`, `inbound` and `divert` with an arbitrary plan and frame.
pub fn datapath_plan(data: &[u8]) {
    let mut inp = Input(data);
    let p = arbitrary_plan(&mut inp);
    let slot = inp.u8() % 12;
    let frame = inp.rest();
    let port = |s: Slot| p.ports.get(usize::from(s)).and_then(|x| x.as_ref());

    let d = plan::divert(&p, slot, frame);
    if d != Divert::No {
        assert!(port(slot).is_some());
    }
    if matches!(
        d,
        Divert::Request { .. } | Divert::Answer { .. } | Divert::Discard | Divert::Resolved
    ) {
        // Only traffic for a test address is taken off the data path.
        assert!(port(slot).is_some_and(|x| x.test_addr.is_some() || x.test_addr6.is_some()));
    }
    if let Divert::Answer { from, counter } = d {
        // Answers are echo replies from `from` whose tag opens under our key.
        let r = frames::parse_echo_reply(frame).expect("an answer is an echo reply");
        let key = p.probe_key.as_ref().expect("answers need our key");
        assert_eq!((r.src, key.open(&r, slot, p.icmp_id)), (from, Some(counter)));
    }

    let mut out = frame.to_vec();
    match plan::outbound(&p, &mut out) {
        Ok(s) => {
            let m = port(s).expect("outbound picked a member that is not there");
            assert_eq!(src_mac(&out), m.mac);
            // Only the source MAC and, for ARP, the sender hardware address change.
            assert_eq!(dst_mac(&out), dst_mac(frame));
            let macs_end = ethernet::field::SOURCE.end;
            if matches!(classify(frame), Ok(Class::Arp { .. })) {
                assert_eq!(out[ARP_SHA], m.mac);
                assert_eq!(out[macs_end..ARP_SHA.start], frame[macs_end..ARP_SHA.start]);
                assert_eq!(out[ARP_SHA.end..], frame[ARP_SHA.end..]);
            } else if matches!(classify(frame), Ok(Class::Ndp { .. })) {
                // NDP: the link-layer options that carried the group's MAC
                // carry the member's (checksum updated); nothing else changes.
                let mut want = frame.to_vec();
                ethernet::Frame::new_unchecked(&mut want[..]).set_src_addr(m.mac);
                let _ = crate::datapath::ndp::rewrite_own_ndp_lladdr(&mut want, p.group_mac, m.mac);
                assert_eq!(out, want);
            } else {
                assert_eq!(out[macs_end..], frame[macs_end..], "beyond the MACs");
            }
        }
        Err(DropReason::Malformed) => assert!(classify(frame).is_err()),
        Err(why) => assert_eq!(why, DropReason::NoActiveMember),
    }

    let mut inb = frame.to_vec();
    match plan::inbound(&p, slot, &mut inb) {
        Ok(()) => {
            let m = port(slot).expect("accepted on a member that is not there");
            assert!(m.accept);
            let dst = dst_mac(frame);
            if is_multicast_mac(&dst) {
                assert_eq!(p.nominee, Some(slot));
                assert_eq!(inb, frame);
            } else if dst == m.mac {
                assert_eq!(dst_mac(&inb), p.group_mac);
            } else {
                // Unicast to the group's own MAC: one copy, unchanged.
                assert_eq!(dst, p.group_mac);
                assert_eq!(p.nominee, Some(slot));
                assert_eq!(inb, frame);
            }
            assert_eq!(inb.len(), frame.len());
        }
        Err(_) => assert_eq!(inb, frame, "a dropped frame is not rewritten"),
    }
}

/// Arbitrary probe frames through the control side's sorting and into a
/// running prober, with receive times before and after its polls.
pub fn probe_reply(data: &[u8]) {
    let mut inp = Input(data);
    let mac = inp.mac();
    let slot = inp.u8();
    let test_addr = inp.bool().then(|| inp.ip());
    let icmp_id = inp.u16();
    let key = frames::ProbeKey::new(inp.u64().to_le_bytes().repeat(2).try_into().unwrap_or_default());
    let method = match test_addr {
        Some(t) if inp.bool() => Method::Icmp {
            test_addr: IpAddr::V4(t),
        },
        _ => Method::Arp,
    };
    let fdt = Duration::from_millis(u64::from(inp.u16()).max(1));
    let targets: Vec<IpAddr> = (0..inp.u8() % 7).map(|_| IpAddr::V4(inp.ip())).collect();
    let mut p = Prober::new(method, "m0", "g0", fdt, &targets, inp.u64());
    if inp.bool() {
        p.set_discovery(Some(test_addr.into_iter().map(IpAddr::V4).collect()));
    }
    p.set_fast_repair(inp.bool());
    let base = Instant::now();
    let mut now = base;
    p.start(now);
    // The rest: frames, each preceded by its length and a clock step.
    let mut rest = inp.rest();
    while let [len, step, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*step) * 8);
        let n = usize::from(*len).min(tail.len());
        let (f, after) = tail.split_at(n);
        rest = after;
        let outs = p.poll(now);
        check_outs(&outs);
        // The data thread stamped the frame a little before this poll.
        let at = now
            .checked_sub(Duration::from_millis(u64::from(*step % 16)))
            .unwrap_or(now);
        let test6 = Some(link_local_from_mac(mac));
        let outs = match frames::probe_input(f, slot, mac, test_addr, test6, icmp_id, &key) {
            ProbeInput::AnswerArp(r) => {
                let a = frames::parse_arp_info(&r).expect("our ARP answer parses");
                assert_eq!((a.op, a.sha), (ARP_OP_REPLY, mac));
                assert_eq!(Some(a.spa), test_addr);
                continue;
            }
            ProbeInput::AnswerNs(r) | ProbeInput::AnswerMld(r) => {
                assert_eq!(src_mac(&r), mac);
                continue;
            }
            ProbeInput::AnswerEcho(r) => {
                assert_eq!(src_mac(&r), mac);
                continue;
            }
            ProbeInput::ArpReply { from, mac: m } => p.on_arp_reply(from, m, at),
            ProbeInput::EchoReply {
                from,
                eth_src,
                seq,
                counter,
            } => p.on_echo_reply(from, eth_src, seq, counter, at, at),
            ProbeInput::NotProbe | ProbeInput::Ignored | ProbeInput::Duplicate { .. } => continue,
        };
        check_outs(&outs);
        let _ = p.next_deadline();
    }
    let _ = (p.state(), p.rtt(), p.targets());
}

/// Longer than any round-trip a fuzzed prober can see: its clock advances at
/// most 255 * 8 ms per frame, over inputs of at most a few thousand frames.
const RTT_BOUND: Duration = Duration::from_secs(86_400);

/// Outputs of a prober fed hostile replies stay sane.
fn check_outs(outs: &[Out]) {
    for o in outs {
        if let Out::Result { rtt: Some(r), .. } = o {
            assert!(*r < RTT_BOUND, "round-trip {r:?}");
        }
    }
}

/// The group file: TOML into the file model, then the same merge (with no
/// flags but the group) into a group configuration the daemon validates.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = config::file::parse(std::path::Path::new("g0.toml"), text.into()) else {
        return;
    };
    let flags = config::Flags {
        group: Some("g0".into()),
        ..Default::default()
    };
    match config::resolve(&flags, Some(&file), std::path::Path::new(config::DEFAULT_RUN_DIR)) {
        Ok(cfg) => {
            // What a valid configuration promises the daemon.
            assert_eq!(cfg.validate(), Ok(()));
            let (fdt, _) = cfg.effective_fdt();
            let _ = Instant::now()
                .checked_add(fdt)
                .expect("an FDT the clock can hold");
            assert!(cfg.detect.link_poll >= config::LINK_POLL_MIN);
        }
        Err(config::ConfigError::Invalid { at: Some(at), .. }) => {
            // A refusal points inside the file.
            assert!(at.line >= 1 && at.line <= text.split('\n').count(), "{at:?}");
        }
        Err(_) => {}
    }
}

/// The command line's value parsers, on any string.
pub fn config_flags(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(d) = config::parse_duration(&s) {
        assert!(d > Duration::ZERO);
    }
    if let Ok(a) = config::parse_data_addr(&s) {
        assert!(a.prefix_len <= 32);
        assert!(!a.addr.is_multicast() && !a.addr.is_unspecified());
    }
    if let Ok(a) = config::parse_if_addr(&s) {
        // An address's bits: the longest prefix of each family.
        const V4_BITS: u8 = 32;
        const V6_BITS: u8 = 128;
        let max = if a.addr.is_ipv4() { V4_BITS } else { V6_BITS };
        assert!(a.prefix_len <= max);
        assert!(!a.addr.is_multicast() && !a.addr.is_unspecified() && !a.addr.is_loopback());
    }
    if let Ok((ifname, _)) = config::parse_test_address(&s) {
        assert!(!ifname.is_empty() && ifname.len() <= config::IFNAME_MAX);
    }
    let _ = config::parse_yes_no(&s);
    let _ = config::check_ifname("member name", &s);
}

/// A request line from a control-socket client.
pub fn control_request(data: &[u8]) {
    if let Ok(r) = control::parse_request(data) {
        assert!(data.len() <= control::server::MAX_REQUEST_LINE);
        assert_eq!(r.version, control::PROTOCOL_VERSION);
        // What parses re-serializes to the same request, and that line
        // parses again (the typed request has one wire form).
        let again = serde_json::to_string(&r).expect("a request serializes");
        let back: Envelope<Request> = serde_json::from_str(&again).expect("and parses back");
        assert_eq!(back, r);
        assert_eq!(control::parse_request(again.as_bytes()), Ok(r));
    }
}

/// Valid inputs for a target, to mutate from.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let host: Mac = [2, 0, 0, 0, 0, 1];
    let router: Mac = [2, 0, 0, 0, 0, 2];
    let ta = Ipv4Addr::new(192, 0, 2, 201);
    let gw = Ipv4Addr::new(192, 0, 2, 1);
    // A probe sealed under the key `probe_reply` derives from a zero seed.
    let sealed = frames::ProbeKey::new([0; frames::PROBE_KEY_LEN]).seal(&frames::ProbeId {
        counter: 1,
        slot: 0,
        id: 7,
        seq: 3,
        test_addr: IpAddr::V4(ta),
        target: IpAddr::V4(gw),
    });
    let echo = frames::echo_request(router, host, gw, ta, 7, 3, &sealed);
    let mut reply = frames::echo_request(router, host, gw, ta, 7, 3, &sealed);
    {
        // The same message as an echo reply (the frame has no padding).
        let mut eth = ethernet::Frame::new_unchecked(&mut reply[..]);
        let mut icmp = icmpv4::Packet::new_unchecked(&mut eth.payload_mut()[ipv4::MIN_HEADER_LEN..]);
        icmp.set_msg_type(icmpv4::msg_type::ECHO_REPLY);
        icmp.fill_checksum();
    }
    let arp_req = frames::arp_request(router, gw, ta);
    let arp_rep = frames::arp_reply(router, gw, host, ta);
    let garp = gratuitous_arp(host, Ipv4Addr::new(192, 0, 2, 200));
    let tcp = ipv4_frame(host, router, IPPROTO_TCP, &[0x30, 0x39, 0, 80, 0, 0, 0, 1]);
    let udp = ipv4_frame(host, router, IPPROTO_UDP, &[0x04, 0, 0, 53, 0, 8, 0, 0]);
    let igmp = igmp_general_query(host);
    // IPv6 probe traffic: a sealed echo reply to the host's link-local test
    // address, an NS for it, a target's NA, an MLD query.
    let (ta6, gw6) = (link_local_from_mac(host), link_local_from_mac(router));
    let sealed6 = frames::ProbeKey::new([0; frames::PROBE_KEY_LEN]).seal(&frames::ProbeId {
        counter: 1,
        slot: 0,
        id: 7,
        seq: 3,
        test_addr: IpAddr::V6(ta6),
        target: IpAddr::V6(gw6),
    });
    let mut reply6 = frames6::echo6_request(router, host, gw6, ta6, 7, 3, &sealed6);
    {
        let mut ip = crate::wire::ipv6::Packet::new_unchecked(&mut reply6[ethernet::HEADER_LEN..]);
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let mut icmp = crate::wire::icmpv6::Packet::new_unchecked(ip.payload_mut());
        icmp.set_msg_type(crate::wire::icmpv6::msg_type::ECHO_REPLY);
        icmp.fill_checksum(&s, &d);
    }
    let ns6 = frames6::neighbor_solicit(router, gw6, ta6, None);
    let na6 = frames6::neighbor_advert(router, gw6, ta6, host);
    let mld_query = crate::datapath::ndp::mld_general_query(router, gw6);
    let frames_all = vec![
        echo.clone(),
        reply.clone(),
        arp_req,
        arp_rep,
        garp,
        tcp,
        udp,
        igmp,
        reply6,
        ns6,
        na6,
        mld_query,
    ];
    let with_prefix = |prefix: &[u8]| -> Vec<Vec<u8>> {
        frames_all
            .iter()
            .map(|f| {
                let mut v = prefix.to_vec();
                v.extend_from_slice(f);
                v
            })
            .collect()
    };
    match target {
        "frame_classify" | "arp_parse" | "igmp_checksum" => frames_all,
        "icmp_echo" => {
            let mut p = host.to_vec();
            p.extend_from_slice(&ta.octets());
            with_prefix(&p)
        }
        "vnet_header" => {
            let gso = VnetHdr {
                flags: vnet::F_NEEDS_CSUM,
                gso_type: vnet::GSO_TCPV4,
                hdr_len: 54,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            };
            let mut out = Vec::new();
            for (h, tag) in [
                (VnetHdr::default(), vec![0u8]),
                (gso, vec![0]),
                (gso, vec![2, 0x81, 0, 0, 5]),
            ] {
                for f in &frames_all {
                    let mut v = tag.clone();
                    let mut b = [0u8; VNET_HDR_LEN];
                    h.write(&mut b);
                    v.extend_from_slice(&b);
                    v.extend_from_slice(f);
                    out.push(v);
                }
            }
            out
        }
        "vlan_auxdata" => vec![auxdata_cmsg(
            libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
            5,
            0x8100,
        )],
        "datapath_plan" => {
            // Group MAC, seed, three present members (the second with a test
            // address), buckets over all three, nominee 0, one binding.
            let mut p = vec![2, 0xaa, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 3];
            p.extend_from_slice(&[3, 2, 0, 0, 0, 0, 10]);
            p.extend_from_slice(&[7, 2, 0, 0, 0, 0, 11]);
            p.extend_from_slice(&ta.octets());
            p.extend_from_slice(&[3, 2, 0, 0, 0, 0, 12]);
            p.extend_from_slice(&[3, 0, 1, 2, 0, 0, 0, 1, 192, 0, 2, 200, 1, 0, 1, 1]);
            with_prefix(&p)
        }
        "probe_reply" => {
            let mut p = host.to_vec();
            p.push(1);
            p.push(1);
            p.extend_from_slice(&ta.octets());
            p.extend_from_slice(&[0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x27, 0x10, 1]);
            p.extend_from_slice(&gw.octets());
            p.extend_from_slice(&[0; 8]);
            p.extend_from_slice(&[0, 0]);
            let mut out = Vec::new();
            for f in &frames_all {
                let mut v = p.clone();
                for step in [200u8, 50, 255] {
                    v.push(f.len().min(255) as u8);
                    v.push(step);
                    v.extend_from_slice(&f[..f.len().min(255)]);
                }
                out.push(v);
            }
            out
        }
        "config_toml" => vec![
            include_bytes!("../docs/production0.toml").to_vec(),
            b"data = [\"192.0.2.200/24\"]\ntargets = [\"192.0.2.1\"]\nfailure_detection_time = 100\n\
              garp_count = 3\nlink_poll = \"5ms\"\nfailback = \"no\"\n\
              [[member]]\nname = \"e0\"\ntest_address = \"192.0.2.201/24\"\n\
              [[member]]\nname = \"e1\"\nstandby = true\n\
              [[route]]\ndestination = \"198.51.100.0/24\"\ngateway = \"192.0.2.1\"\n"
                .to_vec(),
        ],
        "config_flags" => [
            "10s",
            "100ms",
            "1.5s",
            "250",
            "192.0.2.200/24",
            "e0=192.0.2.201/24",
            "yes",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "control_request" => [
            r#"{"version":1,"command":"status"}"#,
            r#"{"version":1,"command":"offline","args":["e1000g0"]}"#,
            r#"{"version":1,"command":"standby","args":["rge0","on"]}"#,
            r#"{"version":1,"command":"standby","args":["rge0","off"]}"#,
            r#"{"version":1,"command":"online","args":["e1000g0"]}"#,
            r#"{"version":1,"command":"probes"}"#,
            r#"{"version":1,"command":"reload","args":[]}"#,
        ]
        .iter()
        .map(|s| format!("{s}\n").into_bytes())
        .collect(),
        other => ipv6::seeds(other),
    }
}

/// An Ethernet/IPv4 frame from 192.0.2.200 to 192.0.2.1 with `l4` after the header.
fn ipv4_frame(src: Mac, dst: Mac, proto: u8, l4: &[u8]) -> Vec<u8> {
    /// A host's usual TTL.
    const TTL: u8 = 64;
    let ip = ipv4::Repr {
        src_addr: Ipv4Addr::new(192, 0, 2, 200),
        dst_addr: Ipv4Addr::new(192, 0, 2, 1),
        protocol: proto,
        payload_len: l4.len(),
        ttl: TTL,
        dscp_ecn: 0,
        dont_frag: false,
        router_alert: false,
    };
    let eth = ethernet::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype: ETH_P_IP,
    };
    ip.frame(eth, |p| p.copy_from_slice(l4))
}

/// One PACKET_AUXDATA control message as the kernel lays it out.
fn auxdata_cmsg(status: u32, tci: u16, tpid: u16) -> Vec<u8> {
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let mut v = Vec::new();
    v.extend_from_slice(&(hdr + auxdata::LEN).to_ne_bytes());
    v.extend_from_slice(&libc::SOL_PACKET.to_ne_bytes());
    v.extend_from_slice(&libc::PACKET_AUXDATA.to_ne_bytes());
    v.resize(hdr, 0);
    let mut data = [0u8; auxdata::LEN];
    data[auxdata::STATUS].copy_from_slice(&status.to_ne_bytes());
    data[auxdata::VLAN_TCI].copy_from_slice(&tci.to_ne_bytes());
    data[auxdata::VLAN_TPID].copy_from_slice(&tpid.to_ne_bytes());
    v.extend_from_slice(&data);
    v
}
