//! Probe frames: ICMP echo from a test address, ARP requests and replies.
//! Pure builders and validating parsers.

use crate::datapath::arp::{arp_frame as arp, eth_frame as eth, inet_checksum};
use crate::datapath::frame::*;
use std::net::Ipv4Addr;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_HLEN: usize = 8;
/// Probe payload: send timestamp (ns, 8 bytes), probe type (4), nonce (4).
pub const PROBE_PAYLOAD_LEN: usize = 16;
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

/// The payload identifying one of our probes.
pub fn probe_payload(sent_ns: u64, nonce: u32) -> [u8; PROBE_PAYLOAD_LEN] {
    let mut p = [0u8; PROBE_PAYLOAD_LEN];
    p[..8].copy_from_slice(&sent_ns.to_be_bytes());
    p[8..12].copy_from_slice(&PROBE_TYPE_FAILURE_DETECTION.to_be_bytes());
    p[12..16].copy_from_slice(&nonce.to_be_bytes());
    p
}

/// The nonce of probe `seq` on member `slot`: unguessable without the
/// daemon's secret, so forged replies count for nothing.
pub fn probe_nonce(secret: u64, slot: u8, seq: u16) -> u32 {
    fmix64(secret ^ (u64::from(slot) << 16 | u64::from(seq))) as u32
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

/// Checks a reply's payload against what we sent: our probe type and the
/// nonce of that sequence number.
pub fn payload_matches(p: &[u8; PROBE_PAYLOAD_LEN], nonce: u32) -> bool {
    p[8..12] == PROBE_TYPE_FAILURE_DETECTION.to_be_bytes() && p[12..16] == nonce.to_be_bytes()
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
    /// An echo reply to one of our probes (id, nonce and address checked).
    EchoReply { from: Ipv4Addr, seq: u16 },
    /// An echo reply that is not one of our probes.
    Foreign { from: Ipv4Addr },
    /// Anything else.
    Ignored,
}

/// Sorts a probe frame received on member `slot` (MAC `mac`, test address
/// `test_addr`): the whole decision of the control side, without I/O.
pub fn probe_input(
    f: &[u8],
    slot: u8,
    mac: Mac,
    test_addr: Option<Ipv4Addr>,
    icmp_id: u16,
    secret: u64,
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
    let ours = Some(r.dst) == test_addr
        && r.id == icmp_id
        && payload_matches(&r.payload, probe_nonce(secret, slot, r.seq));
    if ours {
        ProbeInput::EchoReply {
            from: r.src,
            seq: r.seq,
        }
    } else {
        ProbeInput::Foreign { from: r.src }
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
        let c = inet_checksum(&r[icmp..icmp + 24]);
        r[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
        r
    }

    #[test]
    fn echo_round_trip_and_validation() {
        let src = Ipv4Addr::new(192, 0, 2, 201);
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        let n = probe_nonce(99, 1, 7);
        let req = echo_request(A, B, src, dst, 0x1234, 7, &probe_payload(5, n));
        let p = etherparse::SlicedPacket::from_ethernet(&req).unwrap();
        assert!(matches!(p.net, Some(etherparse::NetSlice::Ipv4(_))));
        let rep = reflect(&req);
        let r = parse_echo_reply(&rep).expect("valid reply");
        assert_eq!((r.src, r.dst, r.id, r.seq), (dst, src, 0x1234, 7));
        assert!(payload_matches(&r.payload, n));
        assert!(!payload_matches(&r.payload, n ^ 1));
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
        let req = echo_request(B, A, router, ta, 9, 3, &probe_payload(1, 2));
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
