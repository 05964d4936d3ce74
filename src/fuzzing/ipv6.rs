//! Fuzz target bodies for the IPv6 formats: the fixed header and the
//! extension-header walk, the ICMPv6 messages (echo, NDP, MLD), the NDP
//! link-layer rewrite of the outbound path, and the ping6 answer. Each
//! checks what must hold whatever the input; parse, emit and parse again
//! must agree.

use super::Input;
use crate::datapath::frame::*;
use crate::datapath::ndp::{mld_general_query, rewrite_ndp_lladdr, unsolicited_na};
use crate::detect::frames6::{echo6_reply_to, echo6_request, parse_echo6};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{icmpv6, ipv6ext, mld, ndisc, vlan};
use std::net::Ipv6Addr;

impl Input<'_> {
    fn ip6(&mut self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.u64()) << 64 | u128::from(self.u64()))
    }
}

/// The IPv6 header and the extension-header walk at every offset a tag
/// could put them, with the round trips of what parses; and the flow key.
pub fn ipv6_parse(data: &[u8]) {
    for at in [0, ETH_HLEN, ETH_HLEN + vlan::TAG_LEN] {
        let Some(b) = data.get(at..) else {
            continue;
        };
        let Ok(p) = ipv6::Packet::new_checked(b) else {
            continue;
        };
        if let Ok(r) = ipv6::Repr::parse(&p) {
            assert_eq!(r.payload_len, p.payload().len());
            let mut out = vec![0u8; r.total_len()];
            r.emit(&mut ipv6::Packet::new_unchecked(&mut out[..]));
            assert_eq!(out[..ipv6::HEADER_LEN], b[..ipv6::HEADER_LEN]);
        }
        if let Ok(u) = ipv6ext::walk(p.next_header(), p.payload()) {
            assert!(u.offset <= p.payload().len());
            assert!(!ipv6ext::is_extension(u.next_header) || u.fragment.is_some());
        }
        if let Ok(h) = ipv6ext::Header::new_checked(p.payload(), p.next_header()) {
            if let Ok(r) = ipv6ext::Repr::parse(&h) {
                let mut out = [0u8; ipv6ext::FRAGMENT_LEN];
                r.emit(&mut ipv6ext::Header::new_unchecked(&mut out[..], r.kind()));
                let again = ipv6ext::Header::new_checked(&out[..], r.kind()).expect("what we emit is whole");
                assert_eq!(ipv6ext::Repr::parse(&again), Ok(r));
            }
        }
    }
    if let Ok(Ipv6Flow::Flow(k)) = parse_ipv6_flow(data, ETH_HLEN) {
        assert!(data.len() >= ETH_HLEN + ipv6::HEADER_LEN);
        let _ = flow_hash6(&k, k.ports.into());
    }
    if let Ok(Class::Ipv6Unicast(_) | Class::Ndp { .. }) = classify(data) {
        assert_eq!(l3_of(data).0, ETH_P_IPV6);
    }
}

/// An ICMPv6 message from and to arbitrary addresses, read as echo, NDP
/// and MLD: what parses emits the same message again.
pub fn icmpv6_parse(data: &[u8]) {
    let mut inp = Input(data);
    let (src, dst) = (inp.ip6(), inp.ip6());
    let msg = inp.rest();
    let Ok(p) = icmpv6::Packet::new_checked(msg) else {
        return;
    };
    if let Ok(r) = icmpv6::Repr::parse(&src, &dst, &p) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, msg);
    }
    if let Ok(r) = ndisc::Repr::parse(&src, &dst, &p) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut out[..]));
        let q = icmpv6::Packet::new_checked(&out[..]).expect("what we emit is whole");
        assert_eq!(ndisc::Repr::parse(&src, &dst, &q), Ok(r));
    }
    if let Ok(opts) = ndisc::options(msg) {
        assert!(opts.count() <= ndisc::MAX_OPTIONS + 1);
    }
    if let Ok(r) = mld::Repr::parse(&src, &dst, &p) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut out[..]));
        let q = icmpv6::Packet::new_checked(&out[..]).expect("what we emit is whole");
        assert_eq!(mld::Repr::parse(&src, &dst, &q), Ok(r));
        if let mld::Repr::Report { nr_records, records } = r {
            assert!(mld::records(records, nr_records).all(|r| r.is_ok()));
        }
    }
}

/// The NDP rewrite of the outbound path: it changes nothing on an error,
/// and on success only the link-layer addresses and the checksum, which
/// verifies exactly when it did before.
pub fn ndp_rewrite(data: &[u8]) {
    let mut inp = Input(data);
    let mac = inp.mac();
    let f = inp.rest();
    let mut out = f.to_vec();
    let verifies = |f: &[u8]| -> Option<bool> {
        let (_, l3) = l3_of(f);
        let ip = ipv6::Packet::new_checked(f.get(l3..)?).ok()?;
        let u = ipv6ext::walk(ip.next_header(), ip.payload()).ok()?;
        let msg = &ip.payload()[u.offset..];
        Some(crate::wire::checksum::verify_v6(
            &ip.src_addr(),
            &ip.dst_addr(),
            next_header::ICMPV6,
            msg,
        ))
    };
    match rewrite_ndp_lladdr(&mut out, mac) {
        Err(Malformed) => assert_eq!(out, f),
        Ok(n) => {
            assert!(n <= ndisc::MAX_OPTIONS);
            assert_eq!(out.len(), f.len());
            assert_eq!(verifies(&out), verifies(f));
            assert!(matches!(
                classify(f),
                Ok(Class::Ndp { .. }) | Ok(Class::Multicast)
            ));
        }
    }
}

/// The answer to a ping6 of a test address: a well-formed echo reply from
/// it to the requester; and our probes parse back.
pub fn echo6(data: &[u8]) {
    let mut inp = Input(data);
    let my_mac = inp.mac();
    let test_addr = inp.ip6();
    let f = inp.rest();
    if let Some(reply) = echo6_reply_to(f, my_mac, test_addr) {
        assert_eq!(src_mac(&reply), my_mac);
        assert_eq!(dst_mac(&reply), src_mac(f));
        let e = parse_echo6(&reply).expect("our answer parses");
        assert_eq!(e.src, test_addr);
        assert!(matches!(e.icmp, icmpv6::Repr::EchoReply { .. }));
    }
    let e = parse_echo6(f);
    let probe = echo6_request(
        my_mac,
        my_mac,
        test_addr,
        test_addr,
        1,
        2,
        f.get(..20).unwrap_or(f),
    );
    assert!(parse_echo6(&probe).is_some());
    let _ = e;
}

/// Valid inputs for the IPv6 targets.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let host: Mac = [2, 0, 0, 0, 0, 1];
    let router: Mac = [2, 0, 0, 0, 0, 2];
    let (a, b): (Ipv6Addr, Ipv6Addr) = (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let ll = ipv6::link_local_from_mac(host);
    let ndp = [
        ndisc::Repr::RouterSolicit { lladdr: Some(host) },
        ndisc::Repr::NeighborSolicit {
            target: b,
            lladdr: Some(host),
        },
        ndisc::Repr::RouterAdvert {
            hop_limit: 64,
            flags: 0,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_time: 0,
            lladdr: Some(router),
            mtu: Some(1500),
            prefix: Some(ndisc::PrefixInfo {
                prefix_len: 64,
                flags: ndisc::prefix_flags::AUTONOMOUS,
                valid_lifetime: 1,
                preferred_lifetime: 1,
                prefix: b,
            }),
        },
        ndisc::Repr::Redirect {
            target: ll,
            dest: b,
            lladdr: Some(router),
        },
    ];
    let mut frames: Vec<Vec<u8>> = ndp
        .iter()
        .map(|r| r.frame(host, ipv6::multicast_mac(ipv6::ALL_NODES), ll, ipv6::ALL_NODES))
        .collect();
    frames.push(unsolicited_na(host, a, false));
    frames.push(mld_general_query(host, ll));
    let echo = echo6_request(router, host, b, a, 7, 3, &[0x5a; 20]);
    frames.push(echo.clone());
    // UDP behind a Destination options header and a first fragment.
    let mut udp = echo6_request(host, router, a, b, 0, 0, &[0; 12]);
    {
        let mut ip = ipv6::Packet::new_unchecked(&mut udp[ETH_HLEN..]);
        ip.set_next_header(next_header::DEST_OPTS);
        let p = ip.payload_mut();
        p[..ipv6ext::FRAGMENT_LEN].copy_from_slice(&[next_header::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
        ipv6ext::Repr::Fragment {
            next_header: next_header::UDP,
            offset: 0,
            more: true,
            ident: 1,
        }
        .emit(&mut ipv6ext::Header::new_unchecked(
            &mut p[ipv6ext::FRAGMENT_LEN..],
            next_header::FRAGMENT,
        ));
    }
    frames.push(udp);
    let prefixed = |prefix: &[u8]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .map(|f| {
                let mut v = prefix.to_vec();
                v.extend_from_slice(f);
                v
            })
            .collect()
    };
    match target {
        "ipv6_parse" => frames.clone(),
        "ndp_rewrite" => prefixed(&router),
        "echo6" => {
            let mut p = host.to_vec();
            p.extend_from_slice(&a.octets());
            prefixed(&p)
        }
        "icmpv6_parse" => frames
            .iter()
            .filter_map(|f| {
                let ip = ipv6::Packet::new_checked(&f[ETH_HLEN..]).ok()?;
                let u = ipv6ext::walk(ip.next_header(), ip.payload()).ok()?;
                let mut v = ip.src_addr().octets().to_vec();
                v.extend_from_slice(&ip.dst_addr().octets());
                v.extend_from_slice(&ip.payload()[u.offset..]);
                Some(v)
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet;

    #[test]
    fn every_seed_passes_its_target() {
        for (name, body) in [
            ("ipv6_parse", ipv6_parse as fn(&[u8])),
            ("icmpv6_parse", icmpv6_parse),
            ("ndp_rewrite", ndp_rewrite),
            ("echo6", echo6),
        ] {
            let s = seeds(name);
            assert!(!s.is_empty(), "{name}");
            for v in s {
                body(&v);
            }
        }
    }

    #[test]
    fn seeds_reach_the_deep_paths() {
        let n = seeds("ndp_rewrite")
            .iter()
            .filter(|v| rewrite_ndp_lladdr(&mut v[ethernet::ADDRESS_LEN..].to_vec(), [0; 6]) == Ok(1))
            .count();
        assert_eq!(n, 5, "RS, NS, RA, Redirect and the NA");
    }
}
