//! Probe frames: ICMP echo from a test address, ARP requests and replies.
//! Pure builders and validating parsers.

use crate::wire::arp::op::{REPLY as ARP_OP_REPLY, REQUEST as ARP_OP_REQUEST};
use crate::wire::ethernet::{self, ethertype, Address as Mac};
use crate::wire::{arp, icmpv4, ipv4, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Probe payload: counter (8 bytes), probe type (4), keyed tag (8).
pub const PROBE_PAYLOAD_LEN: usize = 20;
const PAYLOAD_COUNTER: std::ops::Range<usize> = 0..8;
const PAYLOAD_TYPE: std::ops::Range<usize> = 8..12;
const PAYLOAD_TAG: std::ops::Range<usize> = 12..20;
/// Bytes of the SipHash-2-4 key (128 bits).
pub const PROBE_KEY_LEN: usize = 16;
/// Probe type of a failure-detection probe (in.mpathd's payload field).
pub const PROBE_TYPE_FAILURE_DETECTION: u32 = 1;
/// What a tag is computed over: every field of a [`ProbeId`], big-endian;
/// the two addresses follow at [`ADDRS`](tag_input::ADDRS), 4 bytes each for
/// IPv4 (the layout tags have always had) or 16 each for IPv6.
mod tag_input {
    use std::ops::Range;
    pub const COUNTER: Range<usize> = 0..8;
    pub const SLOT: usize = 8;
    pub const ID: Range<usize> = 9..11;
    pub const SEQ: Range<usize> = 11..13;
    pub const ADDRS: usize = 13;
    /// The longest input: two IPv6 addresses.
    pub const MAX_LEN: usize = ADDRS + 2 * super::ipv6::ADDRESS_LEN;
}
/// Probes are link-local: they must not be routed past the first hop.
const PROBE_TTL: u8 = 1;
/// The TTL of our answers to pings, Linux's default.
const ECHO_ANSWER_TTL: u8 = 64;

/// An Ethernet/IPv4 ARP frame.
fn arp_frame(op: u16, src: Mac, dst: Mac, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    arp::Repr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    }
    .frame(src, dst)
}

/// A broadcast ARP request for `target` (sender 0.0.0.0 makes it an RFC 5227 probe).
pub fn arp_request(src_mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        ARP_OP_REQUEST,
        src_mac,
        ethernet::BROADCAST,
        src_mac,
        sender,
        ethernet::UNSPECIFIED,
        target,
    )
}

/// The answer to an ARP request for a test address.
pub fn arp_reply(src_mac: Mac, src_ip: Ipv4Addr, dst_mac: Mac, dst_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(ARP_OP_REPLY, src_mac, dst_mac, src_mac, src_ip, dst_mac, dst_ip)
}

/// An ARP frame as the control side needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
    pub op: u16,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tpa: Ipv4Addr,
    pub dst: Mac,
}

pub fn parse_arp_info(f: &[u8]) -> Option<ArpInfo> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    if eth.ethertype() != ethertype::ARP {
        return None;
    }
    let a = arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).ok()?).ok()?;
    Some(ArpInfo {
        op: a.operation,
        sha: a.source_hardware_addr,
        spa: a.source_protocol_addr,
        tpa: a.target_protocol_addr,
        dst: eth.dst_addr(),
    })
}

/// The secret that authenticates our probes: a SipHash-2-4 key drawn from
/// getrandom at start-up. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeKey([u8; PROBE_KEY_LEN]);

impl std::fmt::Debug for ProbeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeKey(..)")
    }
}

/// What a probe's tag binds together: a reply only verifies for the exact
/// probe (counter), member, ICMP id and sequence, test address and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeId {
    pub counter: u64,
    pub slot: u8,
    pub id: u16,
    pub seq: u16,
    pub test_addr: IpAddr,
    pub target: IpAddr,
}

/// An address's bytes as the tag takes them.
fn addr_bytes(a: &IpAddr, out: &mut [u8]) -> usize {
    match a {
        IpAddr::V4(a) => {
            out[..ipv4::ADDRESS_LEN].copy_from_slice(&a.octets());
            ipv4::ADDRESS_LEN
        }
        IpAddr::V6(a) => {
            out[..ipv6::ADDRESS_LEN].copy_from_slice(&a.octets());
            ipv6::ADDRESS_LEN
        }
    }
}

impl ProbeKey {
    pub fn new(key: [u8; PROBE_KEY_LEN]) -> ProbeKey {
        ProbeKey(key)
    }

    /// SipHash-2-4 over every field of `p`: a keyed PRF, so without the key
    /// a LAN host cannot produce a tag for a probe it has not seen.
    pub fn tag(&self, p: &ProbeId) -> u64 {
        use std::hash::Hasher;
        // One buffer, one write: a write per field would cost SipHash's
        // tail handling each time, and the data plane computes two tags per
        // echo reply to a test address.
        let mut m = [0u8; tag_input::MAX_LEN];
        m[tag_input::COUNTER].copy_from_slice(&p.counter.to_be_bytes());
        m[tag_input::SLOT] = p.slot;
        m[tag_input::ID].copy_from_slice(&p.id.to_be_bytes());
        m[tag_input::SEQ].copy_from_slice(&p.seq.to_be_bytes());
        let mut len = tag_input::ADDRS;
        len += addr_bytes(&p.test_addr, &mut m[len..]);
        len += addr_bytes(&p.target, &mut m[len..]);
        let mut h = siphasher::sip::SipHasher24::new_with_key(&self.0);
        h.write(&m[..len]);
        h.finish()
    }

    /// The payload of probe `p`.
    pub fn seal(&self, p: &ProbeId) -> [u8; PROBE_PAYLOAD_LEN] {
        let mut out = [0u8; PROBE_PAYLOAD_LEN];
        out[PAYLOAD_COUNTER].copy_from_slice(&p.counter.to_be_bytes());
        out[PAYLOAD_TYPE].copy_from_slice(&PROBE_TYPE_FAILURE_DETECTION.to_be_bytes());
        out[PAYLOAD_TAG].copy_from_slice(&self.tag(p).to_be_bytes());
        out
    }

    /// The counter of a reply to one of our probes on member `slot`, or
    /// None when the payload was not made by us for exactly this reply's
    /// id, sequence and addresses (a reply's source is the target, its
    /// destination the test address).
    pub fn open(&self, r: &EchoReply, slot: u8, id: u16) -> Option<u64> {
        if r.payload[PAYLOAD_TYPE] != PROBE_TYPE_FAILURE_DETECTION.to_be_bytes() || r.id != id {
            return None;
        }
        let counter = u64::from_be_bytes(r.payload[PAYLOAD_COUNTER].try_into().ok()?);
        let tag = u64::from_be_bytes(r.payload[PAYLOAD_TAG].try_into().ok()?);
        let mut p = ProbeId {
            counter,
            slot,
            id,
            seq: r.seq,
            test_addr: r.dst,
            target: r.src,
        };
        // Not constant-time: the tag is 64 bits and a wrong guess teaches
        // an attacker nothing usable within a probe's lifetime.
        if self.tag(&p) == tag {
            return Some(counter);
        }
        // An answer to target discovery: the echo went to the all-hosts
        // (all-nodes) group.
        p.target = match r.dst {
            IpAddr::V4(_) => IpAddr::V4(ipv4::ALL_HOSTS),
            IpAddr::V6(_) => IpAddr::V6(ipv6::ALL_NODES),
        };
        (self.tag(&p) == tag).then_some(counter)
    }
}

/// An ICMP echo request carrying a probe payload, from a test address.
#[allow(clippy::too_many_arguments)]
pub fn echo_request(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
    payload: &[u8; PROBE_PAYLOAD_LEN],
) -> Vec<u8> {
    let icmp = icmpv4::Repr::EchoRequest {
        ident: id,
        seq_no: seq,
        data: payload,
    };
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: ipv4::protocol::ICMP,
        payload_len: icmp.buffer_len(),
        ttl: PROBE_TTL,
        dscp_ecn: 0,
        dont_frag: true,
        router_alert: false,
    };
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: ethertype::IPV4,
    };
    ip.frame(eth, |p| icmp.emit(&mut icmpv4::Packet::new_unchecked(p)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Ethernet source: a reply counts only from the target's pinned MAC.
    pub eth_src: Mac,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub seq: u16,
    pub payload: [u8; PROBE_PAYLOAD_LEN],
}

/// An ICMP echo message in an untagged Ethernet/IPv4 frame.
struct Echo<'a> {
    eth_src: Mac,
    ip: ipv4::Packet<&'a [u8]>,
    icmp: icmpv4::Repr<'a>,
}

/// The layers of an echo message, or None when any does not parse
/// (truncated, inconsistent lengths, bad ICMP checksum, not ICMP, not echo).
fn parse_echo(f: &[u8]) -> Option<Echo<'_>> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    if eth.ethertype() != ethertype::IPV4 {
        return None;
    }
    // The view, not the Repr: the data plane runs this on every echo reply
    // to a test address, and needs only the version and protocol checked.
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    if ip.version() != ipv4::VERSION || ip.protocol() != ipv4::protocol::ICMP {
        return None;
    }
    let icmp = icmpv4::Repr::parse(&icmpv4::Packet::new_checked(ip.payload()).ok()?).ok()?;
    Some(Echo {
        eth_src: eth.src_addr(),
        ip,
        icmp,
    })
}

/// Parses an ICMP or ICMPv6 echo reply carrying a probe payload; anything
/// else (truncated, bad checksum, other type or code, short payload) is None.
pub fn parse_echo_reply(f: &[u8]) -> Option<EchoReply> {
    if ethernet::Frame::new_checked(f).ok()?.ethertype() == ethertype::IPV6 {
        return super::frames6::parse_echo6_reply(f);
    }
    let Echo { eth_src, ip, icmp } = parse_echo(f)?;
    let icmpv4::Repr::EchoReply { ident, seq_no, data } = icmp else {
        return None;
    };
    Some(EchoReply {
        eth_src,
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        id: ident,
        seq: seq_no,
        payload: data.get(..PROBE_PAYLOAD_LEN)?.try_into().ok()?,
    })
}

/// The answer to an ICMP echo request for a test address (so an
/// administrator can ping it, as on Solaris). None for anything else,
/// including requests truncated on the way to us.
pub fn echo_reply_to(req: &[u8], my_mac: Mac, test_addr: Ipv4Addr) -> Option<Vec<u8>> {
    let Echo { eth_src, ip, icmp } = parse_echo(req)?;
    if ip.dst_addr() != test_addr || ip.is_fragment() {
        return None; // not ours, or a fragment
    }
    let icmpv4::Repr::EchoRequest { ident, seq_no, data } = icmp else {
        return None;
    };
    let reply = icmpv4::Repr::EchoReply { ident, seq_no, data };
    let ipr = ipv4::Repr {
        src_addr: test_addr,
        dst_addr: ip.src_addr(),
        protocol: ipv4::protocol::ICMP,
        payload_len: reply.buffer_len(),
        ttl: ECHO_ANSWER_TTL,
        dscp_ecn: 0,
        dont_frag: false,
        router_alert: false,
    };
    let out = ethernet::Repr {
        src_addr: my_mac,
        dst_addr: eth_src,
        ethertype: ethertype::IPV4,
    };
    Some(ipr.frame(out, |p| reply.emit(&mut icmpv4::Packet::new_unchecked(p))))
}

/// What a probe frame handed over by the data plane asks of the control side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeInput {
    /// An ARP request for the member's test address: send this answer (the
    /// test address lives in the daemon, not in the kernel).
    AnswerArp(Vec<u8>),
    /// An ARP reply (or a solicited neighbour advertisement) addressed to
    /// the member's MAC: for the prober.
    ArpReply { from: IpAddr, mac: Mac },
    /// A neighbour solicitation for the member's IPv6 test address: send
    /// this advertisement (once the address passed DAD).
    AnswerNs(Vec<u8>),
    /// Another host claims the member's IPv6 test address: an
    /// advertisement for it, or (`dad_probe`) another host's DAD probe for
    /// it, which an assigned address answers with `defence`.
    Duplicate {
        mac: Mac,
        dad_probe: bool,
        defence: Vec<u8>,
    },
    /// An MLD query the member's test address's solicited-node group
    /// answers: send this report (once the address passed DAD).
    AnswerMld(Vec<u8>),
    /// An echo request to the test address: send this answer.
    AnswerEcho(Vec<u8>),
    /// An echo reply whose tag opened under our key: for the prober, which
    /// still checks counter, sequence, target and pinned MAC.
    EchoReply {
        from: IpAddr,
        eth_src: Mac,
        seq: u16,
        counter: u64,
    },
    /// An echo reply to the test address that is not one of our probes.
    NotProbe,
    /// Anything else.
    Ignored,
}

/// Sorts a probe frame received on member `slot` (MAC `mac`, test
/// addresses `test_addr` and `test6`): the whole decision of the control
/// side, without I/O. The data plane checked the tag already; it is checked
/// again here so the control side never trusts a frame it did not verify
/// itself.
pub fn probe_input(
    f: &[u8],
    slot: u8,
    mac: Mac,
    test_addr: Option<Ipv4Addr>,
    test6: Option<Ipv6Addr>,
    icmp_id: u16,
    key: &ProbeKey,
) -> ProbeInput {
    if let Some(a) = parse_arp_info(f) {
        return if a.op == ARP_OP_REQUEST && Some(a.tpa) == test_addr {
            ProbeInput::AnswerArp(arp_reply(mac, a.tpa, a.sha, a.spa))
        } else if a.op == ARP_OP_REPLY && a.dst == mac {
            ProbeInput::ArpReply {
                from: IpAddr::V4(a.spa),
                mac: a.sha,
            }
        } else {
            ProbeInput::Ignored
        };
    }
    if let Some(nd) = super::frames6::parse_nd(f) {
        return super::frames6::nd_input(&nd, mac, test6);
    }
    if let (Some(ta), Some(q)) = (test6, super::frames6::parse_mld_query(f)) {
        let group = ipv6::solicited_node(ta);
        return if q.is_unspecified() || q == group {
            ProbeInput::AnswerMld(super::frames6::mld_report(mac, ta, group, false))
        } else {
            ProbeInput::Ignored
        };
    }
    if let Some(ta) = test_addr {
        if let Some(reply) = echo_reply_to(f, mac, ta) {
            return ProbeInput::AnswerEcho(reply);
        }
    }
    if let Some(ta) = test6 {
        if let Some(reply) = super::frames6::echo6_reply_to(f, mac, ta) {
            return ProbeInput::AnswerEcho(reply);
        }
    }
    let Some(r) = parse_echo_reply(f) else {
        return ProbeInput::Ignored;
    };
    let mine = match r.dst {
        IpAddr::V4(d) => Some(d) == test_addr,
        IpAddr::V6(d) => Some(d) == test6,
    };
    match key.open(&r, slot, icmp_id).filter(|_| mine) {
        Some(counter) => ProbeInput::EchoReply {
            from: r.src,
            eth_src: r.eth_src,
            seq: r.seq,
            counter,
        },
        None => ProbeInput::NotProbe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::frame::{dst_mac, ARP_TPA, BROADCAST_MAC, ETH_HLEN};

    const A: Mac = [2, 0, 0, 0, 0, 1];
    const B: Mac = [2, 0, 0, 0, 0, 2];

    /// Where the ICMP message of our (option-less) frames starts.
    const ICMP_AT: usize = ETH_HLEN + ipv4::MIN_HEADER_LEN;

    /// Turns our request into the reply a kernel would send.
    fn reflect(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        let mut eth = ethernet::Frame::new_unchecked(&mut r[..]);
        let from = eth.src_addr();
        eth.set_dst_addr(from);
        eth.set_src_addr(B);
        let mut ip = ipv4::Packet::new_unchecked(eth.payload_mut());
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(d);
        ip.set_dst_addr(s);
        let mut icmp = icmpv4::Packet::new_unchecked(ip.payload_mut());
        icmp.set_msg_type(icmpv4::msg_type::ECHO_REPLY);
        icmp.fill_checksum();
        r
    }

    #[test]
    fn echo_round_trip_and_validation() {
        let src = Ipv4Addr::new(192, 0, 2, 201);
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        let key = ProbeKey::new([9; PROBE_KEY_LEN]);
        let id = ProbeId {
            counter: 5,
            slot: 1,
            id: 0x1234,
            seq: 7,
            test_addr: IpAddr::V4(src),
            target: IpAddr::V4(dst),
        };
        let req = echo_request(A, B, src, dst, 0x1234, 7, &key.seal(&id));
        let p = etherparse::SlicedPacket::from_ethernet(&req).unwrap();
        assert!(matches!(p.net, Some(etherparse::NetSlice::Ipv4(_))));
        let rep = reflect(&req);
        let r = parse_echo_reply(&rep).expect("valid reply");
        assert_eq!(
            (r.src, r.dst, r.id, r.seq, r.eth_src),
            (IpAddr::V4(dst), IpAddr::V4(src), 0x1234, 7, B)
        );
        assert_eq!(key.open(&r, 1, 0x1234), Some(5));
        assert_eq!(key.open(&r, 2, 0x1234), None, "another member's");
        assert_eq!(key.open(&r, 1, 0x1235), None, "another id");
        assert_eq!(
            ProbeKey::new([8; PROBE_KEY_LEN]).open(&r, 1, 0x1234),
            None,
            "another key"
        );
        for (field, delta) in [(0usize, 1u8), (7, 1), (12, 1), (19, 0x80)] {
            let mut t = r;
            t.payload[field] ^= delta;
            assert_eq!(key.open(&t, 1, 0x1234), None, "payload byte {field} altered");
        }
        let mut t = r;
        t.seq ^= 1;
        assert_eq!(key.open(&t, 1, 0x1234), None, "another sequence number");
        t = r;
        t.src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(key.open(&t, 1, 0x1234), None, "another target");
        assert_eq!(parse_echo_reply(&req), None, "a request is not a reply");
        let mut bad = rep.clone();
        bad[ICMP_AT + icmpv4::HEADER_LEN + PAYLOAD_COUNTER.start + 2] ^= 0xff;
        assert_eq!(parse_echo_reply(&bad), None, "checksum");
        for n in 0..rep.len() {
            let _ = parse_echo_reply(&rep[..n]);
        }
        assert_eq!(
            parse_echo_reply(&rep[..ICMP_AT + icmpv4::HEADER_LEN + PAYLOAD_TAG.start]),
            None,
            "truncated"
        );
    }

    #[test]
    fn echo_requests_to_a_test_address_are_answered() {
        let ta = Ipv4Addr::new(192, 0, 2, 201);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let req = echo_request(B, A, router, ta, 9, 3, &[7; PROBE_PAYLOAD_LEN]);
        let rep = echo_reply_to(&req, A, ta).expect("answered");
        let r = parse_echo_reply(&rep).expect("a valid echo reply");
        assert_eq!(
            (r.src, r.dst, r.id, r.seq),
            (IpAddr::V4(ta), IpAddr::V4(router), 9, 3)
        );
        assert_eq!(dst_mac(&rep), B);
        assert_eq!(echo_reply_to(&req, A, router), None, "not for this address");
        assert_eq!(echo_reply_to(&rep, A, ta), None, "a reply is not answered");
    }

    #[test]
    fn the_tag_hashes_the_fields_concatenated() {
        // The layout the tag has always had: one buffer of every field.
        let key = [5u8; PROBE_KEY_LEN];
        let p = ProbeId {
            counter: 0x0102_0304_0506_0708,
            slot: 9,
            id: 0x0a0b,
            seq: 0x0c0d,
            test_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 201)),
            target: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        };
        let mut m = Vec::new();
        m.extend_from_slice(&p.counter.to_be_bytes());
        m.push(p.slot);
        m.extend_from_slice(&p.id.to_be_bytes());
        m.extend_from_slice(&p.seq.to_be_bytes());
        m.extend_from_slice(&[192, 0, 2, 201]);
        m.extend_from_slice(&[192, 0, 2, 1]);
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write(&m);
        assert_eq!(ProbeKey::new(key).tag(&p), h.finish());
    }

    #[test]
    fn arp_frames_parse_back() {
        let a = arp_request(A, Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(192, 0, 2, 1));
        let i = parse_arp_info(&a).unwrap();
        assert_eq!(
            (i.op, i.sha, i.spa, i.dst),
            (ARP_OP_REQUEST, A, Ipv4Addr::UNSPECIFIED, BROADCAST_MAC)
        );
        let r = arp_reply(A, Ipv4Addr::new(192, 0, 2, 201), B, Ipv4Addr::new(192, 0, 2, 1));
        let i = parse_arp_info(&r).unwrap();
        assert_eq!(
            (i.op, i.spa, i.dst, i.tpa),
            (
                ARP_OP_REPLY,
                Ipv4Addr::new(192, 0, 2, 201),
                B,
                Ipv4Addr::new(192, 0, 2, 1)
            )
        );
        assert_eq!(parse_arp_info(&r[..ARP_TPA.start]), None);
    }
}

#[cfg(test)]
mod capture_tests {
    use super::*;
    use crate::datapath::frame::ETH_HLEN;

    #[test]
    fn a_captured_linux_ping_to_a_test_address_is_answered() {
        let mut f = vec![
            0x76, 0x8f, 0xfe, 0x47, 0x4c, 0xcd, 0x0a, 0x8e, 0x45, 0xbd, 0x44, 0x2e, 0x08, 0x00,
        ];
        f.extend_from_slice(&crate::wire::from_hex(crate::wire::KERNEL_PING));
        let r = echo_reply_to(&f, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 201));
        assert!(r.is_some());
    }

    /// A ping between two namespaces and the kernel's answer (tcpdump -xx).
    const PING: &str = "0200 0000 000b 0200 0000 000a 0800 4500 0054 663a 4000 4001 4fa4 c000 0201 c000 \
        02c9 0800 8231 125f 0001 538b 0c6b 0000 0000 44a5 0000 0000 0000 1011 1213 1415 \
        1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637";
    const PONG: &str = "0200 0000 000a 0200 0000 000b 0800 4500 0054 6322 0000 4001 92bc c000 02c9 c000 \
        0201 0000 8a31 125f 0001 538b 0c6b 0000 0000 44a5 0000 0000 0000 1011 1213 1415 \
        1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637";

    #[test]
    fn our_answer_to_a_ping_is_the_kernels_but_for_the_ip_id() {
        let req = crate::wire::from_hex(PING);
        let mut kernel = crate::wire::from_hex(PONG);
        let ours = echo_reply_to(&req, [2, 0, 0, 0, 0, 0x0b], Ipv4Addr::new(192, 0, 2, 201)).unwrap();
        let mut ip = ipv4::Packet::new_unchecked(&mut kernel[ETH_HLEN..]);
        ip.set_ident(0);
        ip.fill_checksum();
        assert_eq!(ours, kernel);
    }
}
