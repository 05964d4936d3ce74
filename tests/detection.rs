//! Failure detection and repair against real kernel peers in the lab: the
//! tutorial's scenarios, link- and probe-based, ICMP and ARP probing.

mod common;

use common::daemon::*;
use common::{fmt_mac, wait_until, Lab, Proc, ROUTER_IP};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long a scenario may take to show its outcome; detection itself is
/// measured by scripts/bench-failover.sh, not here.
const SETTLE: Duration = Duration::from_secs(10);
const FDT: &str = "700ms";
/// The spoofing attacker's MAC.
const ATTACKER_MAC: &str = "02:00:5e:00:66:66";
/// How long the spoofer answers probes (the cut must be detected meanwhile).
const SPOOF_SECONDS: &str = "8";

fn args(extra: &[&str]) -> Vec<String> {
    let mut a = tutorial_args();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn icmp_args(extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        "--test-address",
        "e1000g0=192.0.2.201/24",
        "--test-address",
        "e1000g1=192.0.2.202/24",
        "--test-address",
        "rge0=192.0.2.203/24",
        "--target",
        ROUTER_IP,
        "--fdt",
        FDT,
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn arp_args(extra: &[&str]) -> Vec<String> {
    let mut a = args(&["--probe", "arp", "--target", ROUTER_IP, "--fdt", FDT]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// e1000g0 and e1000g1 active, rge0 standby.
fn standby_args(extra: &[&str]) -> Vec<String> {
    let mut a = strings(&[
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
    ]);
    a.extend(strings(extra));
    a
}

fn logged(d: &Proc, line: &str) -> bool {
    d.stderr_text().contains(line)
}

/// Log lines that are exactly `line` (after the timestamp and level).
fn count(d: &Proc, line: &str) -> usize {
    d.stderr_text()
        .lines()
        .filter(|l| l.ends_with(&format!("] {line}")))
        .count()
}

#[track_caller]
fn expect_log(d: &Proc, line: &str) {
    assert!(
        wait_until(SETTLE, || logged(d, line)),
        "no log line {line:?}:\n{}",
        d.stderr_text()
    );
}

/// Waits until the member's probes have been answered (the prober left the
/// quiet period), so a cut is detected by probes, not excused by it.
fn wait_probing() {
    // Ten probe intervals of 100 ms at least.
    std::thread::sleep(Duration::from_millis(1500));
}

/// A TCP connection from the data address to the router, exchanging a byte
/// every 50 ms for `secs` seconds; exits non-zero if the connection breaks.
fn tcp_session(lab: &Lab, secs: u32) -> (Proc, Proc) {
    let srv = "import socket\n\
               s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
               s.bind(('192.0.2.1',7000)); s.listen(1); s.settimeout(30)\n\
               c,_=s.accept(); c.settimeout(30)\n\
               while True:\n d=c.recv(100)\n if not d: break\n c.sendall(d)\n";
    let server = lab.spawn("router", "python3", &["-c", srv]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .sh("router", "ss -ltn | grep -q ':7000'")
        .status
        .success()));
    let cli = format!(
        "import socket,time,sys\n\
         c=socket.create_connection(('192.0.2.1',7000),timeout=20,source_address=('192.0.2.200',0))\n\
         end=time.time()+{secs}; n=0\n\
         while time.time()<end:\n c.sendall(b'x'); assert c.recv(1)==b'x'; n+=1; time.sleep(0.05)\n\
         print('exchanged',n)\n"
    );
    let client = lab.spawn("host", "python3", &["-c", &cli]);
    (server, client)
}

#[test]
fn link_failure_moves_the_nominee_and_traffic_continues() {
    let lab = Lab::new("link");
    let d = start_tutorial(&lab);
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    lab.cut("e1000g0");
    expect_log(&d, "The link has gone down on e1000g0");
    expect_log(
        &d,
        "multicast and broadcast now through e1000g1 in group production0",
    );
    expect_log(&d, "e1000g0 is no longer active in group production0 (failed)");
    let r = lab.ping("host", ROUTER_IP, 50);
    assert!(r.clean(), "traffic after the failover: {r:?}");
    lab.ping("router", DATA, 20).expect_clean();
    lab.restore("e1000g0");
    expect_log(&d, "The link has come up on e1000g0");
    assert!(wait_until(SETTLE, || count(
        &d,
        "e1000g0 is now active in group production0"
    ) == 2));
    lab.ping("host", ROUTER_IP, 20).expect_clean();
}

#[test]
fn without_probing_a_silent_cut_fails_nothing() {
    let lab = Lab::new("silent");
    let d = start_tutorial(&lab);
    lab.cut("cable4");
    // The seed's point: link-based detection cannot see this. Give a probe
    // based daemon ample time to have noticed, then check nothing was noticed.
    std::thread::sleep(Duration::from_secs(3));
    let log = d.stderr_text();
    assert!(!log.contains("failure detected"), "{log}");
    assert!(!log.contains("gone down"), "{log}");
    assert!(!log.contains("no longer active"), "{log}");
    lab.restore("cable4");
}

/// Scenario 3: a silent cut between the switches fails e1000g0 and e1000g1
/// by probes; the data address moves to rge0 with gratuitous ARP; an open
/// TCP connection survives; both are repaired after the cable returns.
fn silent_cut_is_detected_by_probes(lab: &Lab, d: &Proc) {
    wait_probing();
    let (_server, mut client) = tcp_session(lab, 8);
    std::thread::sleep(Duration::from_secs(1));
    lab.cut("cable4");
    expect_log(d, "IP interface failure detected on e1000g0 of group production0");
    expect_log(d, "IP interface failure detected on e1000g1 of group production0");
    let rge0 = lab.mac("host", "rge0");
    assert!(
        wait_until(SETTLE, || {
            let _ = lab.ping("router", DATA, 1);
            lab.neigh_mac("router", DATA) == Some(rge0)
        }),
        "router's ARP entry for {DATA} is {:?}, not rge0 {}",
        lab.neigh_mac("router", DATA).map(|m| fmt_mac(&m)),
        fmt_mac(&rge0)
    );
    assert!(!logged(d, "failure detected on rge0"), "{}", d.stderr_text());
    lab.restore("cable4");
    expect_log(d, "IP interface repair detected on e1000g0 of group production0");
    expect_log(d, "IP interface repair detected on e1000g1 of group production0");
    let st = client
        .wait_timeout(Duration::from_secs(30))
        .expect("client finished");
    assert!(
        st.success(),
        "TCP connection broke across the failover:\n{}",
        client.stderr_text()
    );
    assert!(client.stdout_text().contains("exchanged"));
}

#[test]
fn icmp_probes_detect_a_silent_cut_and_keep_tcp_alive() {
    let lab = Lab::new("icmp3");
    let d = start(&lab, &icmp_args(&[]), "ipmp0", DATA);
    // Test addresses live in the daemon and answer like kernel ones.
    assert!(wait_until(SETTLE, || lab
        .ping("router", "192.0.2.201", 1)
        .clean()));
    silent_cut_is_detected_by_probes(&lab, &d);
}

#[test]
fn arp_probes_detect_a_silent_cut_and_keep_tcp_alive() {
    let lab = Lab::new("arp3");
    let d = start(&lab, &arp_args(&[]), "ipmp0", DATA);
    silent_cut_is_detected_by_probes(&lab, &d);
}

/// Scenario 4: rge0 standby; an active member fails, rge0 is deployed; on
/// repair rge0 goes back to standby (FAILBACK=yes), or the repaired member
/// stays inactive (FAILBACK=no).
fn standby_scenario(lab: &Lab, d: &Proc, failback: bool) {
    wait_probing();
    assert!(
        !logged(d, "rge0 is now active"),
        "standby active at start:\n{}",
        d.stderr_text()
    );
    lab.cut("e1000g0");
    expect_log(d, "rge0 is now active in group production0");
    lab.ping("host", ROUTER_IP, 20).expect_clean();
    lab.restore("e1000g0");
    if failback {
        expect_log(d, "rge0 is no longer active in group production0 (standby)");
        assert_eq!(count(d, "e1000g0 is now active in group production0"), 2);
    } else {
        // Give the repair ample time, then check e1000g0 stayed inactive.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(
            count(d, "e1000g0 is now active in group production0"),
            1,
            "{}",
            d.stderr_text()
        );
        assert!(!logged(d, "rge0 is no longer active"));
        // It stands in when the next member fails.
        lab.cut("e1000g1");
        expect_log(d, "e1000g0 is now active in group production0");
    }
    assert!(wait_until(SETTLE, || lab.ping("host", ROUTER_IP, 5).clean()));
}

#[test]
fn standby_is_deployed_and_returns_link_based() {
    let lab = Lab::new("stby");
    let a = standby_args(&[]);
    let d = start(&lab, &a, "ipmp0", DATA);
    standby_scenario(&lab, &d, true);
}

#[test]
fn standby_with_failback_no_keeps_the_repaired_member_inactive() {
    let lab = Lab::new("stbyfbno");
    let a = standby_args(&["--failback", "no"]);
    let d = start(&lab, &a, "ipmp0", DATA);
    standby_scenario(&lab, &d, false);
}

#[test]
fn standby_in_arp_probe_mode() {
    let lab = Lab::new("stbyarp");
    let a = standby_args(&["--probe", "arp", "--target", ROUTER_IP, "--fdt", FDT]);
    let d = start(&lab, &a, "ipmp0", DATA);
    standby_scenario(&lab, &d, true);
    // And by probes alone: the silent cut fails both actives, rge0 carries all.
    lab.restore("e1000g1");
    wait_probing();
    let before = count(&d, "rge0 is now active in group production0");
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g1 of group production0",
    );
    assert!(wait_until(SETTLE, || count(
        &d,
        "rge0 is now active in group production0"
    ) > before));
    lab.restore("cable4");
}

/// Removes a namespace the test added beside the lab's, even on panic.
struct ExtraNs(String);

impl Drop for ExtraNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn spoofed_echo_replies_do_not_keep_a_dead_member_alive() {
    let lab = Lab::new("spoof");
    let d = start(&lab, &icmp_args(&[]), "ipmp0", DATA);
    // An attacker on switch A: after the cut it still reaches e1000g0. It
    // answers e1000g0's ARP requests for the target with its own MAC, so the
    // echo probes come to it, and answers each with the right source, id and
    // sequence number but not the nonce; it sends more with wrong ids.
    let atk = ExtraNs(format!("{}-atk", lab.prefix));
    let sh = |c: &str| {
        assert!(
            Command::new("bash").arg("-c").arg(c).status().unwrap().success(),
            "{c}"
        )
    };
    sh(&format!(
        "ip netns add {a} && ip -n {a} link add a0 type veth peer name sw-atk netns {swa} && \
         ip -n {swa} link set sw-atk master br0 up && ip -n {a} link set a0 address {ATTACKER_MAC} up",
        a = atk.0,
        swa = lab.ns("swa")
    ));
    let e0 = fmt_mac(&lab.mac("host", "e1000g0"));
    let router_mac = fmt_mac(&lab.mac("router", "r0"));
    wait_probing();
    let spoofer = Command::new("ip")
        .args(["netns", "exec", &atk.0, "python3"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/spoofer.py"))
        .args([
            "a0",
            ATTACKER_MAC,
            &e0,
            &router_mac,
            ROUTER_IP,
            "192.0.2.201", // e1000g0's test address
            SPOOF_SECONDS,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g0 of group production0",
    );
    let out = spoofer.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u32> = text
        .trim()
        .strip_prefix("spoofed ")
        .map(|n| n.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let (sent, matched) = (
        counts.first().copied().unwrap_or(0),
        counts.get(1).copied().unwrap_or(0),
    );
    assert!(sent > 100, "the spoofer did send replies: {text}");
    // Either it saw real probes and answered them with the right id and
    // sequence number, or its ARP answers for the target were refused (the
    // target's MAC is pinned), so no probe ever went to it.
    assert!(
        matched >= 5 || logged(&d, &format!("from {ATTACKER_MAC}")),
        "the spoofer took part: {text}\n{}",
        d.stderr_text()
    );
    assert!(
        !logged(&d, "IP interface repair detected on e1000g0"),
        "{}",
        d.stderr_text()
    );
    lab.restore("cable4");
}

#[test]
fn only_target_dying_reports_group_failed_but_traffic_flows() {
    let lab = Lab::new("tgtdie");
    lab.exec_ok("router", &["ip", "addr", "add", "192.0.2.2/24", "dev", "r0"]);
    let a = args(&["--probe", "arp", "--target", "192.0.2.2", "--fdt", FDT]);
    let d = start(&lab, &a, "ipmp0", DATA);
    wait_probing();
    lab.exec_ok("router", &["ip", "addr", "del", "192.0.2.2/24", "dev", "r0"]);
    expect_log(&d, "All IP interfaces in group production0 are now unusable");
    let r = lab.ping("host", ROUTER_IP, 50);
    assert!(r.clean(), "no self-inflicted black hole: {r:?}");
    lab.ping("router", DATA, 20).expect_clean();
    lab.exec_ok("router", &["ip", "addr", "add", "192.0.2.2/24", "dev", "r0"]);
    // The first answer repairs, and the group's return is logged; the
    // start-up was no recovery, so no such line comes before the failure.
    expect_log(&d, "in group production0 is now usable");
    let text = d.stderr_text();
    let unusable = text.find("are now unusable").unwrap_or(usize::MAX);
    assert!(text.find("is now usable").is_some_and(|u| u > unusable), "{text}");
    expect_log(&d, "IP interface repair detected on");
}

#[test]
fn routers_become_targets_when_a_default_route_appears() {
    let lab = Lab::new("routers");
    let d = start(&lab, &args(&["--probe", "arp", "--fdt", FDT]), "ipmp0", DATA);
    expect_log(&d, "No probe targets for e1000g0 of group production0");
    lab.exec_ok(
        "host",
        &["ip", "route", "add", "default", "via", ROUTER_IP, "dev", "ipmp0"],
    );
    expect_log(
        &d,
        "Probe targets for e1000g0 of group production0 (routers): 192.0.2.1",
    );
    wait_probing();
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g0 of group production0",
    );
    lab.restore("cable4");
}

#[test]
fn link_flaps_hold_the_repair() {
    let lab = Lab::new("flap");
    let d = start_tutorial(&lab);
    for i in 1..=3 {
        lab.cut("e1000g0");
        assert!(wait_until(SETTLE, || count(
            &d,
            "The link has gone down on e1000g0"
        ) == i));
        lab.restore("e1000g0");
        assert!(wait_until(SETTLE, || count(
            &d,
            "The link has come up on e1000g0"
        ) == i));
    }
    expect_log(
        &d,
        "The link has come up on e1000g0 more than 2 times in the last minute; disabling repair until it stabilizes",
    );
    // Activated at start and after the first two repairs, not the third.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count(&d, "e1000g0 is now active in group production0"),
        3,
        "{}",
        d.stderr_text()
    );
}

#[test]
fn without_routers_icmp_probing_discovers_hosts_by_multicast() {
    let lab = Lab::new("mcdisc");
    // Linux ignores echo requests to multicast groups by default.
    lab.exec_ok(
        "router",
        &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0"],
    );
    let a = args(&[
        "--test-address",
        "e1000g0=192.0.2.201/24",
        "--test-address",
        "e1000g1=192.0.2.202/24",
        "--test-address",
        "rge0=192.0.2.203/24",
        "--fdt",
        FDT,
    ]);
    let d = start(&lab, &a, "ipmp0", DATA);
    expect_log(
        &d,
        "Probe targets for e1000g0 of group production0 (multicast discovery): 192.0.2.1",
    );
    expect_log(
        &d,
        "Probe targets for rge0 of group production0 (multicast discovery): 192.0.2.1",
    );
    wait_probing();
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g1 of group production0",
    );
    lab.restore("cable4");
    expect_log(&d, "IP interface repair detected on e1000g1 of group production0");
}

#[test]
fn a_deleted_member_fails_and_rejoins_when_it_comes_back() {
    let lab = Lab::new("rejoin");
    let d = start_tutorial(&lab);
    // Deleting the switch end of the veth pair deletes the member too.
    lab.exec_ok("swa", &["ip", "link", "del", "sw-e1000g1"]);
    expect_log(
        &d,
        "e1000g1 was removed from the system; it rejoins group production0 when it comes back",
    );
    lab.ping("host", ROUTER_IP, 20).expect_clean();
    lab.exec_ok(
        "host",
        &[
            "ip",
            "link",
            "add",
            "e1000g1",
            "type",
            "veth",
            "peer",
            "name",
            "sw-e1000g1",
            "netns",
            &lab.ns("swa"),
        ],
    );
    lab.exec_ok("swa", &["ip", "link", "set", "sw-e1000g1", "master", "br0", "up"]);
    assert!(
        wait_until(SETTLE, || count(&d, "e1000g1 is now active in group production0")
            >= 2),
        "{}",
        d.stderr_text()
    );
    assert!(
        wait_path_settled(&lab, &d, ROUTER_IP, SETTLE),
        "{}",
        d.stderr_text()
    );
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "{r:?}\n{}", d.stderr_text());
    assert_eq!(tcx_count(&lab, "host", "e1000g1"), 1);
}

#[test]
fn configuration_problems_are_logged_with_the_original_messages() {
    let lab = Lab::new("cfglog");
    // A test address given to two members is a configuration error known
    // before anything starts: refused like --check refuses it (in.mpathd,
    // which learns test addresses one at a time, logs "Test address ... is
    // not unique in group" and disables probing on the later member).
    let dup = args(&[
        "--test-address",
        "e1000g0=192.0.2.201/24",
        "--test-address",
        "e1000g1=192.0.2.201/24",
        "--target",
        ROUTER_IP,
    ]);
    let (code, err) = run_once(&lab, &dup, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("test address 192.0.2.201 is given twice"), "{err}");
    let a = args(&[
        "--test-address",
        "e1000g0=192.0.2.201/24",
        "--test-address",
        "e1000g1=192.0.2.202/24",
        "--target",
        ROUTER_IP,
        "--fdt",
        "50ms",
    ]);
    let d = start(&lab, &a, "ipmp0", DATA);
    expect_log(
        &d,
        "Too small failure detection time of 50 ms, assuming minimum of 100 ms",
    );
    expect_log(
        &d,
        "No test address configured on interface rge0; disabling probe-based failure detection on it",
    );
    // Bad values on the command line are refused, naming the value.
    for (flag, value) in [("--fdt", "ten"), ("--failback", "maybe"), ("--probe", "tcp")] {
        let mut bad = tutorial_args();
        bad.extend([flag.to_string(), value.to_string()]);
        let (code, err) = run_once(&lab, &bad, Duration::from_secs(10));
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(value), "{flag} {value}: {err}");
    }
}

#[test]
fn standby_with_failback_no_in_arp_probe_mode_by_probes_alone() {
    let lab = Lab::new("stbyarpno");
    let a = standby_args(&[
        "--probe",
        "arp",
        "--target",
        ROUTER_IP,
        "--fdt",
        FDT,
        "--failback",
        "no",
    ]);
    let d = start(&lab, &a, "ipmp0", DATA);
    wait_probing();
    // The silent cut fails both actives by probes: the standby carries all.
    lab.cut("cable4");
    expect_log(
        &d,
        "IP interface failure detected on e1000g1 of group production0",
    );
    expect_log(
        &d,
        "IP interface failure detected on e1000g0 of group production0",
    );
    expect_log(&d, "rge0 is now active in group production0");
    lab.restore("cable4");
    expect_log(&d, "IP interface repair detected on e1000g0 of group production0");
    expect_log(&d, "IP interface repair detected on e1000g1 of group production0");
    // FAILBACK=no: the repaired members stay inactive, rge0 keeps carrying.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&d, "e1000g0 is now active in group production0"),
        1,
        "{}",
        d.stderr_text()
    );
    assert!(!logged(&d, "rge0 is no longer active"), "{}", d.stderr_text());
    lab.ping("host", ROUTER_IP, 20).expect_clean();
}
