use super::*;
use crate::datapath::frame::{fast_flow, FastFlow, Mac, ETH_HLEN, FAST6_LEN};
use crate::datapath::plan::outbound;
use crate::fuzzing::SplitMix64;
use etherparse::PacketBuilder;

/// The frames the program takes (when their bucket names a member): the
/// common frame of [`fast_flow`], IPv6 only with TCP or UDP right behind
/// the fixed header. Everything else goes to user space.
fn takes(frame: &[u8]) -> Option<FastFlow> {
    match fast_flow(frame)? {
        f @ FastFlow::V4(_) => Some(f),
        f @ FastFlow::V6(_) => {
            let nh = frame[L3_AT + ipv6::field::NXT_HDR];
            (nh == IPPROTO_TCP || nh == IPPROTO_UDP).then_some(f)
        }
    }
}

const GMAC: Mac = [2, 0xaa, 0, 0, 0, 1];
const M: [Mac; 3] = [[2, 0, 0, 0, 0, 10], [2, 0, 0, 0, 0, 11], [2, 0, 0, 0, 0, 12]];
const ROUTER: Mac = [2, 0, 0, 0, 0, 1];
/// ifindex of slot s in these tests.
const fn index_of(s: Slot) -> u32 {
    100 + s as u32
}
const TC_ACT_REDIRECT: u32 = TCX_REDIRECT as u32;

/// Three members; 0 and 2 active (1 failed: its buckets moved).
fn plan(seed: u64) -> Plan {
    let mut p = Plan::empty(GMAC, seed);
    p.ports = crate::datapath::plan::plain_ports(&M);
    p.buckets.rebalance(&[0, 1, 2], &[]);
    p.buckets.rebalance(&[0, 2], &[]);
    p.nominee = Some(0);
    p
}

fn v4(rng: &mut SplitMix64, udp: bool) -> Vec<u8> {
    let r = rng.next();
    let b = PacketBuilder::ethernet2(GMAC, ROUTER).ipv4(
        [192, 0, 2, (r >> 8) as u8],
        [198, 51, 100, (r >> 16) as u8],
        64,
    );
    let (sp, dp) = ((r >> 24) as u16, (r >> 40) as u16);
    let mut v = Vec::new();
    if udp {
        b.udp(sp, dp).write(&mut v, &[0; 18]).unwrap();
    } else {
        b.tcp(sp, dp, 1, 1000).write(&mut v, &[0; 6]).unwrap();
    }
    v
}

fn v6(rng: &mut SplitMix64, udp: bool) -> Vec<u8> {
    let r = rng.next();
    let mut src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut dst = src;
    src[8..].copy_from_slice(&r.to_be_bytes());
    dst[8..].copy_from_slice(&rng.next().to_be_bytes());
    let b = PacketBuilder::ethernet2(GMAC, ROUTER).ipv6(src, dst, 64);
    let (sp, dp) = ((r >> 24) as u16, (r >> 40) as u16);
    let mut v = Vec::new();
    if udp {
        b.udp(sp, dp).write(&mut v, &[0; 8]).unwrap();
    } else {
        b.tcp(sp, dp, 1, 1000).write(&mut v, &[0; 8]).unwrap();
    }
    v
}

/// Flows of each kind, the frames the program must leave alone, and
/// seeded mutations of the header bytes the program reads.
fn corpus() -> Vec<Vec<u8>> {
    let mut rng = SplitMix64(0x1e55_0e66);
    let mut out = Vec::new();
    for _ in 0..200 {
        out.push(v4(&mut rng, false));
        out.push(v4(&mut rng, true));
        out.push(v6(&mut rng, false));
        out.push(v6(&mut rng, true));
    }
    let base: Vec<Vec<u8>> = out.iter().take(8).cloned().collect();
    for f in &base {
        // Multicast and broadcast destinations: the nominee, in user space.
        let mut m = f.clone();
        m[..6].copy_from_slice(&[0x01, 0, 0x5e, 0, 0, 1]);
        out.push(m);
        let mut b = f.clone();
        b[..6].copy_from_slice(&[0xff; 6]);
        out.push(b);
        // An in-band 802.1Q tag.
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        t.extend_from_slice(&f[12..]);
        out.push(t);
    }
    // IPv4 with options, fragments; ICMP; IPv6 behind a destination options header.
    let mut opt = base[0].clone();
    opt[ETH_HLEN] = 0x46;
    out.push(opt);
    for frag in [0x2000u16, 0x0001, 0x4000] {
        let mut f = base[1].clone();
        f[ETH_HLEN + 6..ETH_HLEN + 8].copy_from_slice(&frag.to_be_bytes());
        out.push(f);
    }
    let mut icmp = base[0].clone();
    icmp[ETH_HLEN + 9] = 1;
    out.push(icmp);
    let mut dopt = base[2].clone();
    dopt[ETH_HLEN + 6] = 60;
    dopt.splice(FAST6_LEN..FAST6_LEN, [6, 0, 1, 4, 0, 0, 0, 0]);
    out.push(dopt);
    let arp = crate::datapath::arp::gratuitous_arp(GMAC, std::net::Ipv4Addr::new(192, 0, 2, 9));
    out.push(arp);
    // Mutations: a byte of the headers the program reads, set at random.
    for i in 0..2000 {
        let mut f = base[i % base.len()].clone();
        let at = rng.below(FAST6_LEN + 4).min(f.len() - 1);
        f[at] = rng.next() as u8;
        out.push(f);
    }
    // Truncations around the lengths the program needs.
    for f in &base {
        for n in [ETH_HLEN + 1, 37, 38, 41, 42, 57, 58] {
            if n < f.len() {
                out.push(f[..n].to_vec());
            }
        }
    }
    out
}

/// The MAC of a table entry.
fn entry_mac(table: &[u8], bucket: usize) -> Option<Mac> {
    let e = table.get(bucket * ENTRY_SIZE..(bucket + 1) * ENTRY_SIZE)?;
    e[AT_MAC..AT_MAC + 6].try_into().ok()
}

#[test]
fn the_table_names_each_buckets_member_or_nothing() {
    let p = plan(7);
    let t = table(&p, |s| Some(index_of(s)), true);
    assert_eq!(t.len(), TABLE_SIZE);
    for (b, &slot) in p.buckets.owners().iter().enumerate() {
        let e = &t[b * ENTRY_SIZE..(b + 1) * ENTRY_SIZE];
        assert_eq!(u32::from_ne_bytes(e[..4].try_into().unwrap()), index_of(slot));
        assert_eq!(u32::from_ne_bytes(e[4..8].try_into().unwrap()), u32::from(slot));
        assert_eq!(entry_mac(&t, b), Some(M[usize::from(slot)]));
        assert_ne!(slot, 1, "the failed member holds no bucket");
    }
    // Off, bound mode, no member at all, a member without an ifindex.
    assert!(table(&p, |s| Some(index_of(s)), false).iter().all(|&b| b == 0));
    let mut bound = p.clone();
    bound.outbound = Outbound::Bound;
    assert!(table(&bound, |s| Some(index_of(s)), true).iter().all(|&b| b == 0));
    let mut none = p.clone();
    none.buckets.rebalance(&[], &[]);
    assert!(table(&none, |s| Some(index_of(s)), true).iter().all(|&b| b == 0));
    let half = table(&p, |s| (s == 0).then_some(index_of(0)), true);
    for (b, &slot) in p.buckets.owners().iter().enumerate() {
        let index = u32::from_ne_bytes(half[b * ENTRY_SIZE..][..4].try_into().unwrap());
        assert_eq!(index != 0, slot == 0);
    }
}

#[test]
fn takes_the_common_frame_and_nothing_else() {
    let mut rng = SplitMix64(7);
    let tcp4 = v4(&mut rng, false);
    let udp4 = v4(&mut rng, true);
    let tcp6 = v6(&mut rng, false);
    let udp6 = v6(&mut rng, true);
    for f in [&tcp4, &udp4, &tcp6, &udp6] {
        assert!(takes(f).is_some(), "{f:02x?}");
        assert_eq!(takes(f), fast_flow(f));
    }
    let with = |f: &Vec<u8>, at: usize, b: u8| {
        let mut g = f.clone();
        g[at] = b;
        g
    };
    // IPv4 options, a fragment (MF; an offset), ICMP, IPv6 behind a
    // destination options header, version nibbles wrong, multicast and
    // broadcast destinations, an ARP frame, a tagged frame, short frames.
    let mut dopt = tcp6.clone();
    dopt[ETH_HLEN + 6] = 60;
    dopt.splice(FAST6_LEN..FAST6_LEN, [6, 0, 1, 4, 0, 0, 0, 0]);
    let mut tagged = tcp4[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    tagged.extend_from_slice(&tcp4[12..]);
    let refused = [
        with(&tcp4, ETH_HLEN, 0x46),
        with(&udp4, ETH_HLEN + 6, 0x20),
        with(&udp4, ETH_HLEN + 7, 0x01),
        with(&tcp4, ETH_HLEN + 9, 1),
        with(&tcp4, ETH_HLEN, 0x55),
        with(&tcp6, ETH_HLEN, 0x40),
        with(&tcp4, 0, 0x01),
        with(&tcp6, 0, 0x33),
        crate::datapath::arp::gratuitous_arp(GMAC, std::net::Ipv4Addr::new(192, 0, 2, 9)),
        tagged,
        tcp4[..37].to_vec(),
        tcp6[..57].to_vec(),
    ];
    for f in &refused {
        assert_eq!(takes(f), None, "{f:02x?}");
    }
    assert_eq!(takes(&dopt), None);
    assert!(
        fast_flow(&dopt).is_some(),
        "user space's fixed-offset path takes it"
    );
}

#[test]
fn the_program_is_straight_line_code_with_forward_jumps() {
    let prog = program(0x1234, 7, 8).unwrap();
    let jumps = [EJA, EJEQ_K, EJNE_K, J32EQ_K, J32NE_K];
    for (at, i) in prog.iter().enumerate() {
        if jumps.contains(&i.code) {
            assert!(i.off >= 0, "backward jump at {at}");
            assert!(at + 1 + (i.off as usize) < prog.len(), "jump out at {at}");
        }
    }
    assert_eq!(prog.last().map(|i| i.code), Some(EXIT));
    assert!(prog.iter().any(|i| i.code == CALL && i.imm == FN_REDIRECT));
    for fd in [7, 8] {
        assert!(prog
            .iter()
            .any(|i| i.code == LD_IMM64 && i.imm == fd && i.regs >> 4 == PSEUDO_MAP_FD));
    }
}

/// The kernel runs the program (BPF_PROG_TEST_RUN) on every frame of the
/// corpus, under two seeds: a frame it takes leaves with the source MAC of
/// the member user space picks ([`outbound`]) and is counted for it;
/// anything else goes on untouched. Needs root (bpf(2)).
#[test]
fn the_kernel_picks_the_member_user_space_picks() {
    use crate::sys::bpf::{load_named, test_run, ArrayMap, SnapshotMap, EGRESS_PROG_NAME};
    let corpus = corpus();
    for seed in [7u64, 0x9e37_79b9_7f4a_7c15] {
        let p = plan(seed);
        let tbl = SnapshotMap::new(TABLE_SIZE as u32, TABLE_NAME).unwrap();
        tbl.replace(&table(&p, |s| Some(index_of(s)), true)).unwrap();
        let counters = ArrayMap::new(COUNTER_SIZE as u32, COUNTER_SLOTS, COUNTERS_NAME).unwrap();
        let prog = load_named(
            &program(seed, tbl.raw_fd(), counters.raw_fd()).unwrap(),
            EGRESS_PROG_NAME,
        )
        .unwrap();
        let mut want = [(0u64, 0u64); 3];
        let mut redirected = 0;
        for f in &corpus {
            let (ret, out) = match test_run(&prog, f) {
                Ok(r) => r,
                // The test run wants a whole IP header for IP frames.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && f.len() < FAST6_LEN => continue,
                Err(e) => panic!("{e}: {f:02x?}"),
            };
            if takes(f).is_some() {
                let mut user = f.clone();
                let slot = outbound(&p, &mut user).expect("a member for every bucket");
                assert_eq!(ret, TC_ACT_REDIRECT, "{f:02x?}");
                assert_eq!(out, user, "the frame user space would send, {f:02x?}");
                let w = &mut want[usize::from(slot)];
                w.0 += 1;
                w.1 += f.len() as u64;
                redirected += 1;
            } else {
                assert_eq!(ret, TCX_NEXT as u32, "{f:02x?}");
                assert_eq!(&out, f);
            }
        }
        assert!(redirected > 800, "{redirected}");
        for (slot, w) in want.iter().enumerate() {
            assert_eq!(
                counters_of(&counters.read(slot as u32).unwrap()),
                *w,
                "slot {slot}"
            );
        }
        assert!(want[0].0 > 0 && want[2].0 > 0 && want[1].0 == 0);
        // A table of zeros: everything goes on to the TAP.
        tbl.replace(&table(&p, |s| Some(index_of(s)), false)).unwrap();
        for f in corpus.iter().take(50) {
            assert_eq!(test_run(&prog, f).unwrap().0, TCX_NEXT as u32);
        }
    }
}
