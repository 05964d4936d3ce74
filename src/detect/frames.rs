//! Probe frames: ICMP echo from a test address, ARP requests and replies.
//! Pure builders and validating parsers.

use crate::datapath::arp::{arp_frame as arp, eth_frame as eth, inet_checksum};
use crate::datapath::frame::*;
use std::net::Ipv4Addr;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_HLEN: usize = 8;
/// Probe payload: counter (8 bytes), probe type (4), keyed tag (8).
pub const PROBE_PAYLOAD_LEN: usize = 20;
const PAYLOAD_COUNTER: std::ops::Range<usize> = 0..8;
const PAYLOAD_TYPE: std::ops::Range<usize> = 8..12;
const PAYLOAD_TAG: std::ops::Range<usize> = 12..20;
/// Bytes of the SipHash-2-4 key (128 bits).
pub const PROBE_KEY_LEN: usize = 16;
/// Probe type of a failure-detection probe (in.mpathd's payload field).
pub const PROBE_TYPE_FAILURE_DETECTION: u32 = 1;
/// Probes are link-local: they must not be routed past the first hop.
const PROBE_TTL: u8 = 1;
/// A broadcast ARP request for `target` (sender 0.0.0.0 makes it an RFC 5227 probe).
pub fn arp_request(src_mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp(
        ARP_OP_REQUEST,
        src_mac,
        BROADCAST_MAC,
        src_mac,
        sender,
        [0; 6],
        target,
    )
}

/// The answer to an ARP request for a test address.
pub fn arp_reply(src_mac: Mac, src_ip: Ipv4Addr, dst_mac: Mac, dst_ip: Ipv4Addr) -> Vec<u8> {
    arp(ARP_OP_REPLY, src_mac, dst_mac, src_mac, src_ip, dst_mac, dst_ip)
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
    if ethertype(f.get(..ETH_HLEN)?) != ETH_P_ARP {
        return None;
    }
    let (op, spa, tpa) = parse_arp(f).ok()?;
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&f[ARP_SHA..ARP_SHA + 6]);
    Some(ArpInfo {
        op,
        sha,
        spa,
        tpa,
        dst: dst_mac(f),
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
    pub test_addr: Ipv4Addr,
    pub target: Ipv4Addr,
}

impl ProbeKey {
    pub fn new(key: [u8; PROBE_KEY_LEN]) -> ProbeKey {
        ProbeKey(key)
    }

    /// SipHash-2-4 over every field of `p`: a keyed PRF, so without the key
    /// a LAN host cannot produce a tag for a probe it has not seen.
    pub fn tag(&self, p: &ProbeId) -> u64 {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_key(&self.0);
        let mut m = [0u8; 8 + 1 + 2 + 2 + 4 + 4];
        m[..8].copy_from_slice(&p.counter.to_be_bytes());
        m[8] = p.slot;
        m[9..11].copy_from_slice(&p.id.to_be_bytes());
        m[11..13].copy_from_slice(&p.seq.to_be_bytes());
        m[13..17].copy_from_slice(&p.test_addr.octets());
        m[17..21].copy_from_slice(&p.target.octets());
        h.write(&m);
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
        // An answer to target discovery: the echo went to the all-hosts group.
        p.target = crate::detect::probe::ALL_HOSTS;
        (self.tag(&p) == tag).then_some(counter)
    }
}

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
    let ip_len = 20 + ICMP_HLEN + PROBE_PAYLOAD_LEN;
    let mut f = eth(dst_mac, src_mac, ETH_P_IP, ETH_HLEN + ip_len);
    let ip = &mut f[ETH_HLEN..ETH_HLEN + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = PROBE_TTL;
    ip[9] = IPPROTO_ICMP_PROBE;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = inet_checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut f[ETH_HLEN + 20..ETH_HLEN + ip_len];
    icmp[0] = ICMP_ECHO_REQUEST;
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[8..].copy_from_slice(payload);
    let c = inet_checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

const IPPROTO_ICMP_PROBE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Ethernet source: a reply counts only from the target's pinned MAC.
    pub eth_src: Mac,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub id: u16,
    pub seq: u16,
    pub payload: [u8; PROBE_PAYLOAD_LEN],
}

/// Parses an ICMP echo reply carrying a probe payload; anything else
/// (truncated, bad checksum, other type or code, short payload) is None.
pub fn parse_echo_reply(f: &[u8]) -> Option<EchoReply> {
    if f.len() < ETH_HLEN + 20 || ethertype(f) != ETH_P_IP {
        return None;
    }
    let ip = &f[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_ICMP_PROBE {
        return None;
    }
    let total = usize::from(be16(ip, 2));
    if total < ihl + ICMP_HLEN + PROBE_PAYLOAD_LEN || total > ip.len() {
        return None;
    }
    let icmp = &ip[ihl..total];
    if icmp[0] != ICMP_ECHO_REPLY || icmp[1] != 0 || inet_checksum(icmp) != 0 {
        return None;
    }
    let mut payload = [0u8; PROBE_PAYLOAD_LEN];
    payload.copy_from_slice(&icmp[ICMP_HLEN..ICMP_HLEN + PROBE_PAYLOAD_LEN]);
    Some(EchoReply {
        eth_src: src_mac(f),
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        id: be16(icmp, 4),
        seq: be16(icmp, 6),
        payload,
    })
}

/// The answer to an ICMP echo request for a test address (so an
/// administrator can ping it, as on Solaris). None for anything else,
/// including requests truncated on the way to us.
pub fn echo_reply_to(req: &[u8], my_mac: Mac, test_addr: Ipv4Addr) -> Option<Vec<u8>> {
    if req.len() < ETH_HLEN + 20 || ethertype(req) != ETH_P_IP {
        return None;
    }
    let ip = &req[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ip[0] >> 4 != 4
        || ihl < 20
        || ip[9] != IPPROTO_ICMP_PROBE
        || total < ihl + ICMP_HLEN
        || total > ip.len()
    {
        return None;
    }
    if ip[16..20] != test_addr.octets() || be16(ip, 6) & 0x3fff != 0 {
        return None; // not ours, or a fragment
    }
    let icmp = &ip[ihl..total];
    if icmp[0] != ICMP_ECHO_REQUEST || icmp[1] != 0 || inet_checksum(icmp) != 0 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let mut f = eth(src_mac(req), my_mac, ETH_P_IP, ETH_HLEN + 20 + icmp.len());
    let out = &mut f[ETH_HLEN..ETH_HLEN + 20];
    out[0] = 0x45;
    out[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    out[8] = 64;
    out[9] = IPPROTO_ICMP_PROBE;
    out[12..16].copy_from_slice(&test_addr.octets());
    out[16..20].copy_from_slice(&src.octets());
    let c = inet_checksum(out);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    let body = &mut f[ETH_HLEN + 20..ETH_HLEN + 20 + icmp.len()];
    body.copy_from_slice(icmp);
    body[0] = ICMP_ECHO_REPLY;
    body[2..4].copy_from_slice(&[0, 0]);
    let c = inet_checksum(body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    Some(f)
}

/// What a probe frame handed over by the data plane asks of the control side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeInput {
    /// An ARP request for the member's test address: send this answer (the
    /// test address lives in the daemon, not in the kernel).
    AnswerArp(Vec<u8>),
    /// An ARP reply addressed to the member's MAC: for the prober.
    ArpReply { from: Ipv4Addr, mac: Mac },
    /// An echo request to the test address: send this answer.
    AnswerEcho(Vec<u8>),
    /// An echo reply whose tag opened under our key: for the prober, which
    /// still checks counter, sequence, target and pinned MAC.
    EchoReply {
        from: Ipv4Addr,
        eth_src: Mac,
        seq: u16,
        counter: u64,
    },
    /// An echo reply to the test address that is not one of our probes.
    NotProbe,
    /// Anything else.
    Ignored,
}

/// Sorts a probe frame received on member `slot` (MAC `mac`, test address
/// `test_addr`): the whole decision of the control side, without I/O. The
/// data plane checked the tag already; it is checked again here so the
/// control side never trusts a frame it did not verify itself.
pub fn probe_input(
    f: &[u8],
    slot: u8,
    mac: Mac,
    test_addr: Option<Ipv4Addr>,
    icmp_id: u16,
    key: &ProbeKey,
) -> ProbeInput {
    if let Some(a) = parse_arp_info(f) {
        return if a.op == ARP_OP_REQUEST && Some(a.tpa) == test_addr {
            ProbeInput::AnswerArp(arp_reply(mac, a.tpa, a.sha, a.spa))
        } else if a.op == ARP_OP_REPLY && a.dst == mac {
            ProbeInput::ArpReply {
                from: a.spa,
                mac: a.sha,
            }
        } else {
            ProbeInput::Ignored
        };
    }
    if let Some(ta) = test_addr {
        if let Some(reply) = echo_reply_to(f, mac, ta) {
            return ProbeInput::AnswerEcho(reply);
        }
    }
    let Some(r) = parse_echo_reply(f) else {
        return ProbeInput::Ignored;
    };
    match key.open(&r, slot, icmp_id).filter(|_| Some(r.dst) == test_addr) {
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

    const A: Mac = [2, 0, 0, 0, 0, 1];
    const B: Mac = [2, 0, 0, 0, 0, 2];

    /// Turns our request into the reply a kernel would send.
    fn reflect(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r.copy_within(6..12, 0);
        r[6..12].copy_from_slice(&B);
        let ip = ETH_HLEN;
        let (s, d) = (r[ip + 12..ip + 16].to_vec(), r[ip + 16..ip + 20].to_vec());
        r[ip + 12..ip + 16].copy_from_slice(&d);
        r[ip + 16..ip + 20].copy_from_slice(&s);
        let icmp = ip + 20;
        r[icmp] = ICMP_ECHO_REPLY;
        r[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
        let c = inet_checksum(&r[icmp..icmp + ICMP_HLEN + PROBE_PAYLOAD_LEN]);
        r[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
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
            test_addr: src,
            target: dst,
        };
        let req = echo_request(A, B, src, dst, 0x1234, 7, &key.seal(&id));
        let p = etherparse::SlicedPacket::from_ethernet(&req).unwrap();
        assert!(matches!(p.net, Some(etherparse::NetSlice::Ipv4(_))));
        let rep = reflect(&req);
        let r = parse_echo_reply(&rep).expect("valid reply");
        assert_eq!((r.src, r.dst, r.id, r.seq, r.eth_src), (dst, src, 0x1234, 7, B));
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
        t.src = Ipv4Addr::new(192, 0, 2, 9);
        assert_eq!(key.open(&t, 1, 0x1234), None, "another target");
        assert_eq!(parse_echo_reply(&req), None, "a request is not a reply");
        let mut bad = rep.clone();
        bad[ETH_HLEN + 20 + 10] ^= 0xff;
        assert_eq!(parse_echo_reply(&bad), None, "checksum");
        for n in 0..rep.len() {
            let _ = parse_echo_reply(&rep[..n]);
        }
        assert_eq!(parse_echo_reply(&rep[..ETH_HLEN + 40]), None, "truncated");
    }

    #[test]
    fn echo_requests_to_a_test_address_are_answered() {
        let ta = Ipv4Addr::new(192, 0, 2, 201);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let req = echo_request(B, A, router, ta, 9, 3, &[7; PROBE_PAYLOAD_LEN]);
        let rep = echo_reply_to(&req, A, ta).expect("answered");
        let r = parse_echo_reply(&rep).expect("a valid echo reply");
        assert_eq!((r.src, r.dst, r.id, r.seq), (ta, router, 9, 3));
        assert_eq!(dst_mac(&rep), B);
        assert_eq!(echo_reply_to(&req, A, router), None, "not for this address");
        assert_eq!(echo_reply_to(&rep, A, ta), None, "a reply is not answered");
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
        assert_eq!(parse_arp_info(&r[..30]), None);
    }
}

#[cfg(test)]
mod capture_tests {
    use super::*;

    #[test]
    fn a_captured_linux_ping_to_a_test_address_is_answered() {
        let hex = "4500 0054 985e 4000 4001 1d80 c000 0201 c000 02c9 0800 2abf 0a43 0001 e21c 026b \
                   0000 0000 1ea2 0100 0000 0000 1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 \
                   2425 2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637";
        let ip: Vec<u8> = hex
            .split_whitespace()
            .flat_map(|w| {
                [
                    u8::from_str_radix(&w[..2], 16).unwrap(),
                    u8::from_str_radix(&w[2..], 16).unwrap(),
                ]
            })
            .collect();
        let mut f = vec![
            0x76, 0x8f, 0xfe, 0x47, 0x4c, 0xcd, 0x0a, 0x8e, 0x45, 0xbd, 0x44, 0x2e, 0x08, 0x00,
        ];
        f.extend_from_slice(&ip);
        let r = echo_reply_to(&f, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 201));
        assert!(r.is_some());
    }
}
