//! Smoke test of the namespace lab itself (no daemon): the kernel's direct
//! path from one member NIC to the router, carrier cuts and the silent
//! inter-switch cut. Needs root.

mod common;

use common::{netns_list, wait_until, Lab, ROUTER_IP};
use std::time::Duration;

const HOST_IP: &str = "192.0.2.50";

fn lab_namespaces(prefix: &str) -> Vec<String> {
    let p = format!("{prefix}-");
    netns_list().into_iter().filter(|n| n.starts_with(&p)).collect()
}

/// After a restore, the host's neighbour entry may still be resolving (and
/// then FAILED) from the cut; wait until the path answers again.
fn wait_reachable(lab: &Lab) {
    assert!(
        wait_until(Duration::from_secs(15), || lab
            .ping("host", ROUTER_IP, 1)
            .received
            > 0),
        "router not reachable again after restore"
    );
}

#[test]
fn direct_path_cuts_and_silent_cut() {
    let lab = Lab::new("smoke");
    for role in ["host", "swa", "swb", "router"] {
        assert!(netns_list().contains(&lab.ns(role)), "{} missing", lab.ns(role));
    }
    for m in common::MEMBERS {
        assert!(lab.has_carrier("host", m), "{m} has no carrier");
    }

    // Kernel's direct path on rge0 (via swb).
    lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.50/24", "dev", "rge0"]);
    let r = lab.ping("host", ROUTER_IP, 20);
    assert_eq!(
        (r.transmitted, r.received, r.duplicates),
        (20, 20, 0),
        "{}",
        r.output
    );
    let rge0 = lab.mac("host", "rge0");
    assert_eq!(lab.neigh_mac("router", HOST_IP), Some(rge0));

    // Carrier loss on rge0.
    lab.cut("rge0");
    assert!(
        wait_until(Duration::from_secs(2), || !lab.has_carrier("host", "rge0")),
        "rge0 still has carrier: {:?}",
        lab.link_flags("host", "rge0")
    );
    let r = lab.ping("host", ROUTER_IP, 3);
    assert_eq!(r.received, 0, "ping through cut rge0 answered: {}", r.output);
    lab.restore("rge0");
    assert!(wait_until(Duration::from_secs(2), || lab.has_carrier("host", "rge0")));
    wait_reachable(&lab);
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "after restore rge0: {}", r.output);

    // Move the address to e1000g0 (via swa, cable4, swb).
    lab.exec_ok("host", &["ip", "addr", "del", "192.0.2.50/24", "dev", "rge0"]);
    lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.50/24", "dev", "e1000g0"]);
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "via e1000g0: {}", r.output);
    assert_eq!(lab.neigh_mac("router", HOST_IP), Some(lab.mac("host", "e1000g0")));

    // Silent cut between the switches: every member keeps its carrier.
    lab.cut("cable4");
    let r = lab.ping("host", ROUTER_IP, 3);
    assert_eq!(r.received, 0, "ping across cut cable4 answered: {}", r.output);
    for m in common::MEMBERS {
        assert!(lab.has_carrier("host", m), "{m} lost carrier on silent cut");
    }
    assert!(lab.has_carrier("router", "r0"));
    lab.restore("cable4");
    wait_reachable(&lab);
    let r = lab.ping("host", ROUTER_IP, 20);
    assert!(r.clean(), "after restore cable4: {}", r.output);

    // Router port.
    lab.cut("router");
    assert!(wait_until(Duration::from_secs(2), || !lab.has_carrier("router", "r0")));
    assert!(lab.has_carrier("host", "e1000g0"));
    lab.restore("router");
    assert!(wait_until(Duration::from_secs(2), || lab.has_carrier("router", "r0")));
    wait_reachable(&lab);

    let prefix = lab.prefix.clone();
    drop(lab);
    assert!(lab_namespaces(&prefix).is_empty(), "leftover namespaces");
}

#[test]
fn two_labs_in_parallel_do_not_collide() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Lab::new("para"));
        let b = s.spawn(|| Lab::new("parb"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.prefix, b.prefix);
    // Same address in both labs, each answered by its own router.
    for lab in [&a, &b] {
        lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.50/24", "dev", "e1000g1"]);
    }
    for lab in [&a, &b] {
        let r = lab.ping("host", ROUTER_IP, 10);
        assert!(r.clean(), "{}: {}", lab.prefix, r.output);
        assert_eq!(lab.neigh_mac("router", HOST_IP), Some(lab.mac("host", "e1000g1")));
    }
    assert_ne!(a.mac("host", "e1000g1"), b.mac("host", "e1000g1"));
    // A cut in one lab does not affect the other.
    a.cut("e1000g1");
    assert!(!a.has_carrier("host", "e1000g1"));
    assert!(b.has_carrier("host", "e1000g1"));
    assert!(b.ping("host", ROUTER_IP, 5).clean());
}

#[test]
fn spawned_process_is_logged_and_stopped() {
    let lab = Lab::new("proc");
    let mut p = lab.spawn(
        "router",
        "bash",
        &["-c", "echo out; echo err >&2; ip -br link show r0; exec sleep 60"],
    );
    assert!(wait_until(Duration::from_secs(5), || p
        .stdout_text()
        .contains("r0")));
    assert_eq!(p.stderr_text(), "err\n");
    assert!(p.stdout_text().starts_with("out\n"));
    assert!(p.wait_timeout(Duration::from_millis(100)).is_none());
    p.signal(libc::SIGTERM);
    let st = p.wait_timeout(Duration::from_secs(5)).expect("exited on SIGTERM");
    assert!(!st.success());
    // Drop of a still-running process terminates it.
    let p2 = lab.spawn("host", "sleep", &["60"]);
    let pid = p2.pid();
    drop(p2);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn lab_is_removed_when_a_test_panics() {
    let mut prefix = String::new();
    let mut dir = std::path::PathBuf::new();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new("unwind");
        prefix = lab.prefix.clone();
        dir = lab.dir.clone();
        let _p = lab.spawn("host", "sleep", &["60"]);
        panic!("deliberate panic with a lab up");
    }));
    assert!(res.is_err());
    assert!(!prefix.is_empty());
    assert!(lab_namespaces(&prefix).is_empty(), "leftover namespaces");
    // The panicking lab kept its process logs for debugging.
    assert!(dir.join("0-host-sleep.stderr").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[should_panic(expected = "deliberate")]
fn should_panic_with_lab_up() {
    let lab = Lab::new("panic");
    let _ = lab.ping("host", ROUTER_IP, 1);
    panic!("deliberate panic ({})", lab.prefix);
}

#[test]
fn ping_summary_parsing() {
    let r = common::PingResult::parse(
        "PING 192.0.2.1 (192.0.2.1) 56(84) bytes of data.\n\n--- 192.0.2.1 ping statistics ---\n\
         20 packets transmitted, 20 received, +3 duplicates, 0% packet loss, time 190ms\n",
    );
    assert_eq!(
        (r.transmitted, r.received, r.duplicates, r.errors),
        (20, 20, 3, 0)
    );
    let r = common::PingResult::parse(
        "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 29ms\n",
    );
    assert_eq!((r.transmitted, r.received, r.duplicates, r.errors), (3, 0, 0, 3));
    assert_eq!(
        common::parse_mac("02:00:5e:10:00:0a"),
        Some([2, 0, 0x5e, 0x10, 0, 10])
    );
    assert_eq!(common::parse_mac("02:00:5e:10:00"), None);
}
