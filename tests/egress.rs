//! The outbound fast path in a namespace lab: ipmp0's tcx egress program
//! sends TCP and UDP frames out of their flow's member in the kernel, by
//! the member user space would pick, moves only a failed member's flows,
//! and steps aside while tcpdump watches ipmp0, while ipmp0 has traffic
//! control (a root qdisc, clsact egress filters), or when it is off.
//!
//! Which member a frame left by is read where it enters the switch: a
//! capture (`tcpdump -Q in`) on each member's switch port, which also shows
//! the frame's source MAC.

mod common;

use common::daemon::*;
use common::xfer::transfer_intact;
use common::{hex_mac, stop_capture, wait_until, Lab, Proc, MEMBERS, ROUTER_IP};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const DATA6: &str = "2001:db8::200";
const DATA6_PREFIX: &str = "2001:db8::200/64";
const ROUTER6: &str = "2001:db8::1";

/// `recv ADDR PORT`: per source port, the datagrams received and the
/// distinct ones, once none came for a while. `send SRC DST DPORT SPORT0
/// FLOWS PER [SIZE [OPTIONS]]`: FLOWS flows (source ports SPORT0..), PER
/// numbered datagrams of SIZE bytes (64) each, interleaved and paced, with
/// IPv4 options or an IPv6 hop-by-hop header OPTIONS (hex) if given.
const FLOWS_PY: &str = r#"
import socket, sys, time
mode = sys.argv[1]
def fam(a):
    return socket.AF_INET6 if ":" in a else socket.AF_INET
if mode == "recv":
    addr, port = sys.argv[2], int(sys.argv[3])
    s = socket.socket(fam(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((addr, port))
    # Long for the first datagram (the sender's start-up), then short.
    s.settimeout(15)
    print("listening", flush=True)
    got = {}
    while True:
        try:
            b, peer = s.recvfrom(2048)
        except socket.timeout:
            break
        s.settimeout(3)
        n, seen = got.setdefault(peer[1], [0, set()])
        got[peer[1]][0] = n + 1
        seen.add(b[:4])
    for p, (n, seen) in sorted(got.items()):
        print("flow", p, n, len(seen))
    print("done", flush=True)
else:
    src, dst = sys.argv[2], sys.argv[3]
    dport, sport0, flows, per = map(int, sys.argv[4:8])
    size = int(sys.argv[8]) if len(sys.argv) > 8 else 64
    socks = []
    for i in range(flows):
        s = socket.socket(fam(dst), socket.SOCK_DGRAM)
        if len(sys.argv) > 9 and fam(dst) == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes.fromhex(sys.argv[9]))
        elif len(sys.argv) > 9:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes.fromhex(sys.argv[9]))
        s.bind((src, sport0 + i))
        socks.append(s)
    for k in range(per):
        for s in socks:
            s.sendto(k.to_bytes(4, "big") + b"z" * (size - 4), (dst, dport))
            time.sleep(0.001)
"#;
/// Flows per round: with three members, all on one by chance is 3^-23.
const FLOWS: u16 = 24;
/// Datagrams per flow and round.
const PER_FLOW: u64 = 10;
/// Datagrams per round.
const DATAGRAMS: u64 = FLOWS as u64 * PER_FLOW;
/// Per TCP transfer: many GSO super-frames, quick with the debug daemon.
const TCP_BYTES: u64 = 16 << 20;
/// Bound on each TCP transfer, in seconds (`timeout`).
const TCP_TIMEOUT_S: &str = "120";
/// The TCP transfer while tcpdump watches ipmp0: small, tcpdump prints
/// every segment.
const TCP_DURING_CAPTURE: u64 = 1 << 20;
/// `IFNAME SRC_MAC DST_MAC SRC_IP DST_IP PORT N VID`: N UDP frames built by
/// hand and written on IFNAME, with an 802.1Q tag of VID in the frame.
const RAW_PY: &str = r#"
import socket, struct, sys, time
ifname, smac, dmac, sip, dip, port, n, vid = sys.argv[1:9]
def csum(h):
    t = sum(struct.unpack("!10H", h)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return (~t) & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
tag = struct.pack("!HH", 0x8100, int(vid))
for i in range(int(n)):
    payload = i.to_bytes(8, "big") + b"v" * 56
    udp = struct.pack("!HHHH", 4000, int(port), 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                     socket.inet_aton(sip), socket.inet_aton(dip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(bytes.fromhex(dmac) + bytes.fromhex(smac) + tag + b"\x08\x00" + ip + udp)
    time.sleep(0.001)
"#;
/// The VLAN of the tagged frames, and how many.
const VLAN_ID: &str = "5";
const TAGGED: u64 = 100;
/// IPv4 options: three no-operations and the end of the list (a header of
/// six words).
const IPV4_NOPS: &str = "01010100";
/// An IPv6 hop-by-hop header holding only padding (PadN of 4 bytes).
const IPV6_HOP_BY_HOP: &str = "0000010400000000";
/// A datagram bigger than the members' MTU: sent in IPv4 fragments.
const FRAGMENTED_SIZE: &str = "3000";
/// How long a daemon may take to log a reaction (a capture seen, a
/// reload, a failover).
const REACTION: Duration = Duration::from_secs(10);
/// How long a repaired member may take to be active again (link up,
/// probes answered: a few probe intervals of the default detection time).
const REPAIR: Duration = Duration::from_secs(60);
/// The daemon's log lines when a capture on ipmp0 opens and closes.
const CAPTURE_OPEN: &str = "a packet capture is open on ipmp0";
const CAPTURE_GONE: &str = "outbound fast path resumed";
/// The daemon's log lines when traffic control on ipmp0 appears and goes.
const TC_ON: &str = "traffic control configured on ipmp0";
const TC_GONE: &str = "no traffic control on ipmp0 any more: outbound fast path resumed";
/// The administrator's shaping: 1 Mbit/s, the UDP rounds and
/// [`TCP_SHAPED`] well within its queue.
const TBF: &[&str] = &[
    "tc", "qdisc", "add", "dev", "ipmp0", "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency",
    "400ms",
];
/// The TCP transfer while ipmp0 is shaped: two seconds at its rate.
const TCP_SHAPED: u64 = 256 << 10;
/// A clsact egress filter matching every frame, its action a copy to the
/// loopback (which drops it: not addressed to it), counted.
const MIRROR_FILTER: &[&str] = &[
    "tc", "filter", "add", "dev", "ipmp0", "egress", "protocol", "all", "u32", "match", "u32", "0", "0",
    "action", "mirred", "egress", "mirror", "dev", "lo",
];

/// How many times the daemon has logged `line` so far.
fn count(d: &Proc, line: &str) -> usize {
    d.stderr_text().matches(line).count()
}

/// Waits (bounded) until the daemon has logged `line` `times` times.
fn logged(d: &Proc, line: &str, times: usize) {
    assert!(
        wait_until(REACTION, || count(d, line) == times),
        "{line:?} not logged {times} times:\n{}",
        d.stderr_text()
    );
}

/// The switch namespace and port facing `member`.
fn switch_port(member: &str) -> (&'static str, String) {
    let ns = if member == "rge0" { "swb" } else { "swa" };
    (ns, format!("sw-{member}"))
}

/// Starts `tcpdump -n -l ARGS` in `which`; returns it once it listens.
fn tcpdump(lab: &Lab, which: &str, args: &[&str]) -> Proc {
    let mut full = vec!["-n", "-l"];
    full.extend_from_slice(args);
    let mut p = lab.spawn(which, "tcpdump", &full);
    assert!(
        wait_until(REACTION, || p.stderr_text().contains("listening on")),
        "tcpdump {args:?} did not start: {}",
        p.stderr_text()
    );
    assert!(p.running(), "tcpdump {args:?}: {}", p.stderr_text());
    p
}

/// (source MAC, source port) of a `tcpdump -e` line of a UDP or TCP
/// frame: `TIME SRC > DST, ethertype ..., length N: IP.PORT > IP.PORT: ...`.
fn mac_and_sport(line: &str) -> Option<([u8; 6], u16)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let mac = common::parse_mac(w.get(1)?)?;
    let second = w.iter().enumerate().filter(|(_, x)| **x == ">").nth(1)?.0;
    let (_, port) = w.get(second.checked_sub(1)?)?.rsplit_once('.')?;
    Some((mac, port.parse().ok()?))
}

/// Per member: frames the outbound fast path sent.
fn fast_frames(lab: &Lab) -> BTreeMap<String, u64> {
    member_counters(lab)
        .into_iter()
        .map(|(n, c)| (n, c.tx_fast_frames))
        .collect()
}

fn total_fast(lab: &Lab) -> (u64, u64) {
    member_counters(lab)
        .values()
        .fold((0, 0), |(f, b), c| (f + c.tx_fast_frames, b + c.tx_fast_bytes))
}

/// What one round of flows did.
struct Round {
    /// Source port -> the member its datagrams left by.
    member_of: BTreeMap<u16, String>,
    /// Per member: datagrams seen entering the switch from it.
    seen: BTreeMap<String, u64>,
    /// Per member: growth of `tx_fast_frames` during the round.
    fast: BTreeMap<String, u64>,
}

impl Round {
    fn members_used(&self) -> usize {
        self.member_of.values().collect::<BTreeSet<_>>().len()
    }

    fn fast_total(&self) -> u64 {
        self.fast.values().sum()
    }
}

/// Sends [`FLOWS`] UDP flows of [`PER_FLOW`] datagrams from `src` in the
/// host to `dst:dport` on the router (`extra`: the sender's SIZE and
/// IP_OPTIONS in hex); panics unless every datagram arrived exactly once.
fn send_flows(lab: &Lab, (src, dst): (&str, &str), dport: u16, sport0: u16, extra: &[&str]) {
    let dport_s = dport.to_string();
    let rx = lab.spawn("router", "python3", &["-c", FLOWS_PY, "recv", dst, &dport_s]);
    assert!(
        wait_until(REACTION, || rx.stdout_text().contains("listening")),
        "receiver did not start: {}",
        rx.stderr_text()
    );
    let (sport0_s, flows_s, per_s) = (sport0.to_string(), FLOWS.to_string(), PER_FLOW.to_string());
    let mut cmd = vec![
        "python3", "-c", FLOWS_PY, "send", src, dst, &dport_s, &sport0_s, &flows_s, &per_s,
    ];
    cmd.extend_from_slice(extra);
    lab.exec_ok("host", &cmd);
    assert!(
        wait_until(Duration::from_secs(30), || rx.stdout_text().contains("done")),
        "receiver did not end: {}",
        rx.stderr_text()
    );
    let got = rx.stdout_text();
    let flows: Vec<String> = got
        .lines()
        .filter(|l| l.starts_with("flow "))
        .map(String::from)
        .collect();
    let expect: Vec<String> = (0..FLOWS)
        .map(|i| format!("flow {} {PER_FLOW} {PER_FLOW}", sport0 + i))
        .collect();
    assert_eq!(
        flows, expect,
        "{src} -> {dst} {extra:?}: each datagram of each flow once"
    );
}

/// Sends [`FLOWS`] UDP flows of [`PER_FLOW`] datagrams from `src` in the
/// host to `dst:dport` on the router, with captures on the switch ports
/// of `watch` (the members that have carrier). Panics unless every
/// datagram arrived exactly once, each flow left by one member only,
/// and with that member's MAC as source.
fn round(lab: &Lab, watch: &[&str], (src, dst): (&str, &str), dport: u16, sport0: u16) -> Round {
    let filter = format!("udp and dst port {dport}");
    let caps: Vec<(String, Proc)> = watch
        .iter()
        .map(|m| {
            let (ns, port) = switch_port(m);
            let p = tcpdump(lab, ns, &["-e", "-Q", "in", "-i", &port, &filter]);
            (m.to_string(), p)
        })
        .collect();
    let before = fast_frames(lab);
    send_flows(lab, (src, dst), dport, sport0, &[]);
    let after = fast_frames(lab);

    let mut member_of: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let mut per_flow: BTreeMap<u16, u64> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for (m, p) in caps {
        let mac = lab.mac("host", &m);
        let out = stop_capture(p);
        let mut n = 0;
        for line in out.lines().filter(|l| l.contains(" UDP")) {
            let (from, sport) = mac_and_sport(line).unwrap_or_else(|| panic!("unparsed: {line}"));
            assert_eq!(from, mac, "{m}: a frame with another source MAC: {line}");
            member_of.entry(sport).or_default().insert(m.clone());
            *per_flow.entry(sport).or_default() += 1;
            n += 1;
        }
        seen.insert(m, n);
    }
    let ports: Vec<u16> = (sport0..sport0 + FLOWS).collect();
    assert_eq!(
        member_of.keys().copied().collect::<Vec<_>>(),
        ports,
        "every flow seen"
    );
    for (sport, ms) in &member_of {
        assert_eq!(ms.len(), 1, "flow {sport} left by {ms:?}");
        assert_eq!(per_flow[sport], PER_FLOW, "flow {sport}: frames on the wire");
    }
    let fast = after
        .iter()
        .map(|(m, a)| (m.clone(), a - before.get(m).copied().unwrap_or(0)))
        .collect();
    Round {
        member_of: member_of
            .into_iter()
            .map(|(p, ms)| (p, ms.into_iter().next().unwrap()))
            .collect(),
        seen,
        fast,
    }
}

/// Asserts the round went out in the kernel: each member's fast counter
/// grew by at least what the switch saw from it.
fn assert_all_fast(r: &Round, what: &str) {
    for (m, n) in &r.seen {
        let fast = r.fast.get(m).copied().unwrap_or(0);
        assert!(
            fast >= *n,
            "{what}: {m}: {n} datagrams on the wire, {fast} sent by the fast path (all: {:?})",
            r.fast
        );
    }
}

/// The tutorial's group with an IPv6 data address too, once that is up.
fn start_dual(lab: &Lab, extra: &[&str]) -> Proc {
    let mut args = tutorial_args();
    args.extend(strings(&["--data", DATA6_PREFIX]));
    args.extend(strings(extra));
    let d = start(lab, &args, "ipmp0", DATA);
    wait_addr_up(lab, &d, DATA6);
    d
}

/// Waits until every member is active: a group turns ready (its data
/// address) as its first member is, and a round before the others join
/// would find all flows on one.
fn wait_all_active(lab: &Lab) {
    wait_all_active_within(lab, REACTION);
}

fn wait_all_active_within(lab: &Lab, timeout: Duration) {
    let all = wait_until(timeout, || {
        let g = group_status(lab);
        g.members.len() == MEMBERS.len() && g.members.iter().all(|m| m.active)
    });
    assert!(all, "{}", ipmpstat(lab, &["-i"]).1);
}

/// Neighbour entries for the router resolved both ways (ARP and NDP go
/// through user space), so the flows' first datagrams do not wait.
fn resolve_router(lab: &Lab) {
    wait_all_active(lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    lab.ping("host", ROUTER6, 3).expect_clean();
}

#[test]
fn outbound_tcp_and_udp_leave_in_the_kernel_intact_and_spread() {
    let lab = Lab::new("eg-on");
    let _d = start_dual(&lab, &[]);
    resolve_router(&lab);
    for (dst, port) in [(ROUTER_IP, "5301"), (ROUTER6, "5302")] {
        let (_, b0) = total_fast(&lab);
        transfer_intact(
            &lab,
            &format!("host -> {dst}"),
            ("host", "router"),
            (dst, port),
            TCP_BYTES,
            TCP_TIMEOUT_S,
        );
        let (_, b1) = total_fast(&lab);
        assert!(
            b1 - b0 >= TCP_BYTES,
            "to {dst}: {TCP_BYTES} bytes sent, the fast path sent {}",
            b1 - b0
        );
    }
    for (src, dst, dport, sport0) in [(DATA, ROUTER_IP, 7101, 41000), (DATA6, ROUTER6, 7102, 42000)] {
        let r = round(&lab, &MEMBERS, (src, dst), dport, sport0);
        assert_all_fast(&r, dst);
        assert!(
            r.members_used() > 1,
            "to {dst}: all flows on one member: {:?}",
            r.member_of
        );
    }
    // The metrics show the same counters, within tx_frames and tx_bytes.
    let first = member_counters(&lab);
    let (_, metrics, _) = ipmpstat(&lab, &["--metrics"]);
    let last = member_counters(&lab);
    for m in MEMBERS {
        let metric = |name: &str| -> u64 {
            let key = format!("{name}{{group=\"production0\",interface=\"{m}\"}} ");
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&key))
                .unwrap_or_else(|| panic!("no {key}in:\n{metrics}"));
            line[key.len()..].trim().parse().expect("a number")
        };
        let (a, b) = (&first[m], &last[m]);
        let frames = metric("ipmpd_member_tx_fast_frames_total");
        let bytes = metric("ipmpd_member_tx_fast_bytes_total");
        assert!(a.tx_fast_frames > 0, "{m}: {a:?}");
        assert!(
            (a.tx_fast_frames..=b.tx_fast_frames).contains(&frames),
            "{m}: {frames}"
        );
        assert!(
            (a.tx_fast_bytes..=b.tx_fast_bytes).contains(&bytes),
            "{m}: {bytes}"
        );
        assert!(
            a.tx_frames >= a.tx_fast_frames && a.tx_bytes >= a.tx_fast_bytes,
            "{m}: {a:?}"
        );
    }
}

/// Starts the tutorial's group, with an IPv6 data address, from a file
/// that sets `outbound_fastpath = ON`; returns the daemon, a function that
/// rewrites the file with another value.
fn from_file(lab: &Lab, on: bool) -> (Proc, impl Fn(bool)) {
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("production0.toml");
    let with = move |on: bool| {
        let mut t = format!("outbound_fastpath = {on}\ndata = [\"192.0.2.200/24\", \"{DATA6_PREFIX}\"]\n");
        for m in MEMBERS {
            t.push_str(&format!("[[member]]\nname = \"{m}\"\n"));
        }
        std::fs::write(&file, t).unwrap();
    };
    with(on);
    let d = start(
        lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        DATA,
    );
    wait_addr_up(lab, &d, DATA6);
    resolve_router(lab);
    (d, with)
}

#[test]
fn a_reload_attaches_the_program_when_the_file_turns_it_on() {
    let lab = Lab::new("eg-late");
    let (d, with) = from_file(&lab, false);
    let user = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7115, 43500);
    assert_eq!(user.fast_total(), 0, "off in the file: {:?}", user.fast);
    assert!(!ipmpstat(&lab, &["-i", "--json"]).1.contains("tx_fast"));
    with(true);
    d.signal(libc::SIGHUP);
    assert!(reloads(&d, 1), "{}", d.stderr_text());
    let kernel = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7115, 43500);
    assert_all_fast(&kernel, "on after the reload");
    assert!(kernel.fast_total() >= DATAGRAMS);
    assert_eq!(kernel.member_of, user.member_of, "the same members");
}

#[test]
fn the_kernel_sends_each_flow_by_the_member_user_space_would() {
    let lab = Lab::new("eg-same");
    let (d, with) = from_file(&lab, true);
    let families = [(DATA, ROUTER_IP, 7111, 43000), (DATA6, ROUTER6, 7112, 44000)];
    let kernel: Vec<Round> = families
        .iter()
        .map(|&(s, t, dp, sp)| round(&lab, &MEMBERS, (s, t), dp, sp))
        .collect();
    for (r, f) in kernel.iter().zip(&families) {
        assert_all_fast(r, f.1);
        assert!(
            r.members_used() > 1,
            "to {}: all on one member: {:?}",
            f.1,
            r.member_of
        );
    }

    with(false);
    d.signal(libc::SIGHUP);
    assert!(reloads(&d, 1), "{}", d.stderr_text());
    for (r, &(s, t, dp, sp)) in kernel.iter().zip(&families) {
        let user = round(&lab, &MEMBERS, (s, t), dp, sp);
        assert_eq!(user.fast_total(), 0, "to {t}: off, yet {:?}", user.fast);
        assert_eq!(
            user.member_of, r.member_of,
            "to {t}: user space sends the flows by other members than the kernel did"
        );
    }

    // And back: the kernel again, by the same members.
    with(true);
    d.signal(libc::SIGHUP);
    assert!(reloads(&d, 2), "{}", d.stderr_text());
    let (s, t, dp, sp) = families[0];
    let again = round(&lab, &MEMBERS, (s, t), dp, sp);
    assert_all_fast(&again, t);
    assert_eq!(again.member_of, kernel[0].member_of, "on again");
}

#[test]
fn failover_moves_only_the_failed_members_flows_and_stays_in_the_kernel() {
    let lab = Lab::new("eg-fail");
    let _d = start_tutorial(&lab);
    wait_all_active(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    let before = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7121, 45000);
    assert_all_fast(&before, "before");
    // The member with the most flows fails; the others keep some.
    let (cut, _) = before
        .seen
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(m, n)| (m.clone(), *n))
        .unwrap();
    let survivors: Vec<&str> = MEMBERS.into_iter().filter(|m| *m != cut).collect();
    assert!(
        survivors.iter().any(|m| before.seen[*m] > 0),
        "no flow on a surviving member: {:?}",
        before.member_of
    );
    lab.cut(&cut);
    let failed = wait_until(REACTION, || {
        group_status(&lab)
            .members
            .iter()
            .any(|m| m.name == cut && !m.active)
    });
    assert!(failed, "{cut} still active: {}", ipmpstat(&lab, &["-i"]).1);

    let after = round(&lab, &survivors, (DATA, ROUTER_IP), 7121, 45000);
    assert_all_fast(&after, "after the failover");
    for (sport, was) in &before.member_of {
        let now = &after.member_of[sport];
        if *was == cut {
            assert_ne!(now, &cut, "flow {sport}");
        } else {
            assert_eq!(now, was, "flow {sport} moved from a surviving member");
        }
    }
    assert!(
        before.member_of.values().any(|m| *m == cut),
        "no flow was on {cut}"
    );

    // Repaired: every flow again leaves in the kernel, none lost.
    lab.restore(&cut);
    wait_all_active_within(&lab, REPAIR);
    let repaired = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7121, 45000);
    assert_all_fast(&repaired, "after the repair");
}

#[test]
fn tcpdump_on_ipmp0_sees_every_outbound_frame() {
    let lab = Lab::new("eg-dump");
    let d = start_tutorial(&lab);
    wait_all_active(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    // Without a capture the flows leave in the kernel, past ipmp0's taps.
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7131, 46000);
    assert_all_fast(&r, "before the capture");
    assert_eq!(count(&d, CAPTURE_OPEN), 0, "{}", d.stderr_text());

    let dump = tcpdump(
        &lab,
        "host",
        &[
            "-i",
            "ipmp0",
            "(udp and dst port 7132) or (tcp and dst port 5303)",
        ],
    );
    logged(&d, CAPTURE_OPEN, 1);
    let (f0, _) = total_fast(&lab);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7132, 47000);
    transfer_intact(
        &lab,
        "during the capture",
        ("host", "router"),
        (ROUTER_IP, "5303"),
        TCP_DURING_CAPTURE,
        TCP_TIMEOUT_S,
    );
    let (f1, _) = total_fast(&lab);
    let out = stop_capture(dump);
    let udp = out
        .lines()
        .filter(|l| l.contains(&format!("> {ROUTER_IP}.7132: UDP")))
        .count() as u64;
    assert_eq!(udp, DATAGRAMS, "tcpdump -i ipmp0 saw:\n{out}");
    // TCP payload bytes in the capture (its last `length N`): all of the
    // transfer's, at least (a retransmission counts twice).
    let tcp: u64 = out
        .lines()
        .filter(|l| l.contains(&format!("> {ROUTER_IP}.5303: ")))
        .filter_map(|l| {
            l.rsplit_once("length ")
                .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        })
        .sum();
    assert!(
        tcp >= TCP_DURING_CAPTURE,
        "{tcp} TCP bytes in the capture:\n{out}"
    );
    assert_eq!(f1, f0, "the fast path sent frames while tcpdump watched ipmp0");
    assert_eq!(r.fast_total(), 0);

    logged(&d, CAPTURE_GONE, 1);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7133, 48000);
    assert_all_fast(&r, "after the capture");
    assert!(r.fast_total() >= DATAGRAMS);

    // A capture on all interfaces watches ipmp0 too.
    let dump = tcpdump(&lab, "host", &["-i", "any", "udp and dst port 7134"]);
    logged(&d, CAPTURE_OPEN, 2);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7134, 48500);
    assert_eq!(r.fast_total(), 0, "tcpdump -i any: {:?}", r.fast);
    let out = stop_capture(dump);
    // `TIME ipmp0 Out IP SRC > DST: UDP, ...` (the member's copy shows too).
    let on_group = out
        .lines()
        .filter(|l| l.contains(" ipmp0 Out ") && l.contains(&format!("> {ROUTER_IP}.7134: UDP")))
        .count() as u64;
    assert_eq!(on_group, DATAGRAMS, "tcpdump -i any saw:\n{out}");
    logged(&d, CAPTURE_GONE, 2);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7135, 49000);
    assert_all_fast(&r, "after tcpdump -i any");
}

#[test]
fn frames_the_program_does_not_take_leave_through_user_space() {
    let lab = Lab::new("eg-other");
    let _d = start_dual(&lab, &[]);
    resolve_router(&lab);
    // Tagged frames, written on ipmp0 by a packet socket (no 802.1Q
    // module needed): the router sees each once, still tagged.
    let dump = tcpdump(
        &lab,
        "router",
        &["-e", "-i", "r0", "vlan and udp and dst port 7149"],
    );
    let (f0, _) = total_fast(&lab);
    lab.exec_ok(
        "host",
        &[
            "python3",
            "-c",
            RAW_PY,
            "ipmp0",
            &hex_mac(&lab.mac("host", "ipmp0")),
            &hex_mac(&lab.mac("router", "r0")),
            DATA,
            ROUTER_IP,
            "7149",
            &TAGGED.to_string(),
            VLAN_ID,
        ],
    );
    let out = stop_capture(dump);
    let tagged = out
        .lines()
        .filter(|l| l.contains(&format!("vlan {VLAN_ID},")))
        .count() as u64;
    assert_eq!(tagged, TAGGED, "tagged frames at the router:\n{out}");
    let (f1, _) = total_fast(&lab);
    assert_eq!(f1, f0, "VLAN-tagged: the fast path sent frames");

    let cases: [(&str, (&str, &str), &[&str]); 3] = [
        ("IPv4 options", (DATA, ROUTER_IP), &["64", IPV4_NOPS]),
        ("IPv4 fragments", (DATA, ROUTER_IP), &[FRAGMENTED_SIZE]),
        (
            "IPv6 hop-by-hop header",
            (DATA6, ROUTER6),
            &["64", IPV6_HOP_BY_HOP],
        ),
    ];
    for (i, (what, (src, dst), extra)) in cases.into_iter().enumerate() {
        let (f0, _) = total_fast(&lab);
        let port = 7150 + i as u16;
        send_flows(&lab, (src, dst), port, 51000 + 100 * i as u16, extra);
        let (f1, _) = total_fast(&lab);
        assert_eq!(f1, f0, "{what}: the fast path sent frames");
    }
    // The same flows as plain datagrams leave in the kernel.
    let (f0, _) = total_fast(&lab);
    send_flows(&lab, (DATA, ROUTER_IP), 7160, 52000, &[]);
    send_flows(&lab, (DATA6, ROUTER6), 7161, 52000, &[]);
    let (f1, _) = total_fast(&lab);
    assert!(f1 - f0 >= 2 * DATAGRAMS, "{f0} -> {f1}");
}

/// Traffic flows, and nothing leaves in the kernel: the counters of the
/// fast path stay absent from the JSON.
fn nothing_in_the_kernel(lab: &Lab, extra: &[&str]) -> (Proc, Round) {
    let d = start_dual(lab, extra);
    resolve_router(lab);
    transfer_intact(
        lab,
        &format!("{extra:?}"),
        ("host", "router"),
        (ROUTER_IP, "5304"),
        TCP_BYTES,
        TCP_TIMEOUT_S,
    );
    transfer_intact(
        lab,
        &format!("{extra:?} over IPv6"),
        ("host", "router"),
        (ROUTER6, "5305"),
        TCP_BYTES,
        TCP_TIMEOUT_S,
    );
    let r6 = round(lab, &MEMBERS, (DATA6, ROUTER6), 7142, 50500);
    assert_eq!(r6.fast_total(), 0, "{extra:?}: {:?}", r6.fast);
    let r = round(lab, &MEMBERS, (DATA, ROUTER_IP), 7141, 50000);
    assert_eq!(r.fast_total(), 0, "{extra:?}: {:?}", r.fast);
    let (_, j, _) = ipmpstat(lab, &["-i", "--json"]);
    assert!(!j.contains("tx_fast"), "{extra:?}: {j}");
    (d, r)
}

#[test]
fn with_the_outbound_fast_path_off_user_space_sends_everything() {
    let lab = Lab::new("eg-off");
    let (_d, r) = nothing_in_the_kernel(&lab, &["--outbound-fastpath", "off"]);
    assert!(r.members_used() > 1, "flows still spread: {:?}", r.member_of);
}

#[test]
fn in_bound_mode_user_space_sends_everything_by_the_bound_member() {
    let lab = Lab::new("eg-bound");
    let (_d, r) = nothing_in_the_kernel(&lab, &["--outbound", "bound"]);
    let bound = bound_member(&lab, DATA).expect("the data address is bound");
    assert!(
        r.member_of.values().all(|m| *m == bound),
        "bound to {bound}: {:?}",
        r.member_of
    );
}

/// How long a DHCP client's socket stands before the traffic: several of
/// the daemon's looks for captures (every 100 ms).
const SEVERAL_LOOKS: Duration = Duration::from_millis(500);

/// Whether the host has a packet socket for all protocols on ipmp0
/// (`/proc/net/packet`: Proto 0003, Iface = ipmp0's index).
fn all_protocols_socket_on_ipmp0(lab: &Lab) -> bool {
    let index = lab.exec_ok("host", &["cat", "/sys/class/net/ipmp0/ifindex"]);
    let table = lab.exec_ok("host", &["cat", "/proc/net/packet"]);
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.get(3) == Some(&"0003") && cols.get(4) == Some(&index.trim())
    })
}

/// ISC dhclient holds a filtered packet socket for all protocols on the
/// interface it serves, with no receive ring, for as long as it runs: it is
/// no capture, and the fast path stays on beside it (here with no DHCP
/// server, so it keeps asking). tcpdump with an expression (a filter too,
/// and libpcap's ring) still makes it step aside.
#[test]
fn a_dhcp_client_on_ipmp0_leaves_the_fast_path_on() {
    let lab = Lab::new("eg-dhcl");
    let d = start_tutorial(&lab);
    wait_all_active(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    let work = lab.dir.join("dhclient");
    std::fs::create_dir_all(&work).unwrap();
    let conf = work.join("dhclient.conf");
    std::fs::write(&conf, "").unwrap(); // defaults; never the host's /etc/dhcp
    let p = |f: &str| work.join(f).to_string_lossy().into_owned();
    let mut client = lab.spawn(
        "host",
        "dhclient",
        &[
            "-d",
            "-cf",
            &p("dhclient.conf"),
            "-sf",
            "/bin/true",
            "-lf",
            &p("dhclient.leases"),
            "-pf",
            &p("dhclient.pid"),
            "ipmp0",
        ],
    );
    assert!(
        wait_until(REACTION, || all_protocols_socket_on_ipmp0(&lab)),
        "dhclient opened no socket on ipmp0: {}",
        client.stderr_text()
    );
    std::thread::sleep(SEVERAL_LOOKS);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7141, 49000);
    assert_all_fast(&r, "beside dhclient");
    assert_eq!(count(&d, CAPTURE_OPEN), 0, "{}", d.stderr_text());
    assert!(client.running(), "dhclient exited: {}", client.stderr_text());

    let dump = tcpdump(&lab, "host", &["-i", "ipmp0", "udp and dst port 7142"]);
    logged(&d, CAPTURE_OPEN, 1);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7142, 49500);
    assert_eq!(r.fast_total(), 0, "tcpdump with a filter: {:?}", r.fast);
    drop(stop_capture(dump));
    client.stop(Duration::from_secs(5));
}

/// (bytes, packets) of the first `Sent N bytes M pkt` after the first
/// line holding `what` in `tc -s` output.
fn tc_sent(out: &str, what: &str) -> (u64, u64) {
    let at = out.find(what).unwrap_or_else(|| panic!("no {what:?} in:\n{out}"));
    let sent = out[at..]
        .split("Sent ")
        .nth(1)
        .unwrap_or_else(|| panic!("no counters after {what:?} in:\n{out}"));
    let w: Vec<&str> = sent.split_whitespace().collect();
    match (
        w.first().and_then(|b| b.parse().ok()),
        w.get(2).and_then(|p| p.parse().ok()),
    ) {
        (Some(b), Some(p)) => (b, p),
        _ => panic!("unparsed counters after {what:?} in:\n{out}"),
    }
}

/// (bytes, packets) ipmp0's tbf root qdisc sent so far.
fn tbf_sent(lab: &Lab) -> (u64, u64) {
    let out = lab.exec_ok("host", &["tc", "-s", "qdisc", "show", "dev", "ipmp0"]);
    tc_sent(&out, "qdisc tbf ")
}

/// (bytes, packets) the clsact egress filter's copy action took so far.
fn mirror_sent(lab: &Lab) -> (u64, u64) {
    let out = lab.exec_ok("host", &["tc", "-s", "filter", "show", "dev", "ipmp0", "egress"]);
    tc_sent(&out, "mirred (Egress Mirror to device lo)")
}

#[test]
fn traffic_control_on_ipmp0_applies_to_every_outbound_frame() {
    let lab = Lab::new("eg-tc");
    let d = start_tutorial(&lab);
    wait_all_active(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();

    // A root qdisc shaping ipmp0: every frame goes through it.
    lab.exec_ok("host", TBF);
    logged(&d, &format!("{TC_ON} (tbf)"), 1);
    let (f0, _) = total_fast(&lab);
    let (b0, p0) = tbf_sent(&lab);
    send_flows(&lab, (DATA, ROUTER_IP), 7171, 53000, &[]);
    let (_, p1) = tbf_sent(&lab);
    transfer_intact(
        &lab,
        "shaped by tbf",
        ("host", "router"),
        (ROUTER_IP, "5306"),
        TCP_SHAPED,
        TCP_TIMEOUT_S,
    );
    let (b2, _) = tbf_sent(&lab);
    let (f1, _) = total_fast(&lab);
    assert_eq!(f1, f0, "the fast path sent frames past ipmp0's tbf");
    assert!(
        p1 - p0 >= DATAGRAMS,
        "tbf sent {} packets for {DATAGRAMS} datagrams",
        p1 - p0
    );
    assert!(
        b2 - b0 >= TCP_SHAPED,
        "tbf sent {} bytes for {TCP_SHAPED} of TCP",
        b2 - b0
    );

    lab.exec_ok("host", &["tc", "qdisc", "del", "dev", "ipmp0", "root"]);
    logged(&d, TC_GONE, 1);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7172, 53500);
    assert_all_fast(&r, "after the tbf");
    assert!(r.fast_total() >= DATAGRAMS);

    // clsact with an egress filter: every frame passes it.
    lab.exec_ok("host", &["tc", "qdisc", "add", "dev", "ipmp0", "clsact"]);
    lab.exec_ok("host", MIRROR_FILTER);
    logged(&d, &format!("{TC_ON} (clsact)"), 1);
    let (f0, _) = total_fast(&lab);
    let (_, m0) = mirror_sent(&lab);
    send_flows(&lab, (DATA, ROUTER_IP), 7173, 54000, &[]);
    let (_, m1) = mirror_sent(&lab);
    let (f1, _) = total_fast(&lab);
    assert_eq!(f1, f0, "the fast path sent frames past ipmp0's egress filter");
    assert!(
        m1 - m0 >= DATAGRAMS,
        "the filter saw {} frames for {DATAGRAMS} datagrams",
        m1 - m0
    );

    lab.exec_ok("host", &["tc", "qdisc", "del", "dev", "ipmp0", "clsact"]);
    logged(&d, TC_GONE, 2);
    let r = round(&lab, &MEMBERS, (DATA, ROUTER_IP), 7174, 54500);
    assert_all_fast(&r, "after the clsact");
    assert_eq!(count(&d, TC_ON), 2, "{}", d.stderr_text());
}
