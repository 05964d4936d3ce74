//! Start-up refusals and teardown: nothing half-configured, members given
//! back exactly as they were found.

mod common;

use common::daemon::*;
use common::{Lab, MEMBERS, ROUTER_IP};
use std::time::Duration;

const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn teardown_removes_ipmp0_and_restores_every_member() {
    let lab = Lab::new("teardown");
    // Non-default member settings the daemon changes while it runs.
    lab.exec_ok("host", &["sysctl", "-qw", "net.ipv6.conf.e1000g0.disable_ipv6=0"]);
    lab.exec_ok("host", &["ip", "link", "set", "e1000g1", "down"]);
    let before = host_snapshot(&lab);
    let mut d = start_tutorial(&lab);
    for m in MEMBERS {
        assert_eq!(tcx_count(&lab, "host", m), 1, "{m} isolated");
    }
    assert_eq!(
        lab.exec_ok("host", &["sysctl", "-n", "net.ipv6.conf.e1000g0.disable_ipv6"])
            .trim(),
        "1"
    );
    lab.ping("host", ROUTER_IP, 3).expect_clean();
    let pid_file = run_dir(&lab).join("production0.pid");
    assert!(pid_file.exists());
    d.signal(libc::SIGTERM);
    let st = d
        .wait_timeout(Duration::from_secs(5))
        .expect("ipmpd exits within 5 s of SIGTERM");
    assert!(st.success(), "{st:?}\n{}", d.stderr_text());
    let after = settled_snapshot(&lab, &before);
    assert_eq!(before, after, "host namespace differs after teardown");
    assert!(!after.contains("ipmp0"));
    assert!(!pid_file.exists(), "pid file removed");
    assert!(
        d.stderr_text().contains("members restored"),
        "{}",
        d.stderr_text()
    );
}

#[test]
fn sigint_also_tears_down() {
    let lab = Lab::new("sigint");
    let before = host_snapshot(&lab);
    let mut d = start_tutorial(&lab);
    d.signal(libc::SIGINT);
    let st = d.wait_timeout(Duration::from_secs(5)).expect("exits");
    assert!(st.success());
    assert_eq!(before, settled_snapshot(&lab, &before));
}

/// Runs ipmpd expecting a refusal: exit status 2, a message containing every
/// `expect` string, and the host namespace unchanged.
fn refuse(lab: &Lab, args: &[String], expect: &[&str]) {
    let before = host_snapshot(lab);
    let (code, err) = run_once(lab, args, REFUSAL_TIMEOUT);
    assert_eq!(code, Some(2), "exit status for {args:?}:\n{err}");
    for e in expect {
        assert!(err.contains(e), "message lacks {e:?}:\n{err}");
    }
    assert_eq!(
        before,
        host_snapshot(lab),
        "system changed by a refused start {args:?}"
    );
}

fn args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["--group", "production0", "--data", "192.0.2.200/24"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn refusals_exit_2_and_leave_the_system_as_it_was() {
    let lab = Lab::new("refuse");
    let members = ["--member", "e1000g0", "--member", "e1000g1", "--member", "rge0"];

    refuse(
        &lab,
        &args(&["--member", "e1000g0", "--member", "nosuch0"]),
        &["nosuch0", "does not exist"],
    );

    lab.sh(
        "host",
        "ip link add brx type bridge && ip link set rge0 master brx",
    );
    refuse(&lab, &args(&members), &["rge0", "enslaved to brx"]);
    lab.sh("host", "ip link set rge0 nomaster && ip link del brx");

    lab.exec_ok(
        "host",
        &[
            "ip", "link", "add", "link", "rge0", "name", "mv0", "type", "macvlan",
        ],
    );
    refuse(&lab, &args(&members), &["rge0", "upper device mv0"]);
    lab.exec_ok("host", &["ip", "link", "del", "mv0"]);

    lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.99/24", "dev", "rge0"]);
    refuse(&lab, &args(&members), &["rge0", "192.0.2.99/24", "--force"]);
    lab.exec_ok("host", &["ip", "addr", "del", "192.0.2.99/24", "dev", "rge0"]);

    lab.exec_ok("host", &["sysctl", "-qw", "net.ipv6.conf.rge0.disable_ipv6=0"]);
    lab.exec_ok(
        "host",
        &["ip", "addr", "add", "2001:db8::99/64", "dev", "rge0", "nodad"],
    );
    refuse(&lab, &args(&members), &["rge0", "2001:db8::99/64"]);
    lab.exec_ok("host", &["ip", "addr", "del", "2001:db8::99/64", "dev", "rge0"]);
    lab.exec_ok("host", &["sysctl", "-qw", "net.ipv6.conf.rge0.disable_ipv6=1"]);

    lab.exec_ok("host", &["ip", "route", "add", "198.51.100.0/24", "dev", "rge0"]);
    refuse(&lab, &args(&members), &["rge0", "198.51.100.0/24"]);
    lab.exec_ok("host", &["ip", "route", "del", "198.51.100.0/24", "dev", "rge0"]);

    lab.sh(
        "host",
        "ip link add spare0 type veth peer name spare1 && ip addr add 192.0.2.200/24 dev spare0",
    );
    refuse(
        &lab,
        &args(&members),
        &["192.0.2.200", "already configured on spare0"],
    );
    lab.exec_ok("host", &["ip", "link", "del", "spare0"]);

    refuse(
        &lab,
        &args(&["--interface", "rge0", "--member", "e1000g0"]),
        &["rge0 already exists"],
    );
    refuse(
        &lab,
        &args(&["--data", "192.0.2.300/24", "--member", "e1000g0"]),
        &["192.0.2.300/24"],
    );
    refuse(
        &lab,
        &args(&["--member", "e1000g0", "--member", "e1000g0"]),
        &["e1000g0 is given twice"],
    );

    // Without privileges: an unprivileged user has no CAP_NET_ADMIN.
    let mut unpriv: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    unpriv.push(BIN.to_string());
    unpriv.extend(args(&members));
    let before = host_snapshot(&lab);
    let refs: Vec<&str> = unpriv.iter().map(String::as_str).collect();
    let out = lab.exec("host", &refs);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_NET_ADMIN"));
    assert_eq!(before, host_snapshot(&lab));

    // With --force a member carrying an address is taken (and given back).
    lab.exec_ok("host", &["ip", "addr", "add", "192.0.2.99/24", "dev", "rge0"]);
    let before = host_snapshot(&lab);
    let mut forced = args(&members);
    forced.push("--force".into());
    let mut d = start(&lab, &forced, "ipmp0", DATA);
    d.signal(libc::SIGTERM);
    assert!(d
        .wait_timeout(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
    assert_eq!(before, settled_snapshot(&lab, &before));
}

#[test]
fn a_member_of_another_group_is_refused() {
    let lab = Lab::new("twogrp");
    let first = args(&[
        "--group",
        "other0",
        "--interface",
        "ipmpa0",
        "--member",
        "e1000g0",
        "--member",
        "e1000g1",
    ]);
    // The later --group wins in clap; give the first group its own name explicitly.
    let first: Vec<String> = first.into_iter().skip(2).collect();
    let _a = start(&lab, &first, "ipmpa0", DATA);
    let second = vec![
        "--group",
        "production0",
        "--interface",
        "ipmpb0",
        "--data",
        "192.0.2.210/24",
        "--member",
        "e1000g0",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    refuse(&lab, &second, &["e1000g0", "another ipmpd group"]);
    // The same group name twice is refused by its pid file too.
    let third: Vec<String> = ["--group", "other0", "--interface", "ipmpc0", "--member", "rge0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    refuse(&lab, &third, &["other0", "already managed"]);
}
