//! A daemon that dies without its teardown (SIGKILL) is undone by the next
//! start; one daemon per group (the pid file is a lock); the run directory
//! and its files must be root's.

mod common;

use common::daemon::*;
use common::{wait_until, Lab, MEMBERS};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);
/// IPv6 duplicate address detection of a link-local address takes about a second.
const DAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the kernel may take to release a dead process's bpf_links.
const TCX_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

fn crash_args() -> Vec<String> {
    strings(&[
        "--group",
        "production0",
        "--interface",
        "ipmp0",
        "--data",
        "192.0.2.200/24",
        "--member",
        "e1000g0",
        "--member",
        "e1000g1",
        "--optional-member",
        "rge0",
        "--force",
    ])
}

fn sysctl(lab: &Lab, key: &str) -> String {
    lab.exec_ok("host", &["sysctl", "-n", key]).trim().to_string()
}

#[test]
fn kill_9_then_start_restores_first_and_stop_gives_every_member_back() {
    let lab = Lab::new("kill9");
    // Members as an administrator may have left them: IPv6 on with static
    // global addresses and routes (which disable_ipv6=1 deletes), a non-default MTU,
    // an optional member that is administratively down.
    lab.sh_ok(
        "host",
        "sysctl -qw net.ipv6.conf.e1000g0.disable_ipv6=0 \
         && ip addr add 2001:db8::10/64 dev e1000g0 nodad \
         && ip -6 route add 2001:db8:99::/64 via 2001:db8::1 dev e1000g0 \
         && ip -6 route add 2001:db8:98::/64 dev e1000g0 table 100 metric 7 pref high \
         && ip link set e1000g1 mtu 1400 \
         && sysctl -qw net.ipv6.conf.e1000g1.disable_ipv6=0 \
         && ip addr add 2001:db8:1::11/64 dev e1000g1 nodad noprefixroute \
         && ip link set rge0 down \
         && sysctl -qw net.ipv6.conf.rge0.disable_ipv6=0 \
         && ip addr add 2001:db8:2::12/64 dev rge0 nodad",
    );
    // The link-local addresses the kernel generates finish DAD first.
    assert!(wait_until(DAD_TIMEOUT, || {
        !lab.sh_ok("host", "ip -6 addr show dev e1000g0; ip -6 addr show dev e1000g1")
            .contains("tentative")
    }));
    let before = host_snapshot(&lab);
    let state = run_dir(&lab).join("production0.state");
    let pid_file = run_dir(&lab).join("production0.pid");

    let mut first = start(&lab, &crash_args(), "ipmp0", DATA);
    assert_eq!(sysctl(&lab, "net.ipv6.conf.e1000g0.disable_ipv6"), "1");
    let state_meta = std::fs::symlink_metadata(&state).ok();
    let state_text = std::fs::read_to_string(&state).unwrap_or_default();
    first.signal(libc::SIGKILL);
    assert!(first.wait_timeout(EXIT_TIMEOUT).is_some(), "SIGKILL ends ipmpd");

    // The tcx programs go with the process (bpf_link); the rest stays changed.
    assert!(
        wait_until(TCX_RELEASE_TIMEOUT, || MEMBERS
            .iter()
            .all(|m| tcx_count(&lab, "host", m) == 0)),
        "tcx programs still attached after the daemon died"
    );
    assert_eq!(sysctl(&lab, "net.ipv6.conf.e1000g0.disable_ipv6"), "1");
    assert!(!lab
        .exec_ok("host", &["ip", "-o", "addr", "show", "dev", "e1000g0"])
        .contains("2001:db8::10"));
    assert!(lab.link_flags("host", "rge0").iter().any(|f| f == "UP"));
    assert!(pid_file.exists(), "a dead daemon leaves its pid file");

    // The next start restores from the state file before recording afresh...
    let mut second = start(&lab, &crash_args(), "ipmp0", DATA);
    // ...so a clean stop gives every member back as it was before the first start.
    second.signal(libc::SIGTERM);
    let st = second.wait_timeout(EXIT_TIMEOUT).expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}\n{}", second.stderr_text());
    assert_eq!(
        before,
        settled_snapshot(&lab, &before),
        "host differs after kill -9, start, stop"
    );
    let log = second.stderr_text();
    assert!(log.contains("did not shut down cleanly"), "{log}");
    assert!(
        log.contains("rge0 restored")
            && log.contains("2001:db8:2::12/64 added back")
            && log.contains("route 2001:db8:98::/64 (table 100) added back"),
        "{log}"
    );
    assert!(!state.exists(), "a clean stop removes the state file");
    assert!(!pid_file.exists());

    // The state file the first daemon wrote before changing anything.
    let m = state_meta.expect("state file exists while members are taken");
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!(m.uid(), 0);
    for name in [
        "e1000g0",
        "e1000g1",
        "rge0",
        "2001:db8::10",
        "2001:db8:98::",
        "disable_ipv6",
    ] {
        assert!(
            state_text.contains(name),
            "state file lacks {name}:\n{state_text}"
        );
    }
}

#[test]
fn a_second_daemon_is_refused_by_the_lock_and_a_stale_pid_file_does_not_block() {
    let lab = Lab::new("pidlock");
    let other = strings(&[
        "--group",
        "other0",
        "--interface",
        "ipmpa0",
        "--data",
        "192.0.2.210/24",
        "--member",
        "e1000g0",
    ]);
    let a = start(&lab, &other, "ipmpa0", "192.0.2.210");
    // A stale pid file naming a live process (an ipmpd, even) blocks nothing:
    // only the lock counts.
    let stale = run_dir(&lab).join("production0.pid");
    std::fs::write(&stale, format!("{}\n", a.pid())).unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
    let prod = strings(&[
        "--group",
        "production0",
        "--interface",
        "ipmp0",
        "--data",
        "192.0.2.200/24",
        "--member",
        "e1000g1",
    ]);
    let b = start(&lab, &prod, "ipmp0", DATA);
    // A second daemon for the group: refused, naming the pid holding the lock.
    let before = host_snapshot(&lab);
    let again = strings(&[
        "--group",
        "production0",
        "--interface",
        "ipmpc0",
        "--data",
        "192.0.2.220/24",
        "--member",
        "rge0",
    ]);
    let (code, err) = run_once(&lab, &again, REFUSAL_TIMEOUT);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("already managed") && err.contains(&format!("pid {}", b.pid())),
        "{err}"
    );
    assert_eq!(before, host_snapshot(&lab), "a refused start changed the host");
    drop(b);
    drop(a);
}

/// Runs ipmpd with its run directory at `dir`, expecting a refusal that
/// names `expect` and changes nothing in the host namespace.
fn refused_with_run_dir(lab: &Lab, dir: &Path, expect: &[&str]) {
    let before = host_snapshot(lab);
    let mut argv = vec![format!("IPMPD_RUN_DIR={}", dir.display()), BIN.to_string()];
    argv.extend(tutorial_args());
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut p = lab.spawn("host", "env", &refs);
    let st = p.wait_timeout(REFUSAL_TIMEOUT).expect("refused promptly");
    let err = p.stderr_text();
    assert_eq!(st.code(), Some(2), "{}: {err}", dir.display());
    for e in expect {
        assert!(err.contains(e), "message lacks {e:?}:\n{err}");
    }
    assert_eq!(before, host_snapshot(lab), "a refused start changed the host");
}

#[test]
fn unsafe_run_directories_and_paths_are_refused_by_name() {
    let lab = Lab::new("rundir");
    let base = lab.dir.clone();
    let chmod =
        |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();

    let real = base.join("real");
    std::fs::create_dir(&real).unwrap();
    chmod(&real, 0o755);
    let link = base.join("linked");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    refused_with_run_dir(&lab, &link, &[&link.display().to_string(), "symbolic link"]);

    let foreign = base.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    chmod(&foreign, 0o755);
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    refused_with_run_dir(
        &lab,
        &foreign,
        &[&foreign.display().to_string(), "owned by uid 65534"],
    );

    let open = base.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    refused_with_run_dir(&lab, &open, &[&open.display().to_string(), "writable"]);

    // Inside a good run directory: a symlinked socket, pid or state path,
    // and someone else's socket file, are refused and left alone.
    let target = base.join("target");
    std::fs::write(&target, "keep").unwrap();
    for name in ["production0.sock", "production0.pid", "production0.state"] {
        let p = real.join(name);
        std::os::unix::fs::symlink(&target, &p).unwrap();
        refused_with_run_dir(&lab, &real, &[&p.display().to_string(), "symbolic link"]);
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        std::fs::remove_file(&p).unwrap();
    }
    let sock = real.join("production0.sock");
    std::fs::write(&sock, "").unwrap();
    std::os::unix::fs::chown(&sock, Some(65534), Some(65534)).unwrap();
    refused_with_run_dir(&lab, &real, &[&sock.display().to_string(), "not a socket"]);
    assert!(sock.exists(), "someone else's file is not removed");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

    // A corrupt state file is refused too, never taken for "nothing to restore".
    std::fs::remove_file(&sock).unwrap();
    let state = real.join("production0.state");
    std::fs::write(&state, "{\"version\": 1, \"group\": ").unwrap();
    chmod(&state, 0o600);
    refused_with_run_dir(&lab, &real, &[&state.display().to_string(), "not valid"]);
    std::fs::remove_file(&state).unwrap();

    // The same directory, clean, is accepted.
    let mut argv = vec![format!("IPMPD_RUN_DIR={}", real.display()), BIN.to_string()];
    argv.extend(tutorial_args());
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut p = lab.spawn("host", "env", &refs);
    assert!(
        wait_until(READY_TIMEOUT, || real.join("production0.sock").exists()
            || !p.running()),
        "{}",
        p.stderr_text()
    );
    assert!(p.running(), "{}", p.stderr_text());
    p.signal(libc::SIGTERM);
    assert!(p.wait_timeout(EXIT_TIMEOUT).is_some_and(|s| s.success()));
}

#[test]
fn a_member_that_joins_later_is_recorded_before_it_is_touched() {
    let lab = Lab::new("latejoin");
    // spare0 is made as tmpx0 (configured while no daemon can see it under
    // the member's name), then renamed: a member appearing while ipmpd runs.
    // It has been up once: the first up attaches the default qdisc, which
    // no later down undoes.
    let swa = lab.ns("swa");
    lab.sh_ok(
        "host",
        &format!(
            "ip link add tmpx0 type veth peer name spare1 netns {swa} \
             && ip link set tmpx0 mtu 1450 \
             && ip link set tmpx0 up && ip link set tmpx0 down \
             && sysctl -qw net.ipv6.conf.tmpx0.disable_ipv6=0 \
             && ip addr add 2001:db8:3::13/64 dev tmpx0 nodad"
        ),
    );
    lab.sh_ok("host", "ip link set tmpx0 name spare0");
    let before = host_snapshot(&lab);
    lab.sh_ok("host", "ip link set spare0 name tmpx0");
    let args = strings(&[
        "--group",
        "production0",
        "--interface",
        "ipmp0",
        "--data",
        "192.0.2.200/24",
        "--member",
        "e1000g0",
        "--optional-member",
        "spare0",
        "--force",
    ]);
    let state = run_dir(&lab).join("production0.state");
    let mut first = start(&lab, &args, "ipmp0", DATA);
    lab.sh_ok("host", "ip link set tmpx0 name spare0");
    // Taken means isolated and changed: the tcx program is attached and
    // IPv6 is off (the sysctl is written after the attach, so wait for both
    // before the kill; the record must already be on disk by then).
    assert!(
        wait_until(READY_TIMEOUT, || tcx_count(&lab, "host", "spare0") == 1
            && sysctl(&lab, "net.ipv6.conf.spare0.disable_ipv6") == "1"),
        "spare0 not taken:\n{}",
        first.stderr_text()
    );
    let recorded = std::fs::read_to_string(&state).unwrap_or_default();
    first.signal(libc::SIGKILL);
    assert!(first.wait_timeout(EXIT_TIMEOUT).is_some());

    let mut second = start(&lab, &args, "ipmp0", DATA);
    second.signal(libc::SIGTERM);
    assert!(second.wait_timeout(EXIT_TIMEOUT).is_some_and(|s| s.success()));
    assert_eq!(before, settled_snapshot(&lab, &before), "spare0 not given back");
    assert!(
        recorded.contains("spare0") && recorded.contains("2001:db8:3::13"),
        "{recorded}"
    );
}

#[test]
fn a_clean_stop_gives_back_the_ipv6_addresses_and_routes_disable_ipv6_deleted() {
    let lab = Lab::new("v6back");
    lab.sh_ok(
        "host",
        "sysctl -qw net.ipv6.conf.e1000g0.disable_ipv6=0 \
         && ip addr add 2001:db8::10/64 dev e1000g0 nodad \
         && ip addr add 2001:db8:5::10/64 dev e1000g0 nodad preferred_lft 0 \
         && ip -6 route add 2001:db8:99::/64 via 2001:db8::1 dev e1000g0 metric 50",
    );
    assert!(wait_until(DAD_TIMEOUT, || {
        !lab.sh_ok("host", "ip -6 addr show dev e1000g0")
            .contains("tentative")
    }));
    let before = host_snapshot(&lab);
    let mut args = tutorial_args();
    args.push("--force".into());
    let mut d = start(&lab, &args, "ipmp0", DATA);
    assert!(!lab
        .exec_ok("host", &["ip", "-o", "addr", "show", "dev", "e1000g0"])
        .contains("2001:db8::10"));
    d.signal(libc::SIGTERM);
    assert!(d.wait_timeout(EXIT_TIMEOUT).is_some_and(|s| s.success()));
    assert_eq!(before, settled_snapshot(&lab, &before));
}
