//! One wedged member never stalls the others: a member throttled to a
//! trickle by a deep token-bucket queue (as a NIC whose transmit ring no
//! longer drains, behind a deep default qdisc). Through ipmpd's outbound
//! thread (`--outbound-fastpath off`) it fills the member socket's send
//! buffer; the flows hashed onto the other members keep their rate, and the
//! throttled member counts its dropped frames as `tx_queue_full`. Through
//! the kernel's outbound fast path the frames queue behind the throttle as
//! on any NIC, charged to the sending sockets: only the sockets of flows
//! on the throttled member are held back (non-blocking sends see EAGAIN),
//! and the flows on the other members keep their rate.

mod common;

use common::daemon::*;
use common::{wait_until, Lab, MEMBERS, ROUTER_IP};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Flows (source ports) in each run: enough that every member carries some.
const FLOWS: u16 = 24;
const FIRST_SPORT: u16 = 31000;
/// The router's receiving port.
const DPORT: u16 = 5001;
/// Datagrams per second over all flows, sent in ticks.
const RATE: u32 = 3000;
const TICK: Duration = Duration::from_millis(10);
/// Datagram payload: large enough that the throttled member's socket buffer
/// fills within the warm-up.
const PAYLOAD: usize = 1000;
/// Traffic before the measured window: fills the throttled member's queue.
const WARMUP: Duration = Duration::from_secs(3);
/// The measured window.
const MEASURE: Duration = Duration::from_secs(4);
/// How long the receiver waits for stragglers after the sender stopped.
const DRAIN: Duration = Duration::from_secs(1);
/// First payload byte of a datagram sent inside the measured window.
const MEASURED: u8 = 1;
/// Datagrams per flow sent to find the member each flow leaves through.
const MAP_ROUNDS: u16 = 3;
/// The flows on the other members must keep this share of their unthrottled rate.
const MIN_RATIO: f64 = 0.8;
/// The throttle: a trickle, with a queue deep enough (bytes) that the
/// member's packet socket send buffer fills before the queue does, as
/// behind fq_codel's 10240 packets on a NIC that stopped transmitting.
const TBF: &[&str] = &["rate", "8kbit", "burst", "1600", "limit", "64mb"];

/// Runs `f` on a thread inside the lab namespace `which`; sockets it opens
/// live in that namespace.
fn in_ns<T: Send + 'static>(
    lab: &Lab,
    which: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{}", lab.ns(which));
    thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}");
        f()
    })
}

fn sports() -> impl Iterator<Item = u16> {
    FIRST_SPORT..FIRST_SPORT + FLOWS
}

/// Sends every flow round-robin at [`RATE`] for `duration`; the first byte
/// of each datagram says whether it falls inside the measured window.
/// Non-blocking sockets: a socket whose frames wait behind the throttle
/// refuses more (EAGAIN) rather than stopping the sender.
fn send_flows(warmup: Duration, duration: Duration) -> u64 {
    let socks: Vec<UdpSocket> = sports()
        .map(|p| UdpSocket::bind(SocketAddrV4::new(DATA.parse().unwrap(), p)).expect("bind sender"))
        .collect();
    for s in &socks {
        s.set_nonblocking(true).expect("non-blocking sender");
    }
    let dst = SocketAddrV4::new(ROUTER_IP.parse().unwrap(), DPORT);
    let per_tick = (RATE as u128 * TICK.as_millis() / 1000) as usize;
    let mut buf = [0u8; PAYLOAD];
    let start = Instant::now();
    let mut next = start;
    let mut sent = 0u64;
    let mut i = 0usize;
    while next < start + duration {
        buf[0] = u8::from(next >= start + warmup) * MEASURED;
        for _ in 0..per_tick {
            if socks[i % socks.len()].send_to(&buf, dst).is_ok() {
                sent += 1;
            }
            i += 1;
        }
        next += TICK;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    sent
}

/// Counts datagrams of the measured window per source port until `until`.
fn receive(ready: mpsc::Sender<()>, until: Duration) -> BTreeMap<u16, u64> {
    let sock = UdpSocket::bind(SocketAddrV4::new(ROUTER_IP.parse().unwrap(), DPORT)).expect("bind receiver");
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    ready.send(()).unwrap();
    let end = Instant::now() + until;
    let mut counts = BTreeMap::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n > 0 && buf[0] == MEASURED {
                *counts.entry(from.port()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// One run: datagrams of the measured window received per source port.
fn run(lab: &Lab) -> BTreeMap<u16, u64> {
    let (tx, rx) = mpsc::channel();
    let total = WARMUP + MEASURE;
    let receiver = in_ns(lab, "router", move || {
        receive(tx, total + DRAIN + Duration::from_secs(1))
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("receiver ready");
    let sent = in_ns(lab, "host", move || send_flows(WARMUP, total))
        .join()
        .expect("sender");
    assert!(sent > 0, "nothing sent");
    receiver.join().expect("receiver")
}

/// Starts a capture and waits until tcpdump listens.
fn capture(lab: &Lab, which: &str, port: &str) -> common::Proc {
    let filter = format!("udp and dst port {DPORT}");
    let mut p = lab.spawn(which, "tcpdump", &["-n", "-l", "-i", port, "-Q", "in", &filter]);
    assert!(
        wait_until(Duration::from_secs(10), || p
            .stderr_text()
            .contains("listening on")),
        "tcpdump did not start: {}",
        p.stderr_text()
    );
    let _ = p.running();
    p
}

/// The member each flow leaves through, seen on the switch ports.
fn map_flows(lab: &Lab) -> BTreeMap<u16, &'static str> {
    let ports = [("swa", "sw-e1000g0"), ("swa", "sw-e1000g1"), ("swb", "sw-rge0")];
    let caps: Vec<_> = ports.iter().map(|&(ns, p)| capture(lab, ns, p)).collect();
    in_ns(lab, "host", || {
        let dst = SocketAddrV4::new(ROUTER_IP.parse().unwrap(), DPORT);
        let socks: Vec<UdpSocket> = sports()
            .map(|p| UdpSocket::bind(SocketAddrV4::new(DATA.parse().unwrap(), p)).unwrap())
            .collect();
        for _ in 0..MAP_ROUNDS {
            for s in &socks {
                s.send_to(&[0u8; 8], dst).unwrap();
            }
            thread::sleep(TICK);
        }
    })
    .join()
    .expect("mapping sender");
    thread::sleep(Duration::from_millis(300));
    let mut map = BTreeMap::new();
    for (mut cap, (member, _)) in caps.into_iter().zip(MEMBERS.iter().zip(ports)) {
        cap.signal(libc::SIGINT);
        cap.wait_timeout(Duration::from_secs(5));
        for l in cap.stdout_text().lines() {
            let Some(i) = l.find("192.0.2.200.") else { continue };
            let sport: String = l[i + 12..].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(p) = sport.parse::<u16>() {
                let prev = map.insert(p, *member);
                assert!(
                    prev.is_none() || prev == Some(*member),
                    "flow {p} left through two members"
                );
            }
        }
    }
    assert_eq!(
        map.len(),
        usize::from(FLOWS),
        "every flow seen on a switch port: {map:?}"
    );
    map
}

/// The counters `ipmpstat --json` shows for `member`.
fn counters_of(lab: &Lab, member: &str) -> ipmpd::control::Counters {
    member_counters(lab).remove(member).expect("member in status")
}

fn tx_drops(lab: &Lab, member: &str) -> BTreeMap<String, u64> {
    counters_of(lab, member).tx_drops
}

#[test]
fn a_throttled_member_does_not_stall_flows_on_the_others() {
    throttled_member(false);
}

/// The kernel's outbound fast path: the throttled member's frames queue
/// behind its qdisc, counted by the fast path; the others keep their rate.
#[test]
fn through_the_kernel_a_throttled_member_holds_back_only_its_own_flows() {
    throttled_member(true);
}

fn throttled_member(fastpath: bool) {
    let lab = Lab::new(if fastpath { "wedgek" } else { "wedge" });
    let mut args = tutorial_args();
    args.extend(["--outbound-fastpath", if fastpath { "on" } else { "off" }].map(String::from));
    let d = start(&lab, &args, "ipmp0", DATA);
    let r = lab.ping("host", ROUTER_IP, 1);
    assert!(r.clean(), "router reachable: {r:?}");
    let member_of = map_flows(&lab);

    // Throttle the member carrying the most flows: the worst case for a
    // relay that waits on it.
    let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
    for m in member_of.values() {
        *per_member.entry(m).or_default() += 1;
    }
    let (&slow, _) = per_member.iter().max_by_key(|(_, n)| **n).unwrap();
    let fast: BTreeSet<u16> = member_of
        .iter()
        .filter(|(_, m)| **m != slow)
        .map(|(p, _)| *p)
        .collect();
    assert!(!fast.is_empty(), "all flows on {slow}: {per_member:?}");
    let fast_sum = |c: &BTreeMap<u16, u64>| fast.iter().map(|p| c.get(p).copied().unwrap_or(0)).sum::<u64>();

    let before = run(&lab);
    let base = fast_sum(&before);
    assert!(base > 0, "nothing arrived without the throttle: {before:?}");

    let mut tc = vec!["tc", "qdisc", "add", "dev", slow, "root", "tbf"];
    tc.extend_from_slice(TBF);
    lab.exec_ok("host", &tc);
    let after = run(&lab);
    let kept = fast_sum(&after);
    let ratio = kept as f64 / base as f64;
    let drops = tx_drops(&lab, slow);
    let tc_stats = lab.exec_ok("host", &["tc", "-s", "qdisc", "show", "dev", slow]);
    eprintln!(
        "throttled {slow} ({per_member:?}): other members' flows {kept}/{base} datagrams ({:.0} %); \
         {slow} tx drops {drops:?}\n{tc_stats}",
        ratio * 100.0
    );
    assert!(
        ratio >= MIN_RATIO,
        "flows on the other members fell to {:.0} % ({kept}/{base}) while {slow} was throttled\n\
         per flow before {before:?}\nafter {after:?}\n{}",
        ratio * 100.0,
        d.stderr_text()
    );
    let full = drops.get("tx_queue_full").copied().unwrap_or(0);
    if fastpath {
        // Sent in the kernel, queued behind the throttle: no drop of
        // ipmpd's, and the qdisc holds the frames.
        let fast = fast_frames(&lab, slow);
        assert!(fast > 0, "{slow}: nothing went through the kernel's fast path");
        assert_eq!(full, 0, "{slow}: {drops:?}");
    } else {
        assert!(full > 0, "{slow} counted no tx_queue_full drop: {drops:?}");
    }
}

/// Frames the kernel's outbound fast path sent out of `member`.
fn fast_frames(lab: &Lab, member: &str) -> u64 {
    counters_of(lab, member).tx_fast_frames
}
