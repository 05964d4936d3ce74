//! The inbound fast path in a namespace lab: TCP and UDP data frames go
//! into ipmp0 in the kernel (each member's tcx program), exactly once, and
//! everything else still through the data thread.

mod common;

use common::daemon::*;
use common::{fmt_mac, hex_mac, wait_until, Lab, ROUTER_IP};
use std::time::Duration;

/// `recv ADDR PORT`: counts datagrams (and distinct ones) until none came
/// for a while. `send ADDR PORT N`: N numbered datagrams, paced.
/// `raw IFNAME SRC_MAC DST_MAC SRC_IP DST_IP PORT N`: N UDP frames built
/// by hand, for a source MAC the kernel would never use.
const UDP_PY: &str = r#"
import socket, struct, sys, time
mode = sys.argv[1]
fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
if mode == "recv":
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((sys.argv[2], int(sys.argv[3])))
    s.settimeout(3)
    print("listening", flush=True)
    n, seen = 0, set()
    while True:
        try:
            b = s.recv(2048)
        except socket.timeout:
            break
        n += 1
        seen.add(b[:8])
    print("got", n, len(seen), flush=True)
elif mode == "send":
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[4])):
        s.sendto(i.to_bytes(8, "big") + b"x" * 56, (sys.argv[2], int(sys.argv[3])))
        time.sleep(0.001)
else:
    ifname, smac, dmac, sip, dip, port, n = sys.argv[2:9]
    def csum(h):
        t = sum(struct.unpack("!10H", h)); t = (t >> 16) + (t & 0xffff); t += t >> 16
        return (~t) & 0xffff
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    for i in range(int(n)):
        payload = i.to_bytes(8, "big") + b"y" * 56
        udp = struct.pack("!HHHH", 4000, int(port), 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         socket.inet_aton(sip), socket.inet_aton(dip))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(bytes.fromhex(dmac) + bytes.fromhex(smac) + b"\x08\x00" + ip + udp)
        time.sleep(0.001)
"#;
/// Datagrams per burst: enough that a duplicate path or a lost one shows.
const N: u64 = 300;
/// Frames the data thread may see besides the test's own (ARP, IGMP,
/// ICMP of the pings, switch chatter) while N UDP datagrams and TCP streams
/// go by on the fast path.
const SLOW_PATH_CHATTER: u64 = 150;
/// Per iperf3 run, in MiB.
const TCP_MIB: u64 = 20;

/// Starts the receiver on the host; returns it once it listens.
fn receiver(lab: &Lab, port: &str) -> common::Proc {
    receiver_at(lab, DATA, port)
}

fn receiver_at(lab: &Lab, addr: &str, port: &str) -> common::Proc {
    let mut rx = lab.spawn("host", "python3", &["-c", UDP_PY, "recv", addr, port]);
    assert!(
        wait_until(Duration::from_secs(10), || rx.stdout_text().contains("listening")),
        "receiver did not start: {}",
        rx.stderr_text()
    );
    let _ = rx.running();
    rx
}

/// (datagrams, distinct datagrams) the receiver got.
fn received(mut rx: common::Proc) -> (u64, u64) {
    rx.wait_timeout(Duration::from_secs(30));
    let out = rx.stdout_text();
    let line = out
        .lines()
        .find(|l| l.starts_with("got "))
        .unwrap_or_else(|| panic!("{out}"));
    let w: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (w[0], w[1])
}

/// Sends N datagrams from the router to the data address and returns what
/// arrived.
fn udp_burst(lab: &Lab, port: &str) -> (u64, u64) {
    udp_burst_to(lab, DATA, port)
}

fn udp_burst_to(lab: &Lab, addr: &str, port: &str) -> (u64, u64) {
    let rx = receiver_at(lab, addr, port);
    lab.exec_ok(
        "router",
        &["python3", "-c", UDP_PY, "send", addr, port, &N.to_string()],
    );
    received(rx)
}

/// Points the router's neighbour entry for the data address at `member`'s
/// MAC, so its frames arrive on that member.
fn via(lab: &Lab, member: &str) -> [u8; 6] {
    let mac = lab.mac("host", member);
    lab.exec_ok(
        "router",
        &[
            "ip",
            "neigh",
            "replace",
            DATA,
            "lladdr",
            &fmt_mac(&mac),
            "dev",
            "r0",
            "nud",
            "permanent",
        ],
    );
    mac
}

/// Per member: (name, frames the data thread passed on, frames the fast
/// path did, bytes the fast path did).
fn rx_counts(lab: &Lab) -> Vec<(String, u64, u64, u64)> {
    let (_, j, _) = ipmpstat(lab, &["-i", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    groups[0]
        .members
        .iter()
        .map(|m| {
            let c = &m.counters;
            (
                m.name.clone(),
                c.rx_frames - c.rx_fast_frames,
                c.rx_fast_frames,
                c.rx_fast_bytes,
            )
        })
        .collect()
}

/// Over all members: (frames the data thread passed on, frames and bytes
/// the fast path did).
fn totals(lab: &Lab) -> (u64, u64, u64) {
    rx_counts(lab)
        .iter()
        .fold((0, 0, 0), |(s, f, fb), (_, a, b, c)| (s + a, f + b, fb + c))
}

fn iperf(lab: &Lab, reverse: bool) {
    let mut srv = lab.spawn("router", "iperf3", &["-s", "-1", "-B", ROUTER_IP]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .sh("router", "ss -ltn | grep -q ':5201'")
        .status
        .success()));
    let size = format!("{TCP_MIB}M");
    let mut args = vec!["timeout", "30", "iperf3", "-c", ROUTER_IP, "-n", &size, "-J"];
    if reverse {
        args.push("-R");
    }
    let out = lab.exec("host", &args);
    assert!(
        out.status.success(),
        "iperf3 reverse={reverse}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    srv.wait_timeout(Duration::from_secs(5));
}

/// Starts a capture and waits until tcpdump listens.
fn capture(lab: &Lab, args: &[&str]) -> common::Proc {
    let mut full = vec!["-n", "-l"];
    full.extend_from_slice(args);
    let mut p = lab.spawn("host", "tcpdump", &full);
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

/// Stops a capture; (lines that contain `what`, the whole output).
fn captured(mut p: common::Proc, what: &str) -> (usize, String) {
    std::thread::sleep(Duration::from_millis(300));
    p.signal(libc::SIGINT);
    p.wait_timeout(Duration::from_secs(5));
    let out = p.stdout_text();
    (
        out.lines().filter(|l| l.contains(what)).count(),
        out + &p.stderr_text(),
    )
}

#[test]
fn tcp_and_udp_go_into_ipmp0_in_the_kernel_exactly_once() {
    let lab = Lab::new("fast-on");
    let _d = start_tutorial(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    let (slow0, fast0, bytes0) = totals(&lab);
    for reverse in [false, true] {
        iperf(&lab, reverse);
    }
    via(&lab, "e1000g0");
    let on_group = capture(&lab, &["-i", "ipmp0", "udp", "and", "dst", "port", "7001"]);
    let on_member = capture(&lab, &["-i", "e1000g0", "udp", "and", "dst", "port", "7001"]);
    let member_before = rx_counts(&lab)[0].2;
    assert_eq!(udp_burst(&lab, "7001"), (N, N), "each datagram once");
    let seen = format!("> {DATA}.7001: ");
    let (n, out) = captured(on_group, &seen);
    assert_eq!(n, N as usize, "tcpdump -i ipmp0:\n{out}");
    let (n, out) = captured(on_member, &seen);
    assert_eq!(n, N as usize, "tcpdump -i e1000g0:\n{out}");
    let (name, _, member_after, _) = rx_counts(&lab)[0].clone();
    assert_eq!(name, "e1000g0");
    assert!(
        member_after - member_before >= N,
        "{member_before} -> {member_after}"
    );
    // Pings (ICMP: the data thread's) still work both ways.
    lab.ping("host", ROUTER_IP, 5).expect_clean();
    lab.ping("router", DATA, 5).expect_clean();
    let (slow1, fast1, bytes1) = totals(&lab);
    // The reverse transfer's data (GRO may have merged segments), both
    // transfers' ACKs and the datagrams went in in the kernel; the data
    // thread saw only the chatter.
    assert!(fast1 - fast0 > N, "fast path delivered {} frames", fast1 - fast0);
    assert!(
        bytes1 - bytes0 > TCP_MIB << 20,
        "fast path delivered {} bytes",
        bytes1 - bytes0
    );
    assert!(
        slow1 - slow0 < SLOW_PATH_CHATTER,
        "data thread passed on {}",
        slow1 - slow0
    );
}

#[test]
fn offline_and_looped_frames_are_not_delivered() {
    let lab = Lab::new("fast-drop");
    let _d = start_tutorial(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    let m0 = via(&lab, "e1000g0");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipmpadm"))
        .args(["offline", "e1000g0"])
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fast_before = rx_counts(&lab)[0].2;
    assert_eq!(
        udp_burst(&lab, "7002"),
        (0, 0),
        "an offline member delivers nothing"
    );
    assert_eq!(rx_counts(&lab)[0].2, fast_before);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipmpadm"))
        .args(["online", "e1000g0"])
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        udp_burst(&lab, "7002"),
        (N, N),
        "online again: each datagram once"
    );
    assert!(rx_counts(&lab)[0].2 >= fast_before + N);

    // A frame from another member's MAC to this one's: looped, never
    // delivered (last: it teaches the switch a wrong port for that MAC).
    let m1 = lab.mac("host", "e1000g1");
    let rx = receiver(&lab, "7003");
    lab.exec_ok(
        "router",
        &[
            "python3",
            "-c",
            UDP_PY,
            "raw",
            "r0",
            &hex_mac(&m1),
            &hex_mac(&m0),
            ROUTER_IP,
            DATA,
            "7003",
            &N.to_string(),
        ],
    );
    assert_eq!(received(rx), (0, 0), "looped frames");
    // The same frames from the router's MAC arrive: the test can fail.
    let rx = receiver(&lab, "7004");
    let r0 = lab.mac("router", "r0");
    lab.exec_ok(
        "router",
        &[
            "python3",
            "-c",
            UDP_PY,
            "raw",
            "r0",
            &hex_mac(&r0),
            &hex_mac(&m0),
            ROUTER_IP,
            DATA,
            "7004",
            &N.to_string(),
        ],
    );
    assert_eq!(received(rx), (N, N));
}

#[test]
fn with_the_fast_path_off_the_data_thread_delivers_everything() {
    let lab = Lab::new("fast-off");
    let mut args = tutorial_args();
    args.extend(strings(&["--inbound-fastpath", "off"]));
    let _d = start(&lab, &args, "ipmp0", DATA);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    via(&lab, "e1000g0");
    let (slow0, _, _) = totals(&lab);
    assert_eq!(udp_burst(&lab, "7005"), (N, N));
    let (slow1, fast1, _) = totals(&lab);
    assert_eq!(fast1, 0, "nothing on the fast path");
    assert!(slow1 - slow0 >= N, "data thread passed on {}", slow1 - slow0);
    for reverse in [false, true] {
        iperf(&lab, reverse);
    }
    assert_eq!(totals(&lab).1, 0);
}

#[test]
fn a_reload_turns_the_fast_path_off_and_on_at_once() {
    let lab = Lab::new("fast-hup");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("production0.toml");
    let with = |on: bool| {
        let t = format!(
            "inbound_fastpath = {on}\ndata = [\"192.0.2.200/24\"]\n\
             [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n"
        );
        std::fs::write(&file, t).unwrap();
    };
    with(false);
    let d = start(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        DATA,
    );
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    via(&lab, "e1000g0");
    assert_eq!(udp_burst(&lab, "7006"), (N, N));
    assert_eq!(totals(&lab).1, 0, "off in the file");
    with(true);
    d.signal(libc::SIGHUP);
    assert!(reloads(&d, 1), "{}", d.stderr_text());
    assert_eq!(udp_burst(&lab, "7006"), (N, N));
    let fast = totals(&lab).1;
    assert!(fast >= N, "on after the reload: {fast}");
    with(false);
    d.signal(libc::SIGHUP);
    assert!(reloads(&d, 2), "{}", d.stderr_text());
    assert_eq!(udp_burst(&lab, "7006"), (N, N));
    assert_eq!(totals(&lab).1, fast, "off again: the map counts nothing more");
}

#[test]
fn ipv6_udp_goes_into_ipmp0_in_the_kernel_exactly_once() {
    const DATA6: &str = "2001:db8::200";
    let lab = Lab::new("fast-v6");
    let mut args = tutorial_args();
    args.extend(strings(&["--data", "2001:db8::200/64"]));
    let d = start(&lab, &args, "ipmp0", DATA);
    // Bound once past DAD.
    wait_addr_up(&lab, &d, DATA6);
    let (_, fast0, _) = totals(&lab);
    assert_eq!(udp_burst_to(&lab, DATA6, "7007"), (N, N), "each datagram once");
    let (_, fast1, _) = totals(&lab);
    assert!(fast1 - fast0 >= N, "fast path delivered {}", fast1 - fast0);
}
