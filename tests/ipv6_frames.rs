//! The IPv6 frames the daemon builds, judged by the Linux kernel: an
//! unsolicited neighbour advertisement moves an existing neighbour entry to
//! the announced MAC (Override), and an injected MLDv2 general query makes
//! the kernel send its reports. Two namespaces joined by a veth pair: the
//! test sends from one end with a packet socket (python3), the kernel under
//! test owns the other. Needs root.

mod common;

use common::{fmt_mac, parse_mac, wait_until};
use ipmpd::datapath::ndp::{mld_general_query, unsolicited_na};
use ipmpd::wire::ipv6::link_local_from_mac;
use std::net::Ipv6Addr;
use std::process::{Command, Output};
use std::time::Duration;

/// The wire side (sends our frames) and the kernel under test.
const WIRE_MAC: [u8; 6] = [2, 0, 0, 0, 9, 1];
const OLD_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const NEW_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
const HOST_ADDR: &str = "2001:db8::1";
const DATA_ADDR: &str = "2001:db8::200";
/// How long the kernel may take to act on a frame (generous: a loaded
/// machine), and the quiet spell that shows its own reports are over.
const SETTLE: Duration = Duration::from_secs(10);

/// Sends a frame (hex) on an interface, or with `--mld-reply` also waits
/// for an MLDv2 report after a quiet spell, from a packet socket.
const SENDER: &str = r#"
import socket, sys, time
ifname, frame, mode = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind((ifname, 0))
def report(f):
    # Ethernet, IPv6 with one Hop-by-Hop header (8 bytes), ICMPv6 type 143.
    return len(f) > 62 and f[12:14] == b'\x86\xdd' and f[20] == 0 and f[62] == 143
if mode == 'send':
    s.send(frame); sys.exit(0)
# Wait until the kernel's own reports after link-up have stopped: 2 s quiet.
s.settimeout(0.2); quiet_since = time.time(); start = time.time()
while time.time() - quiet_since < 2.0:
    if time.time() - start > 30: sys.exit(2)
    try:
        if report(s.recv(2048)): quiet_since = time.time()
    except socket.timeout: pass
s.send(frame)
deadline = time.time() + float(sys.argv[4])
while time.time() < deadline:
    try:
        if report(s.recv(2048)): print('report'); sys.exit(0)
    except socket.timeout: pass
sys.exit(1)
"#;

struct Pair {
    wire: String,
    host: String,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().expect("spawn")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ip netns exec NS` and a command given as one string (no quoted words).
fn in_ns(ns: &str, cmd: &str) -> String {
    let mut args = vec!["ip", "netns", "exec", ns];
    args.extend(cmd.split_whitespace());
    ok(&args)
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let p = Pair {
            wire: format!("ip6f-{tag}-{}-w", std::process::id()),
            host: format!("ip6f-{tag}-{}-h", std::process::id()),
        };
        for n in [&p.wire, &p.host] {
            let _ = run(&["ip", "netns", "del", n]);
            ok(&["ip", "netns", "add", n]);
        }
        let (w, h) = (p.wire.as_str(), p.host.as_str());
        in_ns(w, &format!("ip link add w0 type veth peer name h0 netns {h}"));
        in_ns(w, &format!("ip link set w0 address {}", fmt_mac(&WIRE_MAC)));
        // The wire end runs no IPv6 stack of its own: only our frames leave it.
        in_ns(w, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
        for k in ["all", "default", "h0"] {
            in_ns(h, &format!("sysctl -qw net.ipv6.conf.{k}.disable_ipv6=0"));
        }
        in_ns(w, "ip link set w0 up");
        in_ns(h, "ip link set h0 up");
        in_ns(h, &format!("ip addr add {HOST_ADDR}/64 dev h0 nodad"));
        p
    }

    fn send(&self, frame: &[u8], mode: &str, wait: &str) -> Output {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let w = self.wire.as_str();
        run(&[
            "ip", "netns", "exec", w, "python3", "-c", SENDER, "w0", &hex, mode, wait,
        ])
    }

    fn neigh_mac(&self, addr: &str) -> Option<[u8; 6]> {
        let out = in_ns(&self.host, &format!("ip -6 neigh show {addr} dev h0"));
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        parse_mac(words.next()?)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in [&self.wire, &self.host] {
            let _ = run(&["ip", "netns", "del", n]);
        }
    }
}

#[test]
fn unsolicited_na_moves_a_neighbour_entry() {
    let p = Pair::new("na");
    let old = fmt_mac(&OLD_MAC);
    in_ns(
        &p.host,
        &format!("ip -6 neigh replace {DATA_ADDR} lladdr {old} dev h0 nud stale"),
    );
    assert_eq!(p.neigh_mac(DATA_ADDR), Some(OLD_MAC));
    let na = unsolicited_na(NEW_MAC, DATA_ADDR.parse().unwrap(), false);
    let o = p.send(&na, "send", "0");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        wait_until(SETTLE, || p.neigh_mac(DATA_ADDR) == Some(NEW_MAC)),
        "entry still {:?}",
        p.neigh_mac(DATA_ADDR).map(|m| fmt_mac(&m))
    );
}

#[test]
fn mld_general_query_makes_the_kernel_report() {
    let p = Pair::new("mld");
    let src: Ipv6Addr = link_local_from_mac(WIRE_MAC);
    let q = mld_general_query(WIRE_MAC, src);
    let o = p.send(&q, "query", &SETTLE.as_secs().to_string());
    assert!(
        o.status.success(),
        "no MLDv2 report after the query (exit {:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}
