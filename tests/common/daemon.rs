//! Running the real `ipmpd` binary inside a lab and reading kernel state
//! the tests compare against.

use super::{wait_until, Lab, Proc};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_ipmpd");
pub const IPMPSTAT: &str = env!("CARGO_BIN_EXE_ipmpstat");
pub const DATA: &str = "192.0.2.200";
/// How long a daemon may take to become ready (its data address appears).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an address may take to come up (an IPv6 one past DAD).
pub const ADDR_UP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a reload may take to be logged.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until `ipmpstat -a` shows `addr` up; fails with what it shows.
pub fn wait_addr_up(lab: &Lab, d: &Proc, addr: &str) {
    let up = wait_until(ADDR_UP_TIMEOUT, || {
        ipmpstat(lab, &["-a"])
            .1
            .lines()
            .any(|l| l.starts_with(addr) && l.contains(" up "))
    });
    assert!(up, "{}\n{}", ipmpstat(lab, &["-a"]).1, d.stderr_text());
}

/// Waits until the daemon logged its Nth reload.
pub fn reloads(d: &Proc, n: usize) -> bool {
    wait_until(RELOAD_TIMEOUT, || {
        d.stderr_text()
            .matches("configuration of group production0 reloaded")
            .count()
            >= n
    })
}

/// The tutorial's group: three members, one data address.
pub fn tutorial_args() -> Vec<String> {
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
        "--member",
        "rge0",
    ])
}

/// The tutorial's members and no data address: a group whose addresses
/// come from the LAN (DHCP, SLAAC).
pub fn members_only_args() -> Vec<String> {
    let mut v = strings(&["--group", "production0", "--interface", "ipmp0"]);
    for m in super::MEMBERS {
        v.extend(strings(&["--member", m]));
    }
    v
}

/// The member `ipmpstat -a` shows `addr` bound to (INBOUND), if any.
pub fn bound_member(lab: &Lab, addr: &str) -> Option<String> {
    let (_, out, _) = ipmpstat(lab, &["-a"]);
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.first() == Some(&addr) && w.len() > 3 && super::MEMBERS.contains(&w[3])).then(|| w[3].to_string())
    })
}

/// The addresses `ip -o addr show dev IFNAME ARGS...` lists in the host
/// (ARGS: "-4", or "-6" with "scope global", ...), without their prefix.
pub fn addrs_on(lab: &Lab, ifname: &str, family: &str, args: &[&str]) -> Vec<String> {
    let mut cmd = vec!["ip", family, "-o", "addr", "show", "dev", ifname];
    cmd.extend_from_slice(args);
    let out = lab.exec_ok("host", &cmd);
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet" || *x == "inet6")?;
            Some(w.next()?.split('/').next()?.to_string())
        })
        .collect()
}

/// Whether `ipmpstat -a` lists `addr` at all.
pub fn listed(lab: &Lab, addr: &str) -> bool {
    let (_, out, _) = ipmpstat(lab, &["-a"]);
    out.lines().any(|l| l.split_whitespace().next() == Some(addr))
}

/// Owned copies of command-line words.
pub fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// A per-lab run directory, so parallel tests never share pid files.
pub fn run_dir(lab: &Lab) -> PathBuf {
    lab.dir.join("run")
}

fn env_args(lab: &Lab, args: &[String]) -> Vec<String> {
    let mut v = vec![
        format!("IPMPD_RUN_DIR={}", run_dir(lab).display()),
        "RUST_LOG=debug".to_string(),
        // IPMPD_BIN runs another build (scripts/bench-flood.sh: the release one).
        std::env::var("IPMPD_BIN").unwrap_or_else(|_| BIN.to_string()),
    ];
    v.extend(args.iter().cloned());
    v
}

/// Starts ipmpd in the host namespace and waits until `ready_addr` is on
/// `interface` (a data address on the group interface means ready).
pub fn start(lab: &Lab, args: &[String], interface: &str, ready_addr: &str) -> Proc {
    let full = env_args(lab, args);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    let mut p = lab.spawn("host", "env", &refs);
    let ready = wait_until(READY_TIMEOUT, || {
        if !p.running() {
            return true;
        }
        let out = lab.exec("host", &["ip", "-4", "-o", "addr", "show", "dev", interface]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("inet {ready_addr}/"))
    });
    assert!(
        ready && p.running(),
        "ipmpd did not become ready:\n{}",
        p.stderr_text()
    );
    p
}

/// Starts the tutorial group.
pub fn start_tutorial(lab: &Lab) -> Proc {
    start(lab, &tutorial_args(), "ipmp0", DATA)
}

/// Runs ipmpd to completion (for refusals); bounded by `timeout`.
pub fn run_once(lab: &Lab, args: &[String], timeout: Duration) -> (Option<i32>, String) {
    let full = env_args(lab, args);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    let mut p = lab.spawn("host", "env", &refs);
    let st = p.wait_timeout(timeout);
    let code = st.and_then(|s| s.code());
    (code, p.stderr_text())
}

/// Number of tcx ingress programs on `ifname` in the lab namespace `which`,
/// read with the daemon's own query inside that namespace.
pub fn tcx_count(lab: &Lab, which: &str, ifname: &str) -> u32 {
    let ns = lab.ns(which);
    let ifname = ifname.to_string();
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("open netns");
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {ns}");
        let c = std::ffi::CString::new(ifname.clone()).unwrap();
        // SAFETY: c is NUL-terminated.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert_ne!(idx, 0, "{ifname} not found in {ns}");
        ipmpd::sys::bpf::tcx_ingress_count(idx).expect("tcx query")
    })
    .join()
    .expect("tcx query thread")
}

/// Everything about the host namespace a daemon could change: links (with
/// flags, MTU, MAC, master), addresses, routes of all tables, member sysctls
/// and tcx programs. Two equal snapshots mean "left as it was".
pub fn host_snapshot(lab: &Lab) -> String {
    let mut s = String::new();
    for cmd in [
        "ip -d -o link show | sed -E 's/ (qlen|numtxqueues|numrxqueues|gso_max_size|gso_max_segs|tso_max_size|tso_max_segs|gro_max_size|gso_ipv4_max_size|gro_ipv4_max_size) [0-9]+//g'",
        "ip -o addr show",
        "ip route show table all",
        "for i in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo $i $(cat $i); done",
    ] {
        let out: Output = lab.sh("host", cmd);
        s.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for m in super::MEMBERS {
        s.push_str(&format!("tcx {m} {}\n", tcx_count(lab, "host", m)));
    }
    s
}

/// Reads one counter from /proc/net/snmp in a namespace, e.g. ("Icmp", "InEchoReps").
pub fn snmp(lab: &Lab, which: &str, proto: &str, field: &str) -> u64 {
    let out = lab.exec_ok(which, &["cat", "/proc/net/snmp"]);
    let mut lines = out.lines().filter(|l| l.starts_with(&format!("{proto}:")));
    let names: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let values: Vec<&str> = lines.next().expect("values").split_whitespace().collect();
    let i = names.iter().position(|n| *n == field).expect("field");
    values[i].parse().expect("number")
}

/// The host snapshot once it equals `expected`, or after 5 s the last one:
/// the kernel may release a closed bpf_link from a workqueue, a moment after
/// the daemon exited.
pub fn settled_snapshot(lab: &Lab, expected: &str) -> String {
    let mut last = host_snapshot(lab);
    wait_until(Duration::from_secs(5), || {
        last = host_snapshot(lab);
        last == expected
    });
    last
}

/// Runs ipmpstat against the lab's daemons: (exit status, stdout, stderr).
pub fn ipmpstat(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(IPMPSTAT)
        .args(args)
        .env("IPMPD_RUN_DIR", run_dir(lab))
        .output()
        .expect("run ipmpstat");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The group's status (`ipmpstat -i --json`, the lab's one group).
pub fn group_status(lab: &Lab) -> ipmpd::control::GroupStatus {
    let (_, j, _) = ipmpstat(lab, &["-i", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    groups.into_iter().next().expect("one group")
}

/// Each member's counters, by name.
pub fn member_counters(lab: &Lab) -> std::collections::BTreeMap<String, ipmpd::control::Counters> {
    group_status(lab)
        .members
        .into_iter()
        .map(|m| (m.name, m.counters))
        .collect()
}

/// Starts ipmpd in the host namespace with `NOTIFY_SOCKET` pointing at a
/// socket of the test, and waits for its `READY=1` (systemd's readiness):
/// for groups whose interface has no data address at start.
pub fn start_notified(lab: &Lab, args: &[String]) -> Proc {
    use std::os::unix::net::UnixDatagram;
    let path = lab.dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    sock.set_read_timeout(Some(READY_TIMEOUT))
        .expect("notify socket timeout");
    let mut full = vec![format!("NOTIFY_SOCKET={}", path.display())];
    full.extend(env_args(lab, args));
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    let mut p = lab.spawn("host", "env", &refs);
    let mut buf = [0u8; 256];
    let ready = loop {
        match sock.recv(&mut buf) {
            Ok(n) if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(
        ready && p.running(),
        "ipmpd did not report READY=1:\n{}",
        p.stderr_text()
    );
    p
}

/// Pings per burst of [`wait_path_settled`].
const SETTLE_BURST: u32 = 5;

/// Waits until a burst of pings from the host to `dst` is clean while the
/// daemon logs nothing new: the group has settled. A member that just
/// (re)appeared may lose its carrier once more as both veth ends come up,
/// fail and come back, and its new switch port forwards only once the
/// bridge has processed the carrier.
pub fn wait_path_settled(lab: &Lab, d: &Proc, dst: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let logged = d.stderr_text().len();
        lab.ping("host", dst, SETTLE_BURST).clean() && d.stderr_text().len() == logged
    })
}
