//! The pure per-frame path: classify + flow hash + member pick + MAC rewrite
//! (outbound), and the inbound check + rewrite, for 64- and 1500-byte frames.
//! IPv6 frames (TCP, UDP, UDP behind a Destination options header) beside
//! IPv4 TCP, for classify + hash alone and for the whole outbound path; an
//! IPv6 TCP frame is at least 74 bytes, so its "64B" case is that.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use ipmpd::datapath::frame::{classify, flow_hash, flow_hash6, Class};
use ipmpd::datapath::plan::{divert, inbound, outbound, Plan, Port};
use ipmpd::detect::frames::{ProbeKey, PROBE_KEY_LEN};
use ipmpd::wire::ethernet::{field::DESTINATION, HEADER_LEN as ETH_HLEN};
use ipmpd::wire::ipv6::{self, next_header};
use std::hint::black_box;
use std::net::Ipv4Addr;

const GROUP_MAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// Where our probe payload holds the probe type (after an 8-byte counter).
const PAYLOAD_TYPE: std::ops::Range<usize> = 8..12;
/// Distinct flows cycled through, so the bucket lookup is not one cache line.
const FLOWS: usize = 1024;

fn member_mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, i]
}

fn plan(members: u8) -> Plan {
    let mut p = Plan::empty(GROUP_MAC, 0x1234_5678_9abc_def0);
    p.ports = (0..members)
        .map(|i| {
            Some(Port {
                mac: member_mac(i),
                accept: true,
                test_addr: None,
                test_addr6: None,
            })
        })
        .collect();
    let active: Vec<u8> = (0..members).collect();
    p.buckets.rebalance(&active, &[]);
    p.nominee = Some(0);
    p.bindings = vec![(Ipv4Addr::new(192, 0, 2, 200), 0)];
    p
}

/// TCP frames of `size` bytes on the wire (Ethernet header included).
fn frames(size: usize, dst: [u8; 6], src: [u8; 6]) -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            let payload = vec![0u8; size - 14 - 20 - 20];
            let mut v = Vec::with_capacity(size);
            PacketBuilder::ethernet2(src, dst)
                .ipv4([192, 0, 2, 200], [198, 51, 100, (i % 250) as u8], 64)
                .tcp(10000 + i as u16, 443, 1, 65535)
                .write(&mut v, &payload)
                .unwrap();
            assert_eq!(v.len(), size);
            v
        })
        .collect()
}

/// The IPv6 frames benchmarked.
#[derive(Clone, Copy)]
enum V6 {
    Tcp,
    Udp,
    /// UDP behind an 8-byte Destination options header (PadN only).
    UdpDestOpts,
}

/// Bytes of the Destination options header of [`V6::UdpDestOpts`].
const DEST_OPTS_LEN: usize = 8;
/// TCP and UDP header bytes without options.
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// IPv6 frames of `size` bytes (or the smallest the headers allow).
fn frames6(size: usize, dst: [u8; 6], src: [u8; 6], kind: V6) -> Vec<Vec<u8>> {
    let l4 = match kind {
        V6::Tcp => TCP_HLEN,
        V6::Udp => UDP_HLEN,
        V6::UdpDestOpts => UDP_HLEN + DEST_OPTS_LEN,
    };
    let payload = vec![0u8; size.saturating_sub(ETH_HLEN + ipv6::HEADER_LEN + l4)];
    (0..FLOWS)
        .map(|i| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            let mut b = a;
            a[15] = 0x20;
            b[8..10].copy_from_slice(&((i % 250) as u16).to_be_bytes());
            b[15] = 1;
            let mut v = Vec::with_capacity(size);
            let eth = PacketBuilder::ethernet2(src, dst).ipv6(a, b, 64);
            match kind {
                V6::Tcp => eth.tcp(10000 + i as u16, 443, 1, 65535).write(&mut v, &payload),
                V6::Udp | V6::UdpDestOpts => eth.udp(10000 + i as u16, 443).write(&mut v, &payload),
            }
            .unwrap();
            if let V6::UdpDestOpts = kind {
                let at = ETH_HLEN + ipv6::HEADER_LEN;
                let nh = ETH_HLEN + ipv6::field::NXT_HDR;
                let opts = [v[nh], 0, 1, 4, 0, 0, 0, 0];
                v[nh] = next_header::DEST_OPTS;
                v.splice(at..at, opts);
                let len = ETH_HLEN + ipv6::field::LENGTH.start;
                let n = u16::from_be_bytes([v[len], v[len + 1]]) + DEST_OPTS_LEN as u16;
                v[len..len + 2].copy_from_slice(&n.to_be_bytes());
            }
            v
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let p = plan(3);
    let v6_kinds = [
        ("ipv6_tcp", V6::Tcp),
        ("ipv6_udp", V6::Udp),
        ("ipv6_udp_dest_opts", V6::UdpDestOpts),
    ];
    for size in [64usize, 1500] {
        // Classify and hash alone: what IPv6 adds to the per-frame cost.
        let mut g = c.benchmark_group(format!("classify_hash_{size}B"));
        let fs = frames(size, ROUTER_MAC, GROUP_MAC);
        let mut i = 0;
        g.bench_function("ipv4_tcp", |b| {
            b.iter(|| {
                i = (i + 1) % FLOWS;
                match classify(black_box(&fs[i])) {
                    Ok(Class::Ipv4Unicast(k)) => black_box(flow_hash(&k, 7)),
                    _ => unreachable!(),
                }
            })
        });
        for (name, kind) in v6_kinds {
            let fs = frames6(size, ROUTER_MAC, GROUP_MAC, kind);
            let mut i = 0;
            g.bench_function(name, |b| {
                b.iter(|| {
                    i = (i + 1) % FLOWS;
                    match classify(black_box(&fs[i])) {
                        Ok(Class::Ipv6Unicast(k)) => black_box(flow_hash6(&k, 7)),
                        _ => unreachable!(),
                    }
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("outbound_{size}B"));
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: size as u64,
        });
        let mut fs = frames(size, ROUTER_MAC, GROUP_MAC);
        let mut i = 0;
        g.bench_function("classify_hash_pick_rewrite", |b| {
            b.iter(|| {
                i = (i + 1) % FLOWS;
                black_box(outbound(black_box(&p), black_box(&mut fs[i])).unwrap())
            })
        });
        for (name, kind) in v6_kinds {
            let mut fs = frames6(size, ROUTER_MAC, GROUP_MAC, kind);
            let mut i = 0;
            g.bench_function(name, |b| {
                b.iter(|| {
                    i = (i + 1) % FLOWS;
                    black_box(outbound(black_box(&p), black_box(&mut fs[i])).unwrap())
                })
            });
        }
        g.finish();

        egress_program(c, &p, size);

        let mut g = c.benchmark_group(format!("inbound_{size}B"));
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: size as u64,
        });
        let mut fs = frames(size, member_mac(1), ROUTER_MAC);
        let mut i = 0;
        g.bench_function("check_rewrite", |b| {
            b.iter(|| {
                i = (i + 1) % FLOWS;
                let f = &mut fs[i];
                // Put the member's MAC back so every iteration does the full rewrite.
                f[DESTINATION].copy_from_slice(&member_mac(1));
                inbound(black_box(&p), 1, black_box(f)).unwrap();
                black_box(&f[DESTINATION]);
            })
        });
        g.finish();
    }

    // The inbound probe classifier: the common case (a data frame), and the
    // worst case a flood can force (an echo reply to a test address with our
    // ICMP id, whose tag must be computed to be refused).
    let mut p = plan(3);
    let ta = Ipv4Addr::new(192, 0, 2, 201);
    p.ports[1] = Some(Port {
        mac: member_mac(1),
        accept: true,
        test_addr: Some(ta),
        test_addr6: None,
    });
    p.probing = true;
    p.icmp_id = 0x4242;
    p.probe_key = Some(ProbeKey::new([7; PROBE_KEY_LEN]));
    let data = frames(64, member_mac(1), ROUTER_MAC);
    // Our payload layout (counter, probe type 1, tag) with a wrong tag: the
    // tag is computed, twice (also as a discovery answer), then refused.
    let mut payload = [0x5a; 20];
    payload[PAYLOAD_TYPE].copy_from_slice(&1u32.to_be_bytes());
    let mut bogus = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, member_mac(1))
        .ipv4([192, 0, 2, 1], ta.octets(), 64)
        .icmpv4_echo_reply(0x4242, 1)
        .write(&mut bogus, &payload)
        .unwrap();
    assert_eq!(divert(&p, 1, &bogus), ipmpd::datapath::plan::Divert::Discard);
    let mut i = 0;
    c.bench_function("divert_64B/data_frame", |b| {
        b.iter(|| {
            i = (i + 1) % FLOWS;
            black_box(divert(black_box(&p), 1, black_box(&data[i])))
        })
    });
    c.bench_function("divert/bogus_echo_reply_tag_check", |b| {
        b.iter(|| black_box(divert(black_box(&p), 1, black_box(&bogus))))
    });

    // Reference point for docs/DEPENDENCIES.md: a full etherparse parse of
    // the same 64-byte frames, the alternative to our minimal classify.
    let fs = frames(64, ROUTER_MAC, GROUP_MAC);
    let mut i = 0;
    c.bench_function("reference_64B/etherparse_sliced_packet", |b| {
        b.iter(|| {
            i = (i + 1) % FLOWS;
            black_box(etherparse::SlicedPacket::from_ethernet(black_box(&fs[i])).is_ok())
        })
    });
}

/// The outbound fast path's eBPF program on the same frames, run by the
/// kernel (BPF_PROG_TEST_RUN, timed by the kernel per run): its whole
/// decision, flow hash, table lookup, source MAC store, count and redirect.
/// Needs root and bpf(2); skipped (with a line saying so) without them.
fn egress_program(c: &mut Criterion, p: &Plan, size: usize) {
    use ipmpd::datapath::egress::{
        program, table, COUNTERS_NAME, COUNTER_SIZE, COUNTER_SLOTS, TABLE_NAME, TABLE_SIZE,
    };
    use ipmpd::sys::bpf::{load_named, test_run_timed, ArrayMap, SnapshotMap, EGRESS_PROG_NAME};
    let setup = || -> std::io::Result<_> {
        let tbl = SnapshotMap::new(TABLE_SIZE as u32, TABLE_NAME)?;
        tbl.replace(&table(p, |s| Some(100 + u32::from(s)), true))?;
        let counters = ArrayMap::new(COUNTER_SIZE as u32, COUNTER_SLOTS, COUNTERS_NAME)?;
        let insns = program(p.seed, tbl.raw_fd(), counters.raw_fd())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok((load_named(&insns, EGRESS_PROG_NAME)?, tbl, counters))
    };
    let (prog, _tbl, _counters) = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("egress_{size}B: skipped, the kernel program cannot be loaded here: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group(format!("egress_{size}B"));
    g.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: size as u64,
    });
    let v4 = frames(size, ROUTER_MAC, GROUP_MAC);
    let v6 = frames6(size, ROUTER_MAC, GROUP_MAC, V6::Tcp);
    for (name, fs) in [("kernel_program_ipv4_tcp", &v4), ("kernel_program_ipv6_tcp", &v6)] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // The kernel's own clock, per run, over one flow at a time.
                i = (i + 1) % FLOWS;
                let repeat = u32::try_from(iters).unwrap_or(u32::MAX).max(1);
                let (ret, ns) = test_run_timed(&prog, &fs[i], repeat).expect("test run");
                assert_eq!(ret, TC_ACT_REDIRECT, "the program takes the frame");
                std::time::Duration::from_nanos(u64::from(ns) * iters)
            })
        });
    }
    g.finish();
}

/// tc verdict of a redirect.
const TC_ACT_REDIRECT: u32 = ipmpd::sys::bpf::TCX_REDIRECT as u32;

criterion_group!(benches, bench);
criterion_main!(benches);
