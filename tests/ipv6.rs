//! IPv6 data addresses through the group against real kernel peers: the
//! host's stack on ipmp0 (dual stack), the router's r0 (2001:db8::1/64).

mod common;

use common::daemon::*;
use common::xfer::transfer_intact;
use common::{fmt_mac, wait_until, Lab, MEMBERS};
use std::time::Duration;

const ROUTER6: &str = "2001:db8::1";
const DATA6: [&str; 2] = ["2001:db8::200", "2001:db8::201"];
/// DAD (1 s by default) and the binding after it, with room for a busy machine.
const BOUND_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for the router's neighbour entry to follow a failover (the
/// unsolicited NA is sent at once, then repeated).
const MOVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each transfer: the debug daemon on a shared 2-core machine.
const TRANSFER_TIMEOUT_S: &str = "600";

/// The tutorial group plus two IPv6 data addresses (dual stack).
fn dual_stack_args() -> Vec<String> {
    let mut a = tutorial_args();
    for d in DATA6 {
        a.push("--data".into());
        a.push(format!("{d}/64"));
    }
    a
}

/// The member an address is bound to, from `ipmpstat -a` (None: unbound or absent).
fn inbound_of(lab: &Lab, addr: &str) -> Option<String> {
    let (_, out, _) = ipmpstat(lab, &["-a"]);
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.first() == Some(&addr) && w.get(1) == Some(&"up"))
            .then(|| w.get(3).map(|s| s.to_string()))
            .flatten()
    })
}

/// Starts the dual-stack group and waits until both IPv6 addresses are
/// bound (past DAD); returns the daemon.
fn start_dual_stack(lab: &Lab) -> common::Proc {
    let d = start(lab, &dual_stack_args(), "ipmp0", DATA);
    let bound = wait_until(BOUND_TIMEOUT, || {
        DATA6.iter().all(|a| inbound_of(lab, a).is_some())
    });
    let (_, table, _) = ipmpstat(lab, &["-a"]);
    assert!(bound, "IPv6 addresses not bound:\n{table}\n{}", d.stderr_text());
    d
}

fn member_mac(lab: &Lab, name: &str) -> [u8; 6] {
    lab.mac("host", name)
}

#[test]
fn ping6_both_ways_neighbours_spread_and_move_on_failure() {
    let lab = Lab::new("v6ping");
    let d = start_dual_stack(&lab);
    for a in DATA6 {
        let r = lab.ping("router", a, 20);
        assert!(r.clean(), "router -> {a}: {r:?}");
    }
    let r = lab.ping("host", ROUTER6, 20);
    assert!(r.clean(), "host -> router: {r:?}");
    // IPv4 still works beside it.
    let r = lab.ping("router", DATA, 5);
    assert!(r.clean(), "router -> {DATA}: {r:?}");

    // The router knows each address by the MAC of the member it is bound
    // to, and the two are on different members (spread evenly).
    let mut bound = Vec::new();
    for a in DATA6 {
        let m = inbound_of(&lab, a).expect("bound");
        let got = lab.neigh_mac("router", a);
        assert_eq!(
            got,
            Some(member_mac(&lab, &m)),
            "{a} bound to {m}; router has {:?}",
            got.map(|x| fmt_mac(&x))
        );
        bound.push(m);
    }
    assert_ne!(bound[0], bound[1], "both IPv6 addresses on one member");
    // The JSON status carries them with their members too.
    let (_, j, _) = ipmpstat(&lab, &["-a", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    for (a, m) in DATA6.iter().zip(&bound) {
        assert!(
            groups[0]
                .addresses
                .iter()
                .any(|x| x.address == *a && x.inbound.as_deref() == Some(m.as_str())),
            "{a} on {m} not in {j}"
        );
    }
    assert!(bound.iter().all(|m| MEMBERS.contains(&m.as_str())));

    // Carrier loss on the first address's member: the router's entry moves
    // to the new member's MAC (the unsolicited NA) and ping6 still works.
    let victim = bound[0].clone();
    lab.cut(&victim);
    let moved = wait_until(MOVE_TIMEOUT, || {
        matches!(inbound_of(&lab, DATA6[0]), Some(m) if m != victim)
            && inbound_of(&lab, DATA6[0])
                .is_some_and(|m| lab.neigh_mac("router", DATA6[0]) == Some(member_mac(&lab, &m)))
    });
    let (_, table, _) = ipmpstat(&lab, &["-a"]);
    assert!(
        moved,
        "entry for {} did not follow: router has {:?}\n{table}\n{}",
        DATA6[0],
        lab.neigh_mac("router", DATA6[0]).map(|x| fmt_mac(&x)),
        d.stderr_text()
    );
    assert!(
        d.stderr_text().contains(&format!("{} now bound to", DATA6[0])),
        "no announcement logged"
    );
    let r = lab.ping("router", DATA6[0], 20);
    assert!(r.clean(), "router -> {} after the cut: {r:?}", DATA6[0]);
}

/// Well past the default announcements of a binding (a few, 50 ms apart).
const ANNOUNCEMENTS_DONE: Duration = Duration::from_millis(1000);

#[test]
fn ndisc6_gets_exactly_one_answer_with_the_bound_members_mac() {
    let lab = Lab::new("v6ndisc");
    let _d = start_dual_stack(&lab);
    // `ndisc6 -m` shows every NA for the target, unsolicited ones too: let
    // the binding's announcements (--garp-count, 50 ms apart) end first.
    std::thread::sleep(ANNOUNCEMENTS_DONE);
    for a in DATA6 {
        let m = inbound_of(&lab, a).expect("bound");
        // -m: wait for and show every reply, not just the first; -n: numeric.
        let out = lab.exec_ok("router", &["ndisc6", "-m", "-n", "-r", "1", a, "r0"]);
        let answers: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("Target link-layer address"))
            .collect();
        assert_eq!(answers.len(), 1, "{a}: {out}");
        let want = fmt_mac(&member_mac(&lab, &m)).to_uppercase();
        assert!(
            answers[0].to_uppercase().contains(&want),
            "{a} bound to {m} ({want}): {out}"
        );
    }
}

#[test]
fn the_link_local_of_ipmp0_is_bound_and_pingable() {
    let lab = Lab::new("v6ll");
    let _d = start_dual_stack(&lab);
    let ll = ipmpd::wire::ipv6::link_local_from_mac(lab.mac("host", "ipmp0")).to_string();
    assert!(
        wait_until(BOUND_TIMEOUT, || inbound_of(&lab, &ll).is_some()),
        "{ll} not bound: {}",
        ipmpstat(&lab, &["-a"]).1
    );
    let r = lab.ping("router", &format!("{ll}%r0"), 10);
    assert!(r.clean(), "router -> {ll}: {r:?}");
}

/// The gigabyte: 1 GiB.
const TRANSFER_BYTES: u64 = 1 << 30;
const XFER_PORT: &str = "5202";

#[test]
fn a_gigabyte_over_tcp6_each_way_arrives_intact() {
    let lab = Lab::new("v6tcp");
    let _d = start_dual_stack(&lab);
    // host -> router, then router -> host (to the first IPv6 data address).
    for (sender, receiver, at) in [("host", "router", ROUTER6), ("router", "host", DATA6[0])] {
        transfer_intact(
            &lab,
            "tcp6",
            (sender, receiver),
            (at, XFER_PORT),
            TRANSFER_BYTES,
            TRANSFER_TIMEOUT_S,
        );
    }
}

/// The member holding the `m` flag (multicast and broadcast nominee).
fn nominee(lab: &Lab) -> Option<String> {
    let (_, out, _) = ipmpstat(lab, &["-i"]);
    out.lines().skip(1).find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.get(3).is_some_and(|f| f.contains('m'))).then(|| w[0].to_string())
    })
}

/// The switch (namespace, port) each member is cabled to.
fn switch_port(member: &str) -> (&'static str, String) {
    let ns = if member == "rge0" { "swb" } else { "swa" };
    (ns, format!("sw-{member}"))
}

/// Starts tcpdump in the background and waits until it listens.
fn capture(lab: &Lab, which: &str, args: &[&str]) -> common::Proc {
    let mut full = vec!["-n", "-l", "-e"];
    full.extend_from_slice(args);
    let p = lab.spawn(which, "tcpdump", &full);
    assert!(
        wait_until(Duration::from_secs(10), || p
            .stderr_text()
            .contains("listening on")),
        "tcpdump did not start: {}",
        p.stderr_text()
    );
    p
}

/// Linux repeats an unsolicited MLD report twice (robustness 2), up to
/// 1 s apart (mldv2_unsolicited_report_interval); after joins at DAD time.
const UNSOLICITED_REPORTS_DONE: Duration = Duration::from_secs(5);

#[test]
fn after_a_nominee_move_mld_reports_leave_through_the_new_nominee() {
    let lab = Lab::new("v6mld");
    let d = start_dual_stack(&lab);
    // Let the kernel's own unsolicited reports for its new groups end
    // (two each, up to a second apart), so that only a report made after
    // the move can be seen.
    std::thread::sleep(UNSOLICITED_REPORTS_DONE);
    let old = nominee(&lab).expect("a nominee");
    // MLDv2 reports (to ff02::16) the host sends, seen entering each
    // remaining member's switch port. The lab has no MLD querier: without
    // the query the daemon injects, the kernel would not report again.
    let caps: Vec<(String, common::Proc)> = MEMBERS
        .iter()
        .filter(|m| **m != old)
        .map(|m| {
            let (ns, port) = switch_port(m);
            let p = capture(&lab, ns, &["-i", &port, "-Q", "in", "ip6", "dst", "ff02::16"]);
            (m.to_string(), p)
        })
        .collect();
    lab.cut(&old);
    assert!(
        wait_until(MOVE_TIMEOUT, || nominee(&lab).is_some_and(|n| n != old)),
        "nominee did not move from {old}"
    );
    let new = nominee(&lab).expect("a nominee");
    let new_mac = fmt_mac(&member_mac(&lab, &new));
    let (_, new_cap) = caps.iter().find(|(m, _)| *m == new).expect("captured");
    let reported = wait_until(MOVE_TIMEOUT, || {
        new_cap
            .stdout_text()
            .lines()
            .any(|l| l.starts_with(&new_mac) || l.contains(&format!(" {new_mac} >")))
    });
    assert!(
        reported,
        "no MLD report through the new nominee {new} ({new_mac}):\n{}\n{}",
        new_cap.stdout_text(),
        d.stderr_text()
    );
}

/// Linux's DAD takes 1 s (one probe, RetransTimer 1 s); three leave room.
const DAD_TIME: Duration = Duration::from_secs(3);

#[test]
fn dad_waits_for_an_active_member_and_the_address_is_bound_after_it() {
    let lab = Lab::new("v6dad");
    for m in MEMBERS {
        lab.cut(m);
    }
    let d = start(&lab, &dual_stack_args(), "ipmp0", DATA);
    // No member forwards: ipmp0 has no carrier, the kernel holds its IPv6
    // addresses tentative (no DAD probe it could not send) and nothing is
    // bound.
    std::thread::sleep(DAD_TIME);
    let addrs = lab.exec_ok("host", &["ip", "-6", "addr", "show", "dev", "ipmp0"]);
    for a in DATA6 {
        let line = addrs
            .lines()
            .find(|l| l.contains(&format!("{a}/64")))
            .unwrap_or_else(|| panic!("{a} missing: {addrs}"));
        assert!(line.contains("tentative"), "{a} not held tentative: {addrs}");
        assert_eq!(inbound_of(&lab, a), None);
    }
    // A member comes up: DAD runs through it, then the addresses are bound
    // and answer.
    lab.restore(MEMBERS[1]);
    // The link-local too: the kernel forms it on carrier, then tests it.
    let ll = ipmpd::wire::ipv6::link_local_from_mac(lab.mac("host", "ipmp0")).to_string();
    assert!(
        wait_until(BOUND_TIMEOUT, || DATA6
            .iter()
            .chain([&ll.as_str()])
            .all(|a| inbound_of(&lab, a).as_deref() == Some(MEMBERS[1]))),
        "not bound after DAD: {}\n{}",
        ipmpstat(&lab, &["-a"]).1,
        d.stderr_text()
    );
    let addrs = lab.exec_ok("host", &["ip", "-6", "addr", "show", "dev", "ipmp0"]);
    assert!(
        !addrs.contains("tentative") && !addrs.contains("dadfailed"),
        "{addrs}"
    );
    for a in DATA6 {
        let r = lab.ping("router", a, 5);
        assert!(r.clean(), "router -> {a}: {r:?}");
    }
}

#[test]
fn an_address_whose_dad_fails_is_never_bound_and_one_added_later_is() {
    let lab = Lab::new("v6dadfail");
    let d = start_dual_stack(&lab);
    // The router's own address: its DAD probe (from ::, through the
    // nominee) is answered by the router, the kernel marks it dadfailed.
    lab.exec_ok(
        "host",
        &["ip", "addr", "add", &format!("{ROUTER6}/64"), "dev", "ipmp0"],
    );
    // And a fresh one, bound like the configured ones once past DAD.
    let later = "2001:db8::202";
    lab.exec_ok(
        "host",
        &["ip", "addr", "add", &format!("{later}/64"), "dev", "ipmp0"],
    );
    assert!(
        wait_until(BOUND_TIMEOUT, || inbound_of(&lab, later).is_some()),
        "{later} not bound: {}\n{}",
        ipmpstat(&lab, &["-a"]).1,
        d.stderr_text()
    );
    assert!(
        wait_until(BOUND_TIMEOUT, || lab
            .exec_ok("host", &["ip", "-6", "addr", "show", "dev", "ipmp0"])
            .lines()
            .any(|l| l.contains(&format!("{ROUTER6}/64")) && l.contains("dadfailed"))),
        "DAD of {ROUTER6} did not fail"
    );
    let (_, table, _) = ipmpstat(&lab, &["-a"]);
    assert!(
        !table
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ROUTER6)),
        "{ROUTER6} bound despite failed DAD:\n{table}"
    );
    let r = lab.ping("router", later, 5);
    assert!(r.clean(), "router -> {later}: {r:?}");
    // The configured addresses are unaffected.
    let r = lab.ping("router", DATA6[0], 5);
    assert!(r.clean(), "router -> {}: {r:?}", DATA6[0]);
}

#[test]
fn the_files_ipv6_data_addresses_and_routes_are_configured() {
    let lab = Lab::new("v6file");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    // 2001:db8:1::/64 lies behind the router (a documentation prefix).
    std::fs::write(
        dir.join("production0.toml"),
        "data = [\"192.0.2.200/24\", \"2001:db8::200/64\"]\n\
         [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n[[member]]\nname = \"rge0\"\n\
         [[route]]\ndestination = \"2001:db8:1::/64\"\ngateway = \"2001:db8::1\"\n",
    )
    .unwrap();
    let args = strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]);
    let d = start(&lab, &args, "ipmp0", DATA);
    let routes = lab.exec_ok("host", &["ip", "-6", "route", "show", "2001:db8:1::/64"]);
    assert!(
        routes.contains("via 2001:db8::1 dev ipmp0"),
        "{routes}\n{}",
        d.stderr_text()
    );
    assert!(
        wait_until(BOUND_TIMEOUT, || inbound_of(&lab, DATA6[0]).is_some()),
        "{} not bound: {}",
        DATA6[0],
        ipmpstat(&lab, &["-a"]).1
    );
    let r = lab.ping("router", DATA6[0], 5);
    assert!(r.clean(), "router -> {}: {r:?}", DATA6[0]);
}
