//! Starting from a TOML group file, and checking files without starting.

mod common;

use common::daemon::*;
use common::Lab;
use std::process::Command;

fn check(file: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_sample_file_checks_and_a_broken_one_names_file_line_and_field() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/production0.toml");
    let (code, out, err) = check(&sample);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("configuration of group production0 is valid"),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("ipmpd-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken0.toml");
    std::fs::write(
        &bad,
        "interface = \"ipmp0\"\nfailback = \"maybe\"\n[[member]]\nname = \"e0\"\n",
    )
    .unwrap();
    let (code, _, err) = check(&bad);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken0.toml") && err.contains("line 2") && err.contains("failback"),
        "{err}"
    );
    std::fs::write(&bad, "[[member]]\nname = \"e0\"\n[[member]]\nname = \"e0\"\n").unwrap();
    let (code, _, err) = check(&bad);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken0.toml: line 4: member e0 is given twice"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_group_starts_from_its_file_and_flags_override_it() {
    let lab = Lab::new("cfgfile");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production0.toml"),
        "interface = \"production0\"\ndata = [\"192.0.2.200/24\"]\nfailback = \"no\"\n\
         [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n[[member]]\nname = \"rge0\"\nstandby = true\n\
         [[route]]\ndestination = \"198.51.100.0/24\"\ngateway = \"192.0.2.1\"\n",
    )
    .unwrap();
    let args = strings(&[
        "--group",
        "production0",
        "--config-dir",
        &dir.to_string_lossy(),
        "--interface",
        "ipmpx0",
    ]);
    // The flag overrides the file's interface name.
    let d = start(&lab, &args, "ipmpx0", DATA);
    let routes = lab.exec_ok("host", &["ip", "route", "show", "198.51.100.0/24"]);
    assert!(routes.contains("via 192.0.2.1 dev ipmpx0"), "{routes}");
    lab.ping("host", common::ROUTER_IP, 5).expect_clean();
    drop(d);
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        panic!("systemd-analyze is missing: scripts/deps.sh installs systemd");
    }
    // The unit names the installed path; verify it against the built binary.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/ipmpd@.service")).unwrap();
    let dir = std::env::temp_dir().join(format!("ipmpd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ipmpd@production0.service");
    std::fs::write(&path, unit.replace("/usr/sbin/ipmpd", BIN)).unwrap();
    // The unit names its man pages, which are installed only with the
    // package: do not look them up here (tests/package.rs renders them).
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sighup_adds_and_removes_members_under_a_running_tcp_transfer() {
    let lab = Lab::new("reload");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("production0.toml");
    let with = |members: &[&str]| {
        let mut t = String::from("data = [\"192.0.2.200/24\"]\n");
        for m in members {
            t.push_str(&format!("[[member]]\nname = \"{m}\"\n"));
        }
        std::fs::write(&file, t).unwrap();
    };
    with(&["e1000g0", "e1000g1"]);
    let d = start(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        DATA,
    );
    let mut server = lab.spawn("router", "iperf3", &["-s", "-1", "-B", common::ROUTER_IP]);
    assert!(common::wait_until(std::time::Duration::from_secs(5), || lab
        .sh("router", "ss -ltn | grep -q ':5201'")
        .status
        .success()));
    let mut client = lab.spawn(
        "host",
        "iperf3",
        &["-c", common::ROUTER_IP, "-t", "6", "-P", "4", "-b", "200M"],
    );
    std::thread::sleep(std::time::Duration::from_secs(1));

    with(&["e1000g0", "rge0"]);
    d.signal(libc::SIGHUP);
    let logged =
        |s: &str| common::wait_until(std::time::Duration::from_secs(10), || d.stderr_text().contains(s));
    assert!(
        logged("e1000g1 was removed from group production0"),
        "{}",
        d.stderr_text()
    );
    assert!(logged("rge0 joined group production0"), "{}", d.stderr_text());
    assert!(logged("configuration of group production0 reloaded"));
    assert!(common::wait_until(
        std::time::Duration::from_secs(5),
        || tcx_count(&lab, "host", "e1000g1") == 0
    ));
    assert_eq!(tcx_count(&lab, "host", "rge0"), 1);

    // A broken file is refused (here through ipmpadm reload); the running
    // configuration stays.
    std::fs::write(&file, "data = [\"192.0.2.300/24\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipmpadm"))
        .arg("reload")
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "ipmpadm reload reports the refusal");
    assert!(String::from_utf8_lossy(&out.stderr).contains("192.0.2.300/24"));
    assert!(
        logged("configuration not reloaded, the running one stays in force"),
        "{}",
        d.stderr_text()
    );
    assert!(logged("192.0.2.300/24"));
    assert_eq!(tcx_count(&lab, "host", "rge0"), 1);

    // A member removed earlier comes back, and a route appears.
    with(&["e1000g0", "rge0", "e1000g1"]);
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap()
            + "[[route]]\ndestination = \"198.51.100.0/24\"\ngateway = \"192.0.2.1\"\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(common::wait_until(std::time::Duration::from_secs(10), || d
        .stderr_text()
        .matches("e1000g1 joined group production0")
        .count()
        == 2));
    assert_eq!(tcx_count(&lab, "host", "e1000g1"), 1);
    assert!(common::wait_until(std::time::Duration::from_secs(5), || lab
        .exec_ok("host", &["ip", "route", "show", "198.51.100.0/24"])
        .contains("via 192.0.2.1 dev ipmp0")));

    let st = client
        .wait_timeout(std::time::Duration::from_secs(20))
        .expect("iperf3 finished");
    assert!(
        st.success(),
        "the transfer broke:\n{}\n{}",
        client.stdout_text(),
        client.stderr_text()
    );
    server.wait_timeout(std::time::Duration::from_secs(5));
    lab.ping("host", common::ROUTER_IP, 10).expect_clean();
}

#[test]
fn a_broken_group_file_refuses_the_start_and_changes_nothing() {
    let lab = Lab::new("cfgbad");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production0.toml"),
        "data = [\"192.0.2.200/24\"]\ngarp_count = \"two\"\n[[member]]\nname = \"e1000g0\"\n",
    )
    .unwrap();
    let before = host_snapshot(&lab);
    let (code, err) = run_once(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        std::time::Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("production0.toml") && err.contains("line 2") && err.contains("garp_count"),
        "{err}"
    );
    assert_eq!(before, host_snapshot(&lab));
}

/// Regression: with ICMP probing and test addresses, a reload that removed
/// a member other than the last misaligned the per-member tables and
/// `ipmpstat -t` panicked the daemon; and every member added by a reload
/// took a new slot until the group's slot table ran out.
#[test]
fn reloads_keep_status_rows_right_and_reuse_slots() {
    let lab = Lab::new("reloadslot");
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("production0.toml");
    let all = [
        ("e1000g0", "192.0.2.201"),
        ("e1000g1", "192.0.2.202"),
        ("rge0", "192.0.2.203"),
    ];
    let with = |members: &[(&str, &str)]| {
        let mut t = String::from(
            "data = [\"192.0.2.200/24\"]\nprobe = \"icmp\"\ntargets = [\"192.0.2.1\"]\nfailure_detection_time = \"2s\"\n",
        );
        for (m, ta) in members {
            t.push_str(&format!(
                "[[member]]\nname = \"{m}\"\ntest_address = \"{ta}/24\"\n"
            ));
        }
        std::fs::write(&file, t).unwrap();
    };
    let reload = || {
        let out = Command::new(env!("CARGO_BIN_EXE_ipmpadm"))
            .arg("reload")
            .env("IPMPD_RUN_DIR", run_dir(&lab))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ipmpadm reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ipmpstat = |mode: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ipmpstat"))
            .args(["-P", "-o", "interface,testaddr", mode])
            .env("IPMPD_RUN_DIR", run_dir(&lab))
            .output()
            .unwrap();
        assert!(out.status.success(), "ipmpstat {mode} failed");
        let mut rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        rows.sort();
        rows
    };
    let rows = |members: &[(&str, &str)]| {
        let mut v: Vec<String> = members.iter().map(|(m, ta)| format!("{m}:{ta}")).collect();
        v.sort();
        v
    };
    with(&all);
    let mut d = start(
        &lab,
        &strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]),
        "ipmp0",
        DATA,
    );
    assert_eq!(ipmpstat("-t"), rows(&all));

    // Remove the first member: every row still names its own test address.
    with(&all[1..]);
    reload();
    assert_eq!(ipmpstat("-t"), rows(&all[1..]));
    assert!(d.running(), "{}", d.stderr_text());

    // More additions than the group has slots: freed slots are reused.
    for _ in 0..130 {
        with(&all[..1]);
        reload();
        with(&all);
        reload();
    }
    assert_eq!(ipmpstat("-t"), rows(&all));
    assert!(d.running(), "{}", d.stderr_text());
    assert!(
        common::wait_until(std::time::Duration::from_secs(10), || lab
            .ping("router", DATA, 1)
            .received
            == 1),
        "the data address is reachable after the reloads"
    );
}

/// Addresses only the default route reaches: on the router's loopback.
const BEYOND4: &str = "203.0.113.1";
const BEYOND6: &str = "2001:db8:ff::1";
/// DAD of the IPv6 data address and its binding, on a busy machine.
const V6_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The default route of `family` ("-4", "-6") in the host namespace.
fn default_route(lab: &Lab, family: &str) -> String {
    lab.exec_ok("host", &["ip", family, "route", "show", "default"])
}

#[test]
fn default_routes_of_both_families_come_and_go_with_the_group_and_survive_failover() {
    let lab = Lab::new("cfgdefault");
    lab.sh_ok(
        "router",
        &format!(
            "sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 && ip link set lo up && \
             ip addr add {BEYOND4}/32 dev lo && ip addr add {BEYOND6}/128 dev lo"
        ),
    );
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production0.toml"),
        "data = [\"192.0.2.200/24\", \"2001:db8::200/64\"]\n\
         [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n[[member]]\nname = \"rge0\"\n\
         [[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"192.0.2.1\"\n\
         [[route]]\ndestination = \"::/0\"\ngateway = \"2001:db8::1\"\n",
    )
    .unwrap();
    assert_eq!(
        default_route(&lab, "-4").trim(),
        "",
        "the lab host starts without one"
    );
    assert_eq!(default_route(&lab, "-6").trim(), "");
    let args = strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]);
    let mut d = start(&lab, &args, "ipmp0", DATA);
    let r4 = default_route(&lab, "-4");
    assert!(r4.contains("default via 192.0.2.1 dev ipmp0"), "{r4}");
    let r6 = default_route(&lab, "-6");
    assert!(
        r6.contains("default via 2001:db8::1 dev ipmp0"),
        "{r6}\n{}",
        d.stderr_text()
    );
    let reach = |what: &str| {
        assert!(lab.ping("host", BEYOND4, 3).clean(), "{BEYOND4} {what}");
        let v6 = common::wait_until(V6_READY_TIMEOUT, || lab.ping("host", BEYOND6, 1).clean());
        assert!(v6, "{BEYOND6} {what}:\n{}", d.stderr_text());
    };
    reach("through the default route");
    // Failover: the member carrying the data address loses its cable.
    let bound = bound_member(&lab, DATA).expect("data address bound");
    lab.cut(&bound);
    assert!(
        common::wait_until(READY_TIMEOUT, || bound_member(&lab, DATA)
            .is_some_and(|m| m != bound)),
        "{DATA} did not move off {bound}"
    );
    assert!(default_route(&lab, "-4").contains("default via 192.0.2.1 dev ipmp0"));
    assert!(default_route(&lab, "-6").contains("default via 2001:db8::1 dev ipmp0"));
    reach(&format!("after {bound} failed"));
    let st = d.stop(std::time::Duration::from_secs(5));
    assert!(st.success(), "{st:?}");
    assert_eq!(default_route(&lab, "-4").trim(), "", "removed with the group");
    assert_eq!(default_route(&lab, "-6").trim(), "");
}

#[test]
fn a_second_default_route_or_an_unreachable_gateway_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ipmpd-defroute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let head = "data = [\"192.0.2.200/24\"]\n[[member]]\nname = \"e0\"\n";
    let cases = [
        (
            "[[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"198.51.100.1\"\n",
            "route 0.0.0.0/0 via 198.51.100.1: the gateway 198.51.100.1 is not reachable",
        ),
        (
            "[[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"192.0.2.1\"\n\
             [[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"192.0.2.2\"\n",
            "two default routes 0.0.0.0/0 via 192.0.2.1 and 0.0.0.0/0 via 192.0.2.2",
        ),
    ];
    for (routes, expect) in cases {
        let file = dir.join("g.toml");
        std::fs::write(&file, format!("{head}{routes}")).unwrap();
        let (code, _, err) = check(&file);
        assert_eq!(code, 2, "{routes}: {err}");
        assert!(err.contains(expect), "{routes}: {err}");
    }
    std::fs::write(
        dir.join("g.toml"),
        format!("{head}[[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"192.0.2.1\"\n"),
    )
    .unwrap();
    let (code, _, err) = check(&dir.join("g.toml"));
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The group's default route is added exclusively: a default route of the
/// same metric already on another interface makes the start fail (the
/// kernel's EEXIST, which `--check` cannot see), and the refusal names the
/// route and says what is in the way.
#[test]
fn an_existing_default_route_elsewhere_refuses_the_start_by_name() {
    let lab = Lab::new("cfgdefexist");
    lab.sh_ok(
        "host",
        "ip link add uplink9 type veth peer name uplink9p && \
         ip link set uplink9p up && ip link set uplink9 up && \
         ip addr add 198.51.100.2/24 dev uplink9 && \
         ip route add default via 198.51.100.1 dev uplink9",
    );
    let dir = lab.dir.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production0.toml"),
        "data = [\"192.0.2.200/24\"]\n\
         [[member]]\nname = \"e1000g0\"\n[[member]]\nname = \"e1000g1\"\n\
         [[route]]\ndestination = \"0.0.0.0/0\"\ngateway = \"192.0.2.1\"\n",
    )
    .unwrap();
    let args = strings(&["--group", "production0", "--config-dir", &dir.to_string_lossy()]);
    let (code, err) = run_once(&lab, &args, READY_TIMEOUT);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("route 0.0.0.0/0 via 192.0.2.1"), "{err}");
    assert!(err.contains("already"), "{err}");
    // The administrator's route is untouched, and the group is gone.
    let r4 = default_route(&lab, "-4");
    assert!(r4.contains("default via 198.51.100.1 dev uplink9"), "{r4}");
    let links = lab.exec_ok("host", &["ip", "-o", "link", "show"]);
    assert!(!links.contains("ipmp0"), "{links}");
}
