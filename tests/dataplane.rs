//! The data plane against real kernel peers in a namespace lab: the host's
//! own stack on ipmp0, a router namespace, two bridges as switches.

mod common;

use common::daemon::*;
use common::{fmt_mac, stop_capture, wait_until, Lab, MEMBERS, ROUTER_IP};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn member_macs(lab: &Lab) -> Vec<[u8; 6]> {
    MEMBERS.iter().map(|m| lab.mac("host", m)).collect()
}

/// Starts a background capture and waits until tcpdump is listening.
fn capture(lab: &Lab, which: &str, args: &[&str]) -> common::Proc {
    let mut full = vec!["-n", "-l", "-e"];
    full.extend_from_slice(args);
    let mut p = lab.spawn(which, "tcpdump", &full);
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

/// Captures what the host sends to the router's discard port, on each
/// member's switch port (ingress only), to see which member carried it.
fn capture_switch_ports(lab: &Lab) -> Vec<(&'static str, common::Proc)> {
    [("swa", "sw-e1000g0"), ("swa", "sw-e1000g1"), ("swb", "sw-rge0")]
        .iter()
        .map(|&(ns, port)| {
            (
                port,
                capture(
                    lab,
                    ns,
                    &["-i", port, "-Q", "in", "udp", "and", "dst", "port", "9"],
                ),
            )
        })
        .collect()
}

#[test]
fn ping_tcp_and_arp_both_ways() {
    let lab = Lab::new("basic");
    let _d = start_tutorial(&lab);
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "host -> router: {r:?}");
    let r = lab.ping("router", DATA, 20);
    assert!(r.clean(), "router -> host: {r:?}");

    // ARP both ways: the host learned the router's MAC through ipmp0; the
    // router learned a member's MAC (never ipmp0's) for the data address.
    assert_eq!(lab.neigh_mac("host", ROUTER_IP), Some(lab.mac("router", "r0")));
    let seen = lab
        .neigh_mac("router", DATA)
        .expect("router resolved the data address");
    assert!(member_macs(&lab).contains(&seen), "router has {}", fmt_mac(&seen));

    // TCP in both directions with the kernel's own TCP as both ends.
    for reverse in [false, true] {
        let mut srv = lab.spawn("router", "iperf3", &["-s", "-1", "-B", ROUTER_IP]);
        assert!(wait_until(Duration::from_secs(5), || lab
            .sh("router", "ss -ltn | grep -q ':5201'")
            .status
            .success()));
        let mut args = vec!["-c", ROUTER_IP, "-n", "30M", "-J"];
        if reverse {
            args.push("-R");
        }
        let out = lab.exec("host", &[&["timeout", "30", "iperf3"][..], &args[..]].concat());
        assert!(
            out.status.success(),
            "iperf3 reverse={reverse}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let j = String::from_utf8_lossy(&out.stdout);
        assert!(j.contains("\"sum_received\""), "{j}");
        srv.wait_timeout(Duration::from_secs(5));
    }
}

#[test]
fn tcpdump_on_ipmp0_sees_both_directions() {
    let lab = Lab::new("tcpdump");
    let _d = start_tutorial(&lab);
    let cap = capture(&lab, "host", &["-i", "ipmp0", "icmp"]);
    let r = lab.ping("host", ROUTER_IP, 5);
    assert!(r.clean(), "{r:?}");
    let r = lab.ping("router", DATA, 5);
    assert!(r.clean(), "{r:?}");
    let out = stop_capture(cap);
    let count = |what: &str| out.lines().filter(|l| l.contains(what)).count();
    let req_out = count("192.0.2.200 > 192.0.2.1: ICMP echo request");
    let rep_in = count("192.0.2.1 > 192.0.2.200: ICMP echo reply");
    let req_in = count("192.0.2.1 > 192.0.2.200: ICMP echo request");
    let rep_out = count("192.0.2.200 > 192.0.2.1: ICMP echo reply");
    assert_eq!((req_out, rep_in, req_in, rep_out), (5, 5, 5, 5), "{out}");
}

#[test]
fn flows_spread_over_all_members_and_each_stays_on_one() {
    let lab = Lab::new("flows");
    let _d = start_tutorial(&lab);
    // Resolve the router first so every datagram below leaves at once.
    lab.ping("host", ROUTER_IP, 1).expect_clean();
    let caps = capture_switch_ports(&lab);
    const FLOWS: u16 = 64;
    const ROUNDS: u16 = 10;
    let script = format!(
        "import socket,time\n\
         socks=[]\n\
         for p in range(20000,20000+{FLOWS}):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('192.0.2.200',p)); socks.append(s)\n\
         for r in range({ROUNDS}):\n for s in socks: s.sendto(b'x'*32,('{ROUTER_IP}',9))\n time.sleep(0.01)\n"
    );
    let out = lab.exec("host", &["python3", "-c", &script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ports_of_flow: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut per_port: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for (port, cap) in caps {
        for l in stop_capture(cap).lines() {
            if let Some(i) = l.find("192.0.2.200.") {
                let sport: String = l[i + 12..].chars().take_while(char::is_ascii_digit).collect();
                ports_of_flow.entry(sport).or_default().insert(port);
                *per_port.entry(port).or_default() += 1;
                total += 1;
            }
        }
    }
    assert_eq!(
        total,
        usize::from(FLOWS * ROUNDS),
        "every datagram left exactly once: {per_port:?}"
    );
    assert_eq!(ports_of_flow.len(), usize::from(FLOWS));
    for (flow, ports) in &ports_of_flow {
        assert_eq!(ports.len(), 1, "flow {flow} left through {ports:?}");
    }
    assert_eq!(per_port.len(), 3, "every member carries traffic: {per_port:?}");
}

#[test]
fn three_data_addresses_are_answered_by_three_members() {
    let lab = Lab::new("bind3");
    let mut args = tutorial_args();
    args.extend(["--data", "192.0.2.201/24", "--data", "192.0.2.202/24"].map(String::from));
    let _d = start(&lab, &args, "ipmp0", "192.0.2.202");
    let mut macs = BTreeSet::new();
    for a in ["192.0.2.200", "192.0.2.201", "192.0.2.202"] {
        assert!(lab.ping("router", a, 2).clean(), "{a}");
        macs.insert(lab.neigh_mac("router", a).expect("resolved"));
    }
    let members: BTreeSet<[u8; 6]> = member_macs(&lab).into_iter().collect();
    assert_eq!(macs, members, "one address per member MAC");
}

#[test]
fn every_arp_request_gets_exactly_one_reply() {
    let lab = Lab::new("arp1");
    let _d = start_tutorial(&lab);
    let cap = capture(&lab, "router", &["-i", "r0", "arp"]);
    // Broadcast requests, then unicast ones (as the kernel's revalidation sends).
    let out = lab.exec("router", &["arping", "-c", "5", "-w", "5", "-I", "r0", DATA]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let bound = lab.neigh_mac("router", DATA);
    let out = stop_capture(cap);
    let replies: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Reply 192.0.2.200 is-at"))
        .collect();
    let requests = out
        .lines()
        .filter(|l| l.contains("Request who-has 192.0.2.200 tell 192.0.2.1"))
        .count();
    assert_eq!(requests, 5, "{out}");
    assert_eq!(replies.len(), 5, "exactly one reply per request:\n{out}");
    let macs: BTreeSet<String> = replies
        .iter()
        .map(|l| {
            l.split("is-at ")
                .nth(1)
                .unwrap_or("")
                .split([',', ' '])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(macs.len(), 1, "all replies from one member: {macs:?}");
    let mac = macs.into_iter().next().unwrap();
    let member_macs: Vec<String> = member_macs(&lab).iter().map(fmt_mac).collect();
    assert!(
        member_macs.contains(&mac),
        "reply MAC {mac} is a member's ({member_macs:?})"
    );
    if let Some(b) = bound {
        assert_eq!(fmt_mac(&b), mac);
    }
}

#[test]
fn no_packet_is_delivered_twice() {
    let lab = Lab::new("nodup");
    let _d = start_tutorial(&lab);
    lab.ping("host", ROUTER_IP, 1).expect_clean();
    let rx = || -> u64 {
        lab.exec_ok("host", &["cat", "/sys/class/net/ipmp0/statistics/rx_packets"])
            .trim()
            .parse()
            .unwrap()
    };
    let before = snmp(&lab, "host", "Icmp", "InEchoReps");
    let rx_before = rx();
    let r = lab.ping("host", ROUTER_IP, 100);
    let after = snmp(&lab, "host", "Icmp", "InEchoReps");
    let rx_delta = rx() - rx_before;
    // ipmp0's own receive counter: the 100 replies, plus at most a few
    // frames the switches send meanwhile (IGMP queries), never a second copy.
    assert!(
        (100..110).contains(&rx_delta),
        "ipmp0 received {rx_delta} frames for 100 replies"
    );
    assert_eq!((r.received, r.duplicates), (100, 0), "{r:?}");
    assert_eq!(after - before, 100, "the kernel saw each reply once");

    let before = snmp(&lab, "host", "Icmp", "InEchos");
    let r = lab.ping("router", DATA, 100);
    let after = snmp(&lab, "host", "Icmp", "InEchos");
    assert_eq!((r.received, r.duplicates), (100, 0), "{r:?}");
    assert_eq!(after - before, 100, "the kernel saw each request once");
}

#[test]
fn member_without_carrier_at_start_gets_no_binding() {
    let lab = Lab::new("nocarr");
    lab.cut("rge0");
    let mut args = tutorial_args();
    args.extend(["--data", "192.0.2.201/24", "--data", "192.0.2.202/24"].map(String::from));
    let _d = start(&lab, &args, "ipmp0", "192.0.2.202");
    let rge0 = lab.mac("host", "rge0");
    let mut macs = BTreeSet::new();
    for a in ["192.0.2.200", "192.0.2.201", "192.0.2.202"] {
        assert!(lab.ping("router", a, 2).clean(), "{a}");
        let m = lab.neigh_mac("router", a).expect("resolved");
        assert_ne!(m, rge0, "{a} bound to the member without carrier");
        macs.insert(m);
    }
    assert_eq!(macs.len(), 2, "both working members carry addresses");
}

#[test]
fn multicast_reaches_ipmp0_and_follows_the_nominee() {
    let lab = Lab::new("mcast");
    let _d = start_tutorial(&lab);
    // A receiver on ipmp0 and a 50 packets/s stream from the router, both bounded.
    let rx = "import socket,struct,sys,time\n\
              s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
              s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
              s.bind(('239.1.2.3',5000))\n\
              s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,socket.inet_aton('239.1.2.3')+socket.inet_aton('192.0.2.200'))\n\
              s.settimeout(1.0)\nend=time.time()+40\n\
              while time.time()<end:\n try:\n  d=s.recv(100); print(d.decode(),flush=True)\n except socket.timeout: pass\n";
    let mut receiver = lab.spawn("host", "python3", &["-u", "-c", rx]);
    let tx = "import socket,time\n\
              s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
              s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,1)\n\
              s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('192.0.2.1'))\n\
              for i in range(2000):\n s.sendto(str(i).encode(),('239.1.2.3',5000)); time.sleep(0.02)\n";
    let _sender = lab.spawn("router", "python3", &["-c", tx]);
    let count = |p: &common::Proc| p.stdout_text().lines().count();
    assert!(
        wait_until(Duration::from_secs(10), || count(&receiver) >= 20),
        "no multicast through the first nominee: {}",
        receiver.stderr_text()
    );
    let mdb = lab.exec_ok("swa", &["bridge", "mdb", "show"]);
    assert!(
        mdb.contains("sw-e1000g0") && mdb.contains("239.1.2.3"),
        "report left through e1000g0: {mdb}"
    );

    // The nominee (e1000g0, the first member activated) loses its link.
    lab.cut("e1000g0");
    let at_cut = count(&receiver);
    assert!(
        wait_until(Duration::from_secs(10), || count(&receiver) >= at_cut + 20),
        "stream did not resume through the new nominee"
    );
    let mdb = lab.exec_ok("swa", &["bridge", "mdb", "show"]);
    assert!(
        mdb.contains("sw-e1000g1"),
        "report re-sent through e1000g1: {mdb}"
    );
    let _ = receiver.running();
}

#[test]
fn vlan_tag_stripped_by_the_member_is_reinserted() {
    let lab = Lab::new("vlan");
    let _d = start_tutorial(&lab);
    let cap = capture(&lab, "host", &["-i", "ipmp0", "vlan"]);
    // A tagged frame from the router to the member the data address is bound
    // to: veth strips the tag into metadata; ipmp0 must show it in band.
    lab.ping("router", DATA, 1).expect_clean();
    let dst = fmt_mac(&lab.neigh_mac("router", DATA).unwrap());
    let src = fmt_mac(&lab.mac("router", "r0"));
    let py = format!(
        "import socket\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
         s.bind(('r0',0))\n\
         m=lambda t: bytes(int(x,16) for x in t.split(':'))\n\
         f=m('{dst}')+m('{src}')+b'\\x81\\x00\\x00\\x05\\x08\\x06'+bytes(28)\n\
         for i in range(3): s.send(f)\n"
    );
    let out = lab.exec("router", &["python3", "-c", &py]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = stop_capture(cap);
    assert!(out.lines().filter(|l| l.contains("vlan 5")).count() >= 3, "{out}");
}

#[test]
fn member_mtu_changes_are_followed() {
    let lab = Lab::new("mtu");
    let _d = start_tutorial(&lab);
    lab.exec_ok("host", &["ip", "link", "set", "rge0", "mtu", "1400"]);
    let mtu = || {
        lab.exec_ok("host", &["cat", "/sys/class/net/ipmp0/mtu"])
            .trim()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(5), || mtu() == "1400"),
        "ipmp0 mtu {}",
        mtu()
    );
    lab.exec_ok("host", &["ip", "link", "set", "rge0", "mtu", "1500"]);
    assert!(
        wait_until(Duration::from_secs(5), || mtu() == "1500"),
        "ipmp0 mtu {}",
        mtu()
    );
}

#[test]
fn optional_member_joins_when_it_appears() {
    let lab = Lab::new("optional");
    let mut args = tutorial_args();
    args.extend(["--optional-member", "extra0"].map(String::from));
    let d = start(&lab, &args, "ipmp0", DATA);
    lab.exec_ok(
        "host",
        &[
            "ip",
            "link",
            "add",
            "extra0",
            "type",
            "veth",
            "peer",
            "name",
            "sw-extra0",
            "netns",
            &lab.ns("swb"),
        ],
    );
    lab.exec_ok("swb", &["ip", "link", "set", "sw-extra0", "master", "br0", "up"]);
    assert!(
        wait_until(Duration::from_secs(5), || d
            .stderr_text()
            .contains("extra0 joined group production0")),
        "{}",
        d.stderr_text()
    );
    assert_eq!(tcx_count(&lab, "host", "extra0"), 1);
    // Once active it takes its share of the buckets (the ping's flow may
    // move to it): wait for that before judging its switch port.
    assert!(
        wait_until(Duration::from_secs(5), || d
            .stderr_text()
            .contains("extra0 is now active in group production0")),
        "{}",
        d.stderr_text()
    );
    assert!(
        wait_path_settled(&lab, &d, ROUTER_IP, Duration::from_secs(10)),
        "{}",
        d.stderr_text()
    );
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "{r:?}");
}

#[test]
fn addresses_added_later_are_bound_and_removed_ones_unbound() {
    let lab = Lab::new("addlater");
    let _d = start_tutorial(&lab);
    lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.203/24", "dev", "ipmp0"]);
    let members = member_macs(&lab);
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .ping("router", "192.0.2.203", 1)
            .clean()),
        "address added by the administrator does not answer"
    );
    let mac = lab.neigh_mac("router", "192.0.2.203").expect("resolved");
    assert!(members.contains(&mac), "{} is not a member MAC", fmt_mac(&mac));
    lab.exec_ok("host", &["ip", "addr", "del", "192.0.2.203/24", "dev", "ipmp0"]);
    let out = lab.exec(
        "router",
        &["arping", "-c", "2", "-w", "2", "-I", "r0", "192.0.2.203"],
    );
    assert!(!out.status.success(), "removed address still answers ARP");
}

#[test]
fn member_mac_change_is_followed_and_announced() {
    let lab = Lab::new("macchg");
    let mut args = tutorial_args();
    args.extend(["--data", "192.0.2.201/24", "--data", "192.0.2.202/24"].map(String::from));
    let _d = start(&lab, &args, "ipmp0", "192.0.2.202");
    let rge0 = lab.mac("host", "rge0");
    let mut on_rge0 = None;
    for a in ["192.0.2.200", "192.0.2.201", "192.0.2.202"] {
        lab.ping("router", a, 1).expect_clean();
        if lab.neigh_mac("router", a) == Some(rge0) {
            on_rge0 = Some(a);
        }
    }
    let addr = on_rge0.expect("one address is bound to rge0");
    lab.exec_ok(
        "host",
        &["ip", "link", "set", "rge0", "address", "02:00:5e:10:00:99"],
    );
    let new = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x99];
    assert!(
        wait_until(Duration::from_secs(5), || lab.neigh_mac("router", addr)
            == Some(new)),
        "router did not learn rge0's new MAC for {addr}"
    );
    lab.ping("router", addr, 5).expect_clean();
    lab.ping("host", ROUTER_IP, 5).expect_clean();
}

#[test]
fn bound_outbound_sends_each_source_through_its_bound_member() {
    let lab = Lab::new("bound");
    let mut args = tutorial_args();
    args.extend(
        [
            "--data",
            "192.0.2.201/24",
            "--data",
            "192.0.2.202/24",
            "--outbound",
            "bound",
        ]
        .map(String::from),
    );
    let _d = start(&lab, &args, "ipmp0", "192.0.2.202");
    let addrs = ["192.0.2.200", "192.0.2.201", "192.0.2.202"];
    let port_of_mac: BTreeMap<[u8; 6], &str> = MEMBERS.iter().map(|m| (lab.mac("host", m), *m)).collect();
    let mut expected = BTreeMap::new();
    for a in addrs {
        lab.ping("router", a, 1).expect_clean();
        let mac = lab.neigh_mac("router", a).expect("resolved");
        expected.insert(a.to_string(), format!("sw-{}", port_of_mac[&mac]));
    }
    let caps = capture_switch_ports(&lab);
    let script = format!(
        "import socket\n\
         for a in {addrs:?}:\n\
         \x20for p in range(30000,30032):\n\
         \x20 s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((a,p)); s.sendto(b'x',('{ROUTER_IP}',9)); s.close()\n"
    );
    let out = lab.exec("host", &["python3", "-c", &script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut total = 0;
    for (port, cap) in caps {
        for l in stop_capture(cap).lines() {
            for a in addrs {
                if l.contains(&format!(" {a}.")) {
                    assert_eq!(expected[a], port, "{a} left through {port}: {l}");
                    total += 1;
                }
            }
        }
    }
    assert_eq!(total, 3 * 32, "every datagram seen once");
}

/// Echo requests and replies the group sent out through its members, as
/// (seen by tcpdump on the members themselves, seen arriving at the switch
/// ports), over a ping each way; `extra` are further ipmpd arguments.
fn sends_seen_on_members_and_switches(tag: &str, extra: &[&str]) -> (usize, usize) {
    let lab = Lab::new(tag);
    let mut args = tutorial_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    let _d = start(&lab, &args, "ipmp0", DATA);
    // Resolve the router first, so only ICMP is counted below.
    lab.ping("host", ROUTER_IP, 1).expect_clean();
    let on_members: Vec<_> = MEMBERS
        .iter()
        .map(|m| capture(&lab, "host", &["-i", m, "-Q", "out", "icmp"]))
        .collect();
    let on_ports: Vec<_> = [("swa", "sw-e1000g0"), ("swa", "sw-e1000g1"), ("swb", "sw-rge0")]
        .iter()
        .map(|&(ns, port)| capture(&lab, ns, &["-i", port, "-Q", "in", "icmp"]))
        .collect();
    let r = lab.ping("host", ROUTER_IP, PINGS);
    assert!(r.clean(), "host -> router: {r:?}");
    let r = lab.ping("router", DATA, PINGS);
    assert!(r.clean(), "router -> host: {r:?}");
    let sent = |caps: Vec<common::Proc>| -> usize {
        caps.into_iter()
            .map(|c| {
                stop_capture(c)
                    .lines()
                    .filter(|l| l.contains("192.0.2.200 > 192.0.2.1: ICMP echo"))
                    .count()
            })
            .sum()
    };
    (sent(on_members), sent(on_ports))
}

/// Pings each way in the qdisc bypass test.
const PINGS: u32 = 5;

/// With --qdisc-bypass the group forwards both ways, and its frames go
/// straight to the members' drivers, past the layer where taps see outgoing
/// frames: the switch ports get every one, tcpdump on the members none
/// (as documented). Without the flag the members' tcpdump sees them all.
#[test]
fn qdisc_bypass_forwards_and_hides_sends_from_member_captures() {
    let both_ways = 2 * PINGS as usize;
    assert_eq!(
        sends_seen_on_members_and_switches("qbypass", &["--qdisc-bypass"]),
        (0, both_ways)
    );
    assert_eq!(
        sends_seen_on_members_and_switches("qplain", &[]),
        (both_ways, both_ways)
    );
}
