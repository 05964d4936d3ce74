use super::*;
use crate::datapath::arp::gratuitous_arp;
use crate::datapath::frame::{dst_mac, ARP_OP_REPLY, ARP_TPA};
use crate::datapath::ndp::mld_general_query;
use crate::datapath::plan::{divert, inbound, Divert, Port};
use crate::detect::frames::echo_request;
use crate::detect::frames6::{echo6_request, neighbor_advert, neighbor_solicit};
use crate::wire::ipv6::link_local_from_mac;
use etherparse::PacketBuilder;

const GMAC: Mac = [2, 0xaa, 0, 0, 0, 1];
const M: [Mac; 3] = [[2, 0, 0, 0, 0, 10], [2, 0, 0, 0, 0, 11], [2, 0, 0, 0, 0, 12]];
const ROUTER: Mac = [2, 0, 0, 0, 0, 1];
const OTHER_HOST: Mac = [2, 0xbb, 0, 0, 0, 9];
const V4_ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V4_DATA: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const TEST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 211);
const V6_ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const V6_DATA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);
const TC_ACT_REDIRECT: u32 = TCX_REDIRECT as u32;

/// Member 0: plain; member 1: test addresses of both families (probed);
/// member 2: offline.
fn plan() -> Plan {
    let mut p = Plan::empty(GMAC, 7);
    p.ports = M
        .iter()
        .enumerate()
        .map(|(i, &mac)| {
            Some(Port {
                mac,
                accept: i != 2,
                test_addr: (i == 1).then_some(TEST4),
                test_addr6: (i == 1).then(|| link_local_from_mac(M[1])),
            })
        })
        .collect();
    p.buckets.rebalance(&[0, 1], &[]);
    p.nominee = Some(0);
    p.probing = true;
    p.targets = vec![V4_ROUTER.into(), link_local_from_mac(ROUTER).into()];
    p.icmp_id = 0x4242;
    p
}

fn l4_4(src: Mac, dst: Mac, to: Ipv4Addr, udp: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src, dst).ipv4(V4_ROUTER.octets(), to.octets(), 64);
    if udp {
        b.udp(53, 4000).write(&mut v, &[1; 8]).unwrap();
    } else {
        b.tcp(80, 4000, 1, 1000).write(&mut v, &[1; 8]).unwrap();
    }
    v
}

fn l4_6(src: Mac, dst: Mac, to: Ipv6Addr, udp: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src, dst).ipv6(V6_ROUTER.octets(), to.octets(), 64);
    if udp {
        b.udp(53, 4000).write(&mut v, &[1; 8]).unwrap();
    } else {
        b.tcp(80, 4000, 1, 1000).write(&mut v, &[1; 8]).unwrap();
    }
    v
}

/// A frame with an in-band 802.1Q tag after the addresses.
fn tagged(f: &[u8]) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    v.extend_from_slice(&f[12..]);
    v
}

/// Frames of every kind the members see, to each member's MAC and to
/// others, tagged copies and truncations of those to members 0 and 1.
fn corpus() -> Vec<Vec<u8>> {
    let whole = whole_frames();
    let mut out = whole.clone();
    for f in &whole {
        if dst_mac(f) == M[0] || dst_mac(f) == M[1] {
            out.push(tagged(f));
            // Every truncation around the predicate's minimum lengths.
            for n in [0, 6, 13, 14, 20, 33, 34, 41, 42, 53, 54, 55] {
                if n < f.len() {
                    out.push(f[..n].to_vec());
                }
            }
        }
    }
    out
}

fn whole_frames() -> Vec<Vec<u8>> {
    let ta6 = link_local_from_mac(M[1]);
    let mut out = Vec::new();
    let dsts = [
        M[0],
        M[1],
        M[2],
        GMAC,
        OTHER_HOST,
        [0xff; 6],
        [0x33, 0x33, 0, 0, 0, 1],
    ];
    let srcs = [ROUTER, M[0], M[2], GMAC];
    for &dst in &dsts {
        for &src in &srcs {
            for udp in [false, true] {
                for to in [V4_DATA, TEST4] {
                    out.push(l4_4(src, dst, to, udp));
                }
                for to in [V6_DATA, ta6] {
                    out.push(l4_6(src, dst, to, udp));
                }
            }
            out.push(echo_request(src, dst, V4_ROUTER, TEST4, 9, 1, &[0; 20]));
            out.push(echo_request(src, dst, V4_ROUTER, V4_DATA, 9, 1, &[0; 20]));
            out.push(echo6_request(src, dst, V6_ROUTER, ta6, 9, 1, &[0; 20]));
            out.push(echo6_request(src, dst, V6_ROUTER, V6_DATA, 9, 1, &[0; 20]));
            let mut arp = gratuitous_arp(src, V4_ROUTER);
            arp[ARP_TPA].copy_from_slice(&TEST4.octets());
            arp[..6].copy_from_slice(&dst);
            out.push(arp.clone());
            crate::wire::arp::Packet::new_unchecked(&mut arp[ETH_HLEN..]).set_operation(ARP_OP_REPLY);
            out.push(arp);
            out.push(neighbor_solicit(src, link_local_from_mac(ROUTER), ta6, Some(dst)));
            out.push(neighbor_advert(src, link_local_from_mac(ROUTER), ta6, dst));
            let mut q = mld_general_query(src, link_local_from_mac(ROUTER));
            q[..6].copy_from_slice(&dst);
            out.push(q);
        }
    }
    // IPv6 with a hop-by-hop header before UDP: not directly TCP/UDP.
    let mut hbh = Vec::new();
    PacketBuilder::ethernet2(ROUTER, M[0])
        .ipv6(V6_ROUTER.octets(), V6_DATA.octets(), 64)
        .udp(1, 2)
        .write(&mut hbh, &[0; 8])
        .unwrap();
    hbh[ETH_HLEN + ipv6::field::NXT_HDR] = ipv6::next_header::HOP_BY_HOP;
    out.push(hbh);
    out
}

#[test]
fn a_fast_frame_is_one_the_user_space_path_delivers_with_only_the_mac_rewrite() {
    let p = plan();
    let mut fast = 0;
    for f in corpus() {
        for slot in 0..3 {
            if !fast_inbound(&p, slot, &f) {
                continue;
            }
            fast += 1;
            assert_eq!(divert(&p, slot, &f), Divert::No, "{slot} {f:02x?}");
            let mut g = f.clone();
            assert_eq!(inbound(&p, slot, &mut g), Ok(()), "{slot} {f:02x?}");
            let mut want = f.clone();
            want[..6].copy_from_slice(&GMAC);
            assert_eq!(g, want, "only the destination MAC changes");
        }
    }
    // TCP and UDP, both families, to member 0 and 1 from the router (member
    // 1's test addresses excluded).
    let whole = whole_frames()
        .iter()
        .map(|f| (0..3).filter(|&s| fast_inbound(&p, s, f)).count())
        .sum::<usize>();
    assert_eq!(whole, 4 * 2 + 2 * 2, "fast whole frames in the corpus");
    assert!(fast > whole, "truncated copies too");
}

#[test]
fn the_predicate_by_case() {
    let p = plan();
    let s0 = FastSpec::of(&p, 0).unwrap();
    let s1 = FastSpec::of(&p, 1).unwrap();
    assert_eq!(FastSpec::of(&p, 2), None, "offline");
    assert_eq!(FastSpec::of(&p, 3), None, "absent");
    assert_eq!(s0.own_macs, vec![GMAC, M[0], M[1], M[2]]);
    let tcp = l4_4(ROUTER, M[0], V4_DATA, false);
    assert!(s0.matches(&tcp, false));
    assert!(!s0.matches(&tcp, true), "VLAN tag taken off by the NIC");
    assert!(!s0.matches(&tagged(&tcp), false));
    assert!(!s1.matches(&tcp, false), "another member's MAC");
    assert!(!s0.matches(&l4_4(M[2], M[0], V4_DATA, false), false), "looped");
    assert!(
        !s0.matches(&l4_4(GMAC, M[0], V4_DATA, false), false),
        "looped from the group"
    );
    assert!(s1.matches(&l4_4(ROUTER, M[1], V4_DATA, true), false));
    assert!(
        !s1.matches(&l4_4(ROUTER, M[1], TEST4, true), false),
        "test address"
    );
    assert!(s1.matches(&l4_6(ROUTER, M[1], V6_DATA, false), false));
    assert!(!s1.matches(&l4_6(ROUTER, M[1], link_local_from_mac(M[1]), false), false));
    assert!(!s0.matches(
        &echo_request(ROUTER, M[0], V4_ROUTER, V4_DATA, 1, 1, &[0; 20]),
        false
    ));
    assert!(!s0.matches(&tcp[..MIN_IPV4 - 1], false));
}

/// Runs a classic BPF filter the way the kernel does (the subset we emit):
/// an out-of-range load ends it with 0.
fn run_cbpf(prog: &[libc::sock_filter], frame: &[u8], tagged: bool) -> u32 {
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        let load = |at: u32, n: usize| -> Option<u32> {
            if at == AD_VLAN_TAG_PRESENT {
                return Some(u32::from(tagged));
            }
            let b = frame.get(at as usize..at as usize + n)?;
            Some(b.iter().fold(0, |v, &x| (v << 8) | u32::from(x)))
        };
        match i.code {
            LD_W_ABS | LD_H_ABS | LD_B_ABS => {
                let n = match i.code {
                    LD_W_ABS => 4,
                    LD_H_ABS => 2,
                    _ => 1,
                };
                match load(i.k, n) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            LD_W_LEN => a = frame.len() as u32,
            JA => pc += i.k as usize,
            JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            JGE_K => pc += usize::from(if a >= i.k { i.jt } else { i.jf }),
            RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[test]
fn the_socket_filter_keeps_out_exactly_the_fast_frames() {
    let p = plan();
    let specs: Vec<Option<FastSpec>> = (0..4).map(|s| FastSpec::of(&p, s)).collect();
    let corpus = corpus();
    for (slot, spec) in specs.iter().enumerate() {
        let filter = socket_filter(&[spec.as_ref()]).unwrap();
        assert!(filter.len() < 256, "{}", filter.len());
        for f in &corpus {
            for tag in [false, true] {
                let fast = spec.as_ref().is_some_and(|s| s.matches(f, tag));
                let verdict = run_cbpf(&filter, f, tag);
                assert_eq!(verdict == 0, fast, "slot {slot} tag {tag} {f:02x?}");
                if !fast {
                    assert_eq!(verdict, FILTER_ACCEPT);
                }
            }
        }
    }
    // While programs are swapped: out only what is fast under both.
    let mut moved = p.clone();
    moved.ports[0].as_mut().unwrap().test_addr = Some(V4_DATA);
    let new = FastSpec::of(&moved, 0).unwrap();
    let old = specs[0].clone().unwrap();
    let both = socket_filter(&[Some(&old), Some(&new)]).unwrap();
    let mut differ = 0;
    for f in &corpus {
        let want = old.matches(f, false) && new.matches(f, false);
        differ += usize::from(old.matches(f, false) != new.matches(f, false));
        assert_eq!(run_cbpf(&both, f, false) == 0, want, "{f:02x?}");
    }
    assert!(differ > 0, "the two specs differ on some frame");
    assert_eq!(socket_filter(&[]).unwrap().len(), 1);
    assert_eq!(
        run_cbpf(&socket_filter(&[None]).unwrap(), &corpus[0], false),
        FILTER_ACCEPT
    );
}

#[test]
fn the_tc_program_is_straight_line_code_with_forward_jumps() {
    let p = plan();
    let spec = FastSpec::of(&p, 1).unwrap();
    let prog = tc_program(Some(&spec), 42, 7).unwrap();
    let jumps = [EJA, EJEQ_K, EJNE_K, J32EQ_K, J32NE_K];
    for (at, i) in prog.iter().enumerate() {
        if jumps.contains(&i.code) {
            assert!(i.off >= 0, "backward jump at {at}");
            assert!(
                at + 1 + (i.off as usize) < prog.len(),
                "jump out of the program at {at}"
            );
        }
    }
    assert_eq!(prog.last().map(|i| i.code), Some(EXIT));
    assert!(prog.iter().any(|i| i.code == CALL && i.imm == FN_REDIRECT));
    // The map's descriptor in the ld_imm64, the tap's ifindex before the redirect.
    assert!(prog
        .iter()
        .any(|i| i.code == LD_IMM64 && i.imm == 7 && i.regs == R1 | (PSEUDO_MAP_FD << 4)));
    assert!(prog
        .iter()
        .any(|i| i.code == MOV64_K && i.imm == 42 && i.regs == R1));
    assert_eq!(
        tc_program(None, 42, 7).unwrap(),
        vec![insn(MOV64_K, R0, 0, 0, TCX_DROP), insn(EXIT, 0, 0, 0, 0)]
    );
    let without_map = tc_program(Some(&spec), 42, -1).unwrap();
    assert!(!without_map.iter().any(|i| i.code == LD_IMM64));
}

/// The kernel runs the program (BPF_PROG_TEST_RUN) on every frame of the
/// corpus: redirected with the group's MAC exactly when fast, counted in
/// the map. Needs root (bpf(2)).
#[test]
fn the_kernel_runs_the_tc_program_as_the_predicate_says() {
    use crate::sys::bpf::{load_program, test_run, CounterMap};
    let p = plan();
    let corpus = corpus();
    for slot in 0..3 {
        let spec = FastSpec::of(&p, slot);
        let map = CounterMap::new().unwrap();
        let prog = load_program(&tc_program(spec.as_ref(), 1, map.raw_fd()).unwrap()).unwrap();
        let (mut frames, mut bytes) = (0, 0);
        // The kernel runs programs on frames longer than an Ethernet header.
        for f in corpus.iter().filter(|f| f.len() > ETH_HLEN) {
            let (ret, out) = match test_run(&prog, f) {
                Ok(r) => r,
                // The test run wants a whole IP header for IP frames; the
                // socket filter test covers the short ones.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && f.len() < MIN_IPV6 => continue,
                Err(e) => panic!("{e}: {f:02x?}"),
            };
            let fast = spec.as_ref().is_some_and(|s| s.matches(f, false));
            if fast {
                assert_eq!(ret, TC_ACT_REDIRECT, "slot {slot} {f:02x?}");
                assert_eq!(dst_mac(&out), GMAC);
                assert_eq!(out[6..], f[6..]);
                frames += 1;
                bytes += f.len() as u64;
            } else {
                assert_eq!(ret, TCX_DROP as u32, "slot {slot} {f:02x?}");
            }
        }
        assert_eq!(map.read().unwrap(), (frames, bytes), "slot {slot}");
        assert_eq!(frames > 0, slot < 2);
    }
}
