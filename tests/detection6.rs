//! IPv6 failure detection against real kernel peers in the lab: each
//! member's IPv6 test address is the EUI-64 link-local of its MAC, held by
//! the daemon (DAD, NS answers, ping6); ICMPv6 echo probes to the router's
//! kernel detect a silent cut over IPv6 alone and in dual stack, where a
//! member fails only when both families fail.

mod common;

use common::daemon::*;
use common::{wait_until, Lab, Proc, MEMBERS, ROUTER_IP};
use std::net::Ipv6Addr;
use std::time::Duration;

/// How long a scenario may take to show its outcome (DAD's second, the
/// quiet period ended by the first answers, the cut, the repair).
const SETTLE: Duration = Duration::from_secs(15);
const FDT: &str = "700ms";
/// The router's static IPv6 address (the lab may not give it one yet).
const ROUTER_IP6: &str = "2001:db8::1";
/// Forged echo replies sent to a test address.
const FORGED_REPLIES: u32 = 5;

fn logged(d: &Proc, line: &str) -> bool {
    d.stderr_text().contains(line)
}

fn count(d: &Proc, line: &str) -> usize {
    d.stderr_text().matches(line).count()
}

#[track_caller]
fn expect_log(d: &Proc, line: &str) {
    assert!(
        wait_until(SETTLE, || logged(d, line)),
        "no log line {line:?}:\n{}",
        d.stderr_text()
    );
}

/// The EUI-64 link-local of a MAC, as the kernel forms it.
fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    ipmpd::wire::ipv6::link_local_from_mac(mac)
}

/// IPv6 on the router's r0 with a static global address; returns the
/// router's link-local address once it is usable (not tentative).
fn router_v6(lab: &Lab) -> Ipv6Addr {
    lab.sh_ok(
        "router",
        &format!(
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
             net.ipv6.conf.r0.disable_ipv6=0; \
             ip -6 addr replace {ROUTER_IP6}/64 dev r0 nodad"
        ),
    );
    let ll = link_local(lab.mac("router", "r0"));
    assert!(
        wait_until(SETTLE, || {
            let out = lab.sh_ok("router", "ip -6 addr show dev r0 scope link");
            out.contains(&ll.to_string()) && !out.contains("tentative")
        }),
        "router link-local {ll} not usable"
    );
    ll
}

fn v6_args(router_ll: Ipv6Addr, extra: &[&str]) -> Vec<String> {
    let mut a = tutorial_args();
    a.extend(strings(&[
        "--probe",
        "icmp",
        "--target",
        &router_ll.to_string(),
        "--fdt",
        FDT,
    ]));
    a.extend(strings(extra));
    a
}

/// The tutorial's group probing by ICMP with no target configured.
fn icmp_args() -> Vec<String> {
    let mut a = tutorial_args();
    a.extend(strings(&["--probe", "icmp", "--fdt", FDT]));
    a
}

fn dual_args(router_ll: Ipv6Addr) -> Vec<String> {
    let mut a = v6_args(router_ll, &[]);
    a.extend(strings(&[
        "--test-address",
        "e1000g0=192.0.2.201/24",
        "--test-address",
        "e1000g1=192.0.2.202/24",
        "--test-address",
        "rge0=192.0.2.203/24",
        "--target",
        ROUTER_IP,
    ]));
    a
}

/// Every member's IPv6 test address passed DAD and probes are answered.
fn wait_probing6(lab: &Lab, d: &Proc) {
    for m in ["e1000g0", "e1000g1", "rge0"] {
        let ta = link_local(lab.mac("host", m));
        expect_log(d, &format!("{m}: IPv6 test address {ta} passed DAD; probing"));
    }
    // Ten probe intervals of 100 ms at least: out of the quiet period.
    std::thread::sleep(Duration::from_millis(1500));
}

/// The router pings a member's IPv6 test address: answered, exactly once.
fn ping6_test_address(lab: &Lab, member: &str) {
    let ta = link_local(lab.mac("host", member));
    let out = lab.sh("router", &format!("ping -6 -c 3 -i 0.2 -W 2 {ta}%r0"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "ping6 {ta}: {text}");
    assert!(text.contains("3 received"), "{text}");
    assert!(!text.contains("duplicates"), "answered more than once: {text}");
}

/// cable4 cut silently: e1000g0 and e1000g1 fail by probes, rge0 stays;
/// both are repaired when it returns.
fn silent_cut(lab: &Lab, d: &Proc) {
    lab.cut("cable4");
    expect_log(d, "IP interface failure detected on e1000g0 of group production0");
    expect_log(d, "IP interface failure detected on e1000g1 of group production0");
    assert!(!logged(d, "failure detected on rge0"), "{}", d.stderr_text());
    assert!(wait_until(SETTLE, || lab.ping("host", ROUTER_IP, 3).clean()));
    lab.restore("cable4");
    expect_log(d, "IP interface repair detected on e1000g0 of group production0");
    expect_log(d, "IP interface repair detected on e1000g1 of group production0");
}

#[test]
fn icmpv6_probes_alone_detect_a_silent_cut() {
    let lab = Lab::new("v6cut");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    ping6_test_address(&lab, "e1000g0");
    // Each member joined its test address's solicited-node group by MLD:
    // the snooping switch learned it on the member's port.
    let mdb = lab.sh_ok("swa", "bridge mdb show");
    for m in ["e1000g0", "e1000g1"] {
        let group = ipmpd::wire::ipv6::solicited_node(link_local(lab.mac("host", m)));
        assert!(
            mdb.lines()
                .any(|l| l.contains(&format!("port sw-{m} ")) && l.contains(&group.to_string())),
            "{m} {group}: {mdb}"
        );
    }
    silent_cut(&lab, &d);
}

#[test]
fn an_on_link_global_target_answers_probes_from_a_link_local_test_address() {
    let lab = Lab::new("v6glob");
    router_v6(&lab);
    let d = start(
        &lab,
        &strings(&[
            "--group",
            "production0",
            "--data",
            "192.0.2.200/24",
            "--member",
            "e1000g0",
            "--member",
            "e1000g1",
            "--member",
            "rge0",
            "--probe",
            "icmp",
            "--target",
            ROUTER_IP6,
            "--fdt",
            FDT,
        ]),
        "ipmp0",
        "192.0.2.200",
    );
    wait_probing6(&lab, &d);
    // Answered probes ended the quiet period: a cut is a failure at once.
    silent_cut(&lab, &d);
}

#[test]
fn icmpv6_carrier_cut_and_repair() {
    let lab = Lab::new("v6link");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    // Counted: probing may already have failed and repaired e1000g0 once
    // while the group started.
    let failed = "e1000g0 is no longer active in group production0 (failed)";
    let before = count(&d, failed);
    lab.cut("e1000g0");
    expect_log(&d, "The link has gone down on e1000g0");
    assert!(
        wait_until(SETTLE, || count(&d, failed) > before),
        "{}",
        d.stderr_text()
    );
    lab.ping("host", ROUTER_IP, 10).expect_clean();
    lab.restore("e1000g0");
    // DAD again, then ten answered probes repair it.
    expect_log(&d, "The link has come up on e1000g0");
    assert!(
        wait_until(SETTLE, || count(&d, "e1000g0: IPv6 test address") >= 3),
        "{}",
        d.stderr_text()
    );
    assert!(
        wait_until(SETTLE, || count(&d, "e1000g0 is now active in group production0")
            == 2),
        "{}",
        d.stderr_text()
    );
}

#[test]
fn dual_stack_silent_cut_fails_both_families_then_repairs() {
    let lab = Lab::new("v6dual");
    let ll = router_v6(&lab);
    let d = start(&lab, &dual_args(ll), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    lab.ping("router", "192.0.2.201", 1).expect_clean();
    ping6_test_address(&lab, "e1000g1");
    silent_cut(&lab, &d);
}

#[test]
fn ipmpstat_shows_ipv6_test_addresses_targets_and_probes() {
    let lab = Lab::new("v6stat");
    let ll = router_v6(&lab);
    let d = start(&lab, &dual_args(ll), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    // -t: one row per member and family.
    let (code, t, err) = ipmpstat(&lab, &["-t"]);
    assert_eq!(code, 0, "{err}");
    for m in ["e1000g0", "e1000g1", "rge0"] {
        let ta = link_local(lab.mac("host", m));
        let rows: Vec<&str> = t.lines().filter(|l| l.starts_with(&format!("{m} "))).collect();
        assert_eq!(rows.len(), 2, "{t}");
        assert!(rows[0].ends_with(ROUTER_IP), "{t}");
        let v6: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(v6, [m, "routes", &ta.to_string(), &ll.to_string()], "{t}");
    }
    // --json carries both.
    let (_, j, _) = ipmpstat(&lab, &["-t", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    let m = &groups[0].members[0];
    assert_eq!(m.targets, vec![ROUTER_IP.to_string()]);
    let v6 = m.ipv6.as_ref().expect("IPv6 probing in the JSON");
    assert_eq!(v6.targets, vec![ll.to_string()]);
    // -p shows IPv6 probes answered, next to IPv4 ones.
    let out_path = lab.dir.join("ipmpstat-p.out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ipmpstat"))
        .arg("-p")
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let answered = |family_target: &str| {
        text().lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 7 && f[3] != "--" && f[6] == family_target
        })
    };
    let ll_s = ll.to_string();
    let seen = wait_until(SETTLE, || answered(&ll_s) && answered(ROUTER_IP));
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "{}", text());
}

/// Dual stack: the family `kill` silences on the router alone fails no
/// member; a silent cut (both families lost) fails them; when the cut is
/// repaired the member repairs.
fn one_family_suffices(tag: &str, kill: &str) {
    let lab = Lab::new(tag);
    let ll = router_v6(&lab);
    let d = start(&lab, &dual_args(ll), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    lab.sh_ok("router", kill);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g0 of group production0",
    );
    lab.restore("cable4");
    expect_log(&d, "IP interface repair detected on e1000g0 of group production0");
}

#[test]
fn dual_stack_a_member_does_not_fail_while_ipv4_answers() {
    // IPv6 dies on the router: IPv4 probes alone keep every member working.
    one_family_suffices("v6half", "sysctl -qw net.ipv6.conf.r0.disable_ipv6=1");
}

#[test]
fn dual_stack_a_member_does_not_fail_while_ipv6_answers() {
    // IPv4 dies on the router (its address goes, so echo and ARP go
    // unanswered): IPv6 probes alone keep every member working.
    one_family_suffices("v6half4", &format!("ip addr del {ROUTER_IP}/24 dev r0"));
}

#[test]
fn failback_no_over_ipv6_keeps_the_repaired_member_inactive() {
    let lab = Lab::new("v6fbno");
    let ll = router_v6(&lab);
    let a = strings(&[
        "--group",
        "production0",
        "--data",
        "192.0.2.200/24",
        "--member",
        "e1000g0",
        "--member",
        "e1000g1",
        "--standby",
        "rge0",
        "--probe",
        "icmp",
        "--target",
        &ll.to_string(),
        "--fdt",
        FDT,
        "--failback",
        "no",
    ]);
    let d = start(&lab, &a, "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    // Members are repaired at start in the order their first probes are
    // answered: the standby may stand in for a moment then. Only what
    // follows the cut counts.
    let failed = count(
        &d,
        "IP interface failure detected on e1000g0 of group production0",
    );
    lab.cut("cable4");
    assert!(
        wait_until(SETTLE, || count(
            &d,
            "IP interface failure detected on e1000g0 of group production0"
        ) > failed),
        "{}",
        d.stderr_text()
    );
    expect_log(&d, "rge0 is now active in group production0");
    let rge0_left = count(&d, "rge0 is no longer active");
    let repaired = count(&d, "IP interface repair detected on e1000g0 of group production0");
    lab.restore("cable4");
    assert!(
        wait_until(SETTLE, || count(
            &d,
            "IP interface repair detected on e1000g0 of group production0"
        ) > repaired),
        "{}",
        d.stderr_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&d, "rge0 is no longer active"),
        rge0_left,
        "{}",
        d.stderr_text()
    );
}

/// A forged ICMPv6 echo reply to e1000g0's test address, from the router's
/// link-local address, with a tag not made under the daemon's key.
fn forge_replies(lab: &Lab, router_ll: Ipv6Addr, member_mac: [u8; 6], ta: Ipv6Addr) {
    let script = format!(
        r#"
import socket, struct, os
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
src = socket.inet_pton(socket.AF_INET6, '{router_ll}')
dst = socket.inet_pton(socket.AF_INET6, '{ta}')
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('r0', 0))
me = s.getsockname()[4]
for i in range({FORGED_REPLIES}):
    payload = struct.pack('!QI', i, 1) + os.urandom(8)
    icmp = struct.pack('!BBHHH', 129, 0, 0, 0x4242, i) + payload
    pseudo = src + dst + struct.pack('!I', len(icmp)) + b'\0\0\0\x3a'
    icmp = icmp[:2] + struct.pack('!H', csum(pseudo + icmp)) + icmp[4:]
    ip = struct.pack('!IHBB', 6 << 28, len(icmp), 58, 64) + src + dst
    s.send(bytes.fromhex('{mac}') + me + b'\x86\xdd' + ip + icmp)
"#,
        mac = member_mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let out = lab.exec("router", &["python3", "-c", &script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_forged_echo6_reply_is_rejected_and_counted() {
    let lab = Lab::new("v6forge");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    let mac = lab.mac("host", "e1000g0");
    forge_replies(&lab, ll, mac, link_local(mac));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    let mut d = d;
    d.stop(Duration::from_secs(5));
    let log = d.stderr_text();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("e1000g0 in:"))
        .unwrap_or_default()
        .to_string();
    let n: u64 = line
        .split("not_probe=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= u64::from(FORGED_REPLIES), "forged replies counted: {line}");
}

#[test]
fn a_test_address_another_host_holds_is_a_duplicate_and_not_used() {
    let lab = Lab::new("v6dad");
    let ll = router_v6(&lab);
    // The router already has e1000g0's link-local: it defends it against
    // the daemon's DAD probe.
    let ta = link_local(lab.mac("host", "e1000g0"));
    lab.sh_ok("router", &format!("ip -6 addr add {ta}/64 dev r0 nodad"));
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    expect_log(&d, &format!("e1000g0: IPv6 test address {ta} is in use by"));
    for m in ["e1000g1", "rge0"] {
        let other = link_local(lab.mac("host", m));
        expect_log(&d, &format!("{m}: IPv6 test address {other} passed DAD; probing"));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(!logged(
        &d,
        &format!("e1000g0: IPv6 test address {ta} passed DAD")
    ));
    // Not probed over IPv6: no verdict of its own, so a silent cut fails
    // only the member that still probes.
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    let row = t
        .lines()
        .filter(|l| l.starts_with("e1000g0 "))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(f.get(2), Some(&"--"), "no test address shown: {t}");
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g1 of group production0",
    );
    assert!(!logged(&d, "failure detected on e1000g0"), "{}", d.stderr_text());
}

#[test]
fn an_assigned_test_address_is_defended_against_another_hosts_dad() {
    let lab = Lab::new("v6defend");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    // The router's kernel tries to take e1000g0's test address: its DAD
    // probe is answered, so the router gives up the address.
    let ta = link_local(lab.mac("host", "e1000g0"));
    lab.sh_ok("router", &format!("ip -6 addr add {ta}/64 dev r0"));
    assert!(
        wait_until(SETTLE, || lab
            .sh_ok("router", "ip -6 addr show dev r0")
            .lines()
            .any(|l| l.contains(&ta.to_string()) && l.contains("dadfailed"))),
        "{}",
        lab.sh_ok("router", "ip -6 addr show dev r0")
    );
    lab.sh_ok("router", &format!("ip -6 addr del {ta}/64 dev r0"));
    // The daemon kept its address and still answers on it.
    assert!(!logged(&d, "is in use by"), "{}", d.stderr_text());
    ping6_test_address(&lab, "e1000g0");
}

#[test]
fn without_targets_ipv6_probing_discovers_hosts_on_all_nodes() {
    let lab = Lab::new("v6disc");
    let ll = router_v6(&lab);
    let d = start(&lab, &icmp_args(), "ipmp0", "192.0.2.200");
    expect_log(
        &d,
        "No IPv6 routers for e1000g0 of group production0; looking for probe targets with echo requests to ff02::1",
    );
    // The router's kernel answers the echo to ff02::1 from its link-local
    // address: it becomes every member's target.
    every_member_targets(&d, "multicast discovery", ll);
    wait_probing6(&lab, &d);
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert!(
        t.lines()
            .any(|l| l.starts_with("e1000g0 ") && l.contains("multicast") && l.ends_with(&ll.to_string())),
        "{t}"
    );
    silent_cut(&lab, &d);
}

/// Echo requests and neighbour solicitations flooded at a test address.
const FLOOD_COUNT: u32 = 20_000;

#[test]
fn a_ping6_flood_at_a_test_address_is_rate_limited_and_fails_no_member() {
    let lab = Lab::new("v6flood");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    let ta = link_local(lab.mac("host", "e1000g0"));
    // A flood ping (bounded by count and deadline) at e1000g0's test address.
    let out = lab.sh("router", &format!("ping -6 -f -q -c {FLOOD_COUNT} -w 10 {ta}%r0"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("packets transmitted"), "{text}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    ping6_test_address(&lab, "e1000g1");
    let mut d = d;
    d.stop(Duration::from_secs(5));
    let log = d.stderr_text();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("e1000g0 in:"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("rate_limited="), "echo requests limited: {line}");
}

#[test]
fn a_host_without_ipv6_probes_over_ipv4_only() {
    let lab = Lab::new("v6off");
    let ll = router_v6(&lab);
    // Writing `all` sets `default` too: new interfaces come up without IPv6.
    lab.sh_ok("host", "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
    let d = start(&lab, &dual_args(ll), "ipmp0", "192.0.2.200");
    expect_log(&d, "IPv6 is off on ipmp0");
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert_eq!(t.lines().filter(|l| l.starts_with("e1000g0 ")).count(), 1, "{t}");
    assert!(!logged(&d, "IPv6 test address"), "{}", d.stderr_text());
    // The group runs IPv4 only: the host's choice is kept on ipmp0, and
    // the nominee is no IPv6 multicast nominee.
    let v = lab.exec_ok("host", &["sysctl", "-n", "net.ipv6.conf.ipmp0.disable_ipv6"]);
    assert_eq!(v.trim(), "1");
    let (_, i, _) = ipmpstat(&lab, &["-i"]);
    assert!(i.contains("--mb---") && !i.contains('M'), "{i}");
    let p = lab.ping("router", "192.0.2.200", 20);
    assert!(p.clean(), "{}", p.output);
    let mut d = d;
    d.stop(Duration::from_secs(5));

    // What cannot work without IPv6 is refused before any member is
    // touched, naming what needs it.
    let before = host_snapshot(&lab);
    let mut a = tutorial_args();
    a.extend(strings(&["--data", "2001:db8::200/64"]));
    let (code, err) = run_once(&lab, &a, Duration::from_secs(10));
    assert_eq!(code, Some(2), "refused: {err}");
    assert!(err.contains("data address 2001:db8::200/64 needs IPv6"), "{err}");
    let mut a = tutorial_args();
    a.extend(strings(&["--probe", "icmp"]));
    let (code, err) = run_once(&lab, &a, Duration::from_secs(10));
    assert_eq!(code, Some(2), "refused: {err}");
    assert!(
        err.contains("--probe icmp: no member has an IPv4 test address"),
        "{err}"
    );
    assert_eq!(host_snapshot(&lab), before, "nothing left half-configured");
}

/// The group's IPv6 data addresses, one per member (spread per family).
const DATA6: [&str; 3] = ["2001:db8::200", "2001:db8::201", "2001:db8::202"];

/// `--probe arp` with only IPv6 targets: no IPv4 probing, IPv6 data
/// addresses, neighbour solicitations to the router.
fn ns_args(target: &str, data6: &[&str]) -> Vec<String> {
    let mut a = tutorial_args();
    for d in data6 {
        a.extend(strings(&["--data", &format!("{d}/64")]));
    }
    a.extend(strings(&["--probe", "arp", "--target", target, "--fdt", FDT]));
    a
}

/// tcpdump on the router's r0: neighbour solicitations for `target`, with
/// Ethernet headers, one line each.
fn capture_ns(lab: &Lab) -> Proc {
    let p = lab.spawn(
        "router",
        "tcpdump",
        &[
            "-i",
            "r0",
            "-n",
            "-e",
            "-l",
            "-Q",
            "in",
            "icmp6 and ip6[40] == 135",
        ],
    );
    // tcpdump listens once it says so on stderr.
    assert!(
        wait_until(SETTLE, || p.stderr_text().contains("listening on")),
        "tcpdump: {}",
        p.stderr_text()
    );
    p
}

/// (source MAC, source address) of each captured NS for `target`.
fn ns_for(cap: &Proc, target: &str) -> Vec<(String, String)> {
    cap.stdout_text()
        .lines()
        .filter(|l| l.contains(&format!("who has {target},")) || l.ends_with(&format!("who has {target}")))
        .filter_map(|l| {
            let mac = l.split_whitespace().nth(1)?.to_string();
            let (_, ip) = l.split_once("length ")?;
            let src = ip.split_once(": ")?.1.split_whitespace().next()?.to_string();
            Some((mac, src))
        })
        .collect()
}

fn mac_str(m: [u8; 6]) -> String {
    common::fmt_mac(&m)
}

#[test]
fn ns_probes_come_from_a_bound_data_address_and_detect_a_silent_cut() {
    let lab = Lab::new("v6ns");
    router_v6(&lab);
    let cap = capture_ns(&lab);
    let d = start(&lab, &ns_args(ROUTER_IP6, &DATA6), "ipmp0", "192.0.2.200");
    let macs: Vec<String> = ["e1000g0", "e1000g1", "rge0"]
        .iter()
        .map(|m| mac_str(lab.mac("host", m)))
        .collect();
    // ipmp0's own link-local is one of the group's IPv6 data addresses too.
    let group_ll = link_local(lab.mac("host", "ipmp0")).to_string();
    let bound = |src: &str| DATA6.contains(&src) || src == group_ll;
    // Every member asks the router from an IPv6 data address, with its own MAC.
    assert!(
        wait_until(SETTLE, || {
            let ns = ns_for(&cap, ROUTER_IP6);
            macs.iter()
                .all(|m| ns.iter().any(|(mac, src)| mac == m && bound(src)))
        }),
        "{}",
        cap.stdout_text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    assert!(
        !logged(&d, "probe-based failure detection is not working"),
        "{}",
        d.stderr_text()
    );
    // Only IPv6 probes: no IPv4 prober row in ipmpstat -t.
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert!(
        t.lines()
            .any(|l| l.starts_with("e1000g0 ") && l.ends_with(ROUTER_IP6)),
        "{t}"
    );
    silent_cut(&lab, &d);
    for (mac, src) in ns_for(&cap, ROUTER_IP6) {
        assert_ne!(src, "::", "an NS from :: for the router's address");
        assert!(macs.contains(&mac), "NS from {mac}: {}", cap.stdout_text());
        // A data address, or (while failed, holding none) the member's own link-local.
        let own_ll = ["e1000g0", "e1000g1", "rge0"]
            .iter()
            .any(|m| link_local(lab.mac("host", m)).to_string() == src);
        assert!(bound(&src) || own_ll, "NS from {src}");
    }
}

#[test]
fn ns_probes_of_members_without_an_ipv6_data_address_use_their_link_local() {
    let lab = Lab::new("v6ns1");
    let ll = router_v6(&lab);
    let cap = capture_ns(&lab);
    // One IPv6 data address for three members; the target is the router's link-local.
    let d = start(
        &lab,
        &ns_args(&ll.to_string(), &DATA6[..1]),
        "ipmp0",
        "192.0.2.200",
    );
    let lls: Vec<String> = ["e1000g0", "e1000g1", "rge0"]
        .iter()
        .map(|m| link_local(lab.mac("host", m)).to_string())
        .collect();
    let target = ll.to_string();
    // Two members hold no IPv6 data address: they ask from their own link-local.
    assert!(
        wait_until(SETTLE, || {
            let ns = ns_for(&cap, &target);
            let from_ll = lls.iter().filter(|l| ns.iter().any(|(_, s)| s == *l)).count();
            from_ll >= 2 && ns.iter().any(|(_, s)| s == DATA6[0])
        }),
        "{}",
        cap.stdout_text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    // A failed member holds no data address and still probes: it is
    // repaired by probes, not by the lack of them (no flapping meanwhile).
    silent_cut(&lab, &d);
    assert_eq!(
        count(
            &d,
            "IP interface failure detected on e1000g0 of group production0"
        ),
        1,
        "{}",
        d.stderr_text()
    );
    assert!(ns_for(&cap, &target).iter().all(|(_, s)| s != "::"));
}

#[test]
fn a_mac_change_moves_the_test_address_its_group_membership_and_runs_dad() {
    let lab = Lab::new("v6mac");
    let ll = router_v6(&lab);
    let d = start(&lab, &v6_args(ll, &[]), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    let old = link_local(lab.mac("host", "rge0"));
    let new_mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x99];
    let new = link_local(new_mac);
    let mc = |a: Ipv6Addr| {
        let o = ipmpd::wire::ipv6::multicast_mac(ipmpd::wire::ipv6::solicited_node(a));
        format!("link  {}", common::fmt_mac(&o))
    };
    let maddr = || lab.sh_ok("host", "ip maddr show dev rge0");
    assert!(maddr().contains(&mc(old)), "{}", maddr());
    lab.exec_ok(
        "host",
        &["ip", "link", "set", "rge0", "address", "02:00:5e:10:00:99"],
    );
    // DAD for the new address, then probing again.
    expect_log(&d, &format!("rge0: IPv6 test address {new} passed DAD; probing"));
    // The NIC listens to the new solicited-node group, no longer to the old one.
    assert!(
        wait_until(SETTLE, || {
            let m = maddr();
            m.contains(&mc(new)) && !m.contains(&mc(old))
        }),
        "{}",
        maddr()
    );
    ping6_test_address(&lab, "rge0");
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
}

#[test]
fn sighup_from_ipv4_targets_to_ipv6_targets_moves_probing_to_ipv6() {
    let lab = Lab::new("v6hup");
    let ll = router_v6(&lab);
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("production0.toml");
    let write = |targets: &str| {
        let mut t = format!(
            "data = [\"192.0.2.200/24\"]\nprobe = \"icmp\"\nfailure_detection_time = \"{FDT}\"\ntargets = [{targets}]\n"
        );
        for (i, m) in ["e1000g0", "e1000g1", "rge0"].iter().enumerate() {
            t.push_str(&format!(
                "[[member]]\nname = \"{m}\"\ntest_address = \"192.0.2.{}/24\"\n",
                201 + i
            ));
        }
        std::fs::write(&file, t).unwrap();
    };
    write(&format!("\"{ROUTER_IP}\""));
    let d = start(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        "192.0.2.200",
    );
    // IPv4 targets only: no IPv6 probing.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert_eq!(t.lines().filter(|l| l.starts_with("e1000g0 ")).count(), 1, "{t}");
    assert!(!logged(&d, "IPv6 test address"), "{}", d.stderr_text());
    // Now the router's link-local only: IPv6 probers come, IPv4 ones go.
    write(&format!("\"{ll}\""));
    d.signal(libc::SIGHUP);
    expect_log(&d, "configuration of group production0 reloaded");
    wait_probing6(&lab, &d);
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    for m in ["e1000g0", "e1000g1", "rge0"] {
        let rows: Vec<Vec<&str>> = t
            .lines()
            .filter(|l| l.starts_with(&format!("{m} ")))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let ta = link_local(lab.mac("host", m)).to_string();
        assert!(
            rows.iter()
                .any(|r| r[2] == ta && r.last() == Some(&ll.to_string().as_str())),
            "{t}"
        );
        assert!(!rows.iter().any(|r| r.last() == Some(&ROUTER_IP)), "{t}");
    }
    assert!(!logged(&d, "failure detected"), "{}", d.stderr_text());
    // And the IPv6 probes alone detect a silent cut.
    silent_cut(&lab, &d);
    // Back to IPv4 targets: the IPv6 probers go, with their test
    // addresses' solicited-node groups.
    let ta = link_local(lab.mac("host", "e1000g0"));
    let group_mac = common::fmt_mac(&ipmpd::wire::ipv6::multicast_mac(
        ipmpd::wire::ipv6::solicited_node(ta),
    ));
    let maddr = || lab.sh_ok("host", "ip maddr show dev e1000g0");
    assert!(maddr().contains(&group_mac), "{}", maddr());
    write(&format!("\"{ROUTER_IP}\""));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(SETTLE, || count(
            &d,
            "configuration of group production0 reloaded"
        ) == 2),
        "{}",
        d.stderr_text()
    );
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("e1000g0 ")).collect();
    assert_eq!(rows.len(), 1, "{t}");
    assert!(rows[0].ends_with(ROUTER_IP), "{t}");
    assert!(
        wait_until(SETTLE, || !maddr().contains(&group_mac)),
        "{}",
        maddr()
    );
    // The IPv4 test addresses answer again (ARP and ping), probes with them.
    assert!(wait_until(SETTLE, || lab
        .ping("router", "192.0.2.201", 1)
        .clean()));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !logged(&d, "IP interface failure detected on rge0"),
        "{}",
        d.stderr_text()
    );
}

#[test]
fn an_ipv6_route_added_after_start_makes_its_link_local_next_hop_the_target() {
    let lab = Lab::new("v6route");
    let ll = router_v6(&lab);
    // No targets: the router is found by discovery first.
    let d = start(&lab, &icmp_args(), "ipmp0", "192.0.2.200");
    wait_probing6(&lab, &d);
    expect_log(
        &d,
        &format!("Probe targets for e1000g0 of group production0 (multicast discovery): {ll}"),
    );
    // A route through ipmp0 via the router's link-local (as SLAAC's default
    // route would be): re-read within the refresh period, MODE routes.
    lab.sh_ok(
        "host",
        &format!("ip -6 route add 2001:db8:0:9::/64 via {ll} dev ipmp0"),
    );
    every_member_targets(&d, "routers", ll);
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    for m in ["e1000g0", "e1000g1", "rge0"] {
        let ta = link_local(lab.mac("host", m)).to_string();
        // The IPv6 row (the IPv4 one says "disabled": no IPv4 test address).
        let row: Vec<&str> = t
            .lines()
            .rfind(|l| l.starts_with(&format!("{m} ")))
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(row, [m, "routes", &ta, &ll.to_string()], "{t}");
    }
    silent_cut(&lab, &d);
}

/// Every member logged `target` as its IPv6 probe target, found by
/// `source` ("routers", "multicast discovery").
fn every_member_targets(d: &Proc, source: &str, target: Ipv6Addr) {
    for m in MEMBERS {
        expect_log(
            d,
            &format!("Probe targets for {m} of group production0 ({source}): {target}"),
        );
    }
}

/// radvd on the router (`scripts/lab.sh radvd`), stopped on drop.
struct Radvd(Proc);

impl Drop for Radvd {
    fn drop(&mut self) {
        self.0.stop(Duration::from_secs(5));
    }
}

#[test]
fn a_default_route_learned_by_slaac_after_start_makes_the_router_the_ipv6_target() {
    let lab = Lab::new("v6slaac");
    let d = start(&lab, &icmp_args(), "ipmp0", "192.0.2.200");
    // Router advertisements start after ipmpd: the default route via the
    // router's link-local comes later, and the targets follow it.
    let dir = lab.dir.join("radvd");
    let _radvd = Radvd(lab.spawn_script(&["radvd", &dir.to_string_lossy()]));
    let ll = link_local(lab.mac("router", "r0"));
    assert!(
        wait_until(Duration::from_secs(30), || lab
            .exec_ok("host", &["ip", "-6", "route", "show", "default"])
            .contains(&format!("via {ll} dev ipmp0"))),
        "no default route from SLAAC"
    );
    every_member_targets(&d, "routers", ll);
    wait_probing6(&lab, &d);
    silent_cut(&lab, &d);
}

#[test]
fn a_configured_ipv6_route_via_the_routers_link_local_makes_it_the_target() {
    let lab = Lab::new("v6cfgrt");
    let ll = router_v6(&lab);
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production0.toml"),
        format!(
            "data = [\"192.0.2.200/24\"]\nprobe = \"icmp\"\nfailure_detection_time = \"{FDT}\"\n\
             [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n[[member]]\nname = \"rge0\"\n\
             [[route]]\ndestination = \"2001:db8:0:9::/64\"\ngateway = \"{ll}\"\n"
        ),
    )
    .unwrap();
    let d = start(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        "192.0.2.200",
    );
    assert!(lab
        .exec_ok("host", &["ip", "-6", "route", "show", "2001:db8:0:9::/64"])
        .contains(&format!("via {ll} dev ipmp0")));
    every_member_targets(&d, "routers", ll);
    wait_probing6(&lab, &d);
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert!(
        t.lines()
            .any(|l| l.starts_with("e1000g0 ") && l.contains(" routes ") && l.ends_with(&ll.to_string())),
        "{t}"
    );
    silent_cut(&lab, &d);
}
