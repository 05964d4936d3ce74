//! ipmpstat against a running daemon: the tutorial's states, as tables and
//! as JSON.

mod common;

use common::daemon::*;
use common::{wait_until, Lab};
use std::process::Command;
use std::time::Duration;

/// The fields of the row for `name` in an ipmpstat table.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn tutorial_states_as_ipmpstat_shows_them() {
    let lab = Lab::new("ipmpstat");
    let (code, _, err) = ipmpstat(&lab, &["-i"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot contact ipmpd -- is IPMP in use?"), "{err}");

    let a = strings(&[
        "--group",
        "production0",
        "--interface",
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
    let _d = start(&lab, &a, "production0", DATA);
    let (code, i, _) = ipmpstat(&lab, &["-i"]);
    assert_eq!(code, 0);
    assert_eq!(
        i.lines().next().unwrap(),
        "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE"
    );
    // IPv6 is on on the group interface: the nominee (m, b) is the IPv6
    // multicast nominee too (M).
    assert_eq!(
        row(&i, "e1000g0"),
        ["e1000g0", "yes", "production0", "--mbM--", "up", "disabled", "ok"]
    );
    assert_eq!(
        row(&i, "e1000g1"),
        ["e1000g1", "yes", "production0", "-------", "up", "disabled", "ok"]
    );
    assert_eq!(
        row(&i, "rge0"),
        ["rge0", "no", "production0", "is-----", "up", "disabled", "ok"]
    );
    let (_, g, _) = ipmpstat(&lab, &["-g"]);
    assert_eq!(
        row(&g, "production0"),
        [
            "production0",
            "production0",
            "ok",
            "--",
            "e1000g0",
            "e1000g1",
            "(rge0)"
        ]
    );

    // One member failed, the standby deployed.
    lab.cut("e1000g0");
    assert!(wait_until(Duration::from_secs(10), || ipmpstat(&lab, &["-g"])
        .1
        .contains("[e1000g0]")));
    let (_, i, _) = ipmpstat(&lab, &["-i"]);
    assert_eq!(
        row(&i, "e1000g0"),
        [
            "e1000g0",
            "no",
            "production0",
            "-------",
            "down",
            "disabled",
            "failed"
        ]
    );
    assert_eq!(
        row(&i, "e1000g1"),
        ["e1000g1", "yes", "production0", "--mbM--", "up", "disabled", "ok"]
    );
    assert_eq!(
        row(&i, "rge0"),
        ["rge0", "yes", "production0", "-s-----", "up", "disabled", "ok"]
    );
    let (_, g, _) = ipmpstat(&lab, &["-g"]);
    assert_eq!(
        row(&g, "production0"),
        [
            "production0",
            "production0",
            "degraded",
            "--",
            "e1000g1",
            "rge0",
            "[e1000g0]"
        ]
    );
    let (_, a, _) = ipmpstat(&lab, &["-a"]);
    let r = row(&a, "192.0.2.200");
    assert_eq!(&r[..3], ["192.0.2.200", "up", "production0"]);
    assert_eq!(&r[4..], ["e1000g1", "rge0"]);

    let (_, m, _) = ipmpstat(&lab, &["--metrics"]);
    assert!(
        m.contains("ipmpd_group_failovers_total{group=\"production0\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ipmpd_member_active{group=\"production0\",interface=\"rge0\"} 1"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l
                .starts_with("ipmpd_member_tx_frames_total{group=\"production0\",interface=\"e1000g1\"} "))
    );
    // -o selects fields, -P makes them parsable.
    let (_, p, _) = ipmpstat(&lab, &["-P", "-o", "interface,active,state", "-i"]);
    assert!(p.lines().any(|l| l == "e1000g0:no:failed"), "{p}");
    assert!(p.lines().any(|l| l == "rge0:yes:ok"), "{p}");
    // JSON parses back to the same data the table shows.
    let (_, j, _) = ipmpstat(&lab, &["-i", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    let rge0 = groups[0].members.iter().find(|m| m.name == "rge0").unwrap();
    assert_eq!(
        (rge0.active, rge0.flags.as_str(), rge0.state.as_str()),
        (true, "-s-----", "ok")
    );
    assert_eq!(groups[0].state, "degraded");
}

const IPMPADM: &str = env!("CARGO_BIN_EXE_ipmpadm");

fn ipmpadm(lab: &Lab, args: &[&str]) -> (i32, String) {
    let out = Command::new(IPMPADM)
        .args(args)
        .env("IPMPD_RUN_DIR", run_dir(lab))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ipmpadm_offline_online_with_the_original_refusals() {
    let lab = Lab::new("ipmpadm");
    let a = strings(&[
        "--group",
        "production0",
        "--interface",
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
    let _d = start(&lab, &a, "production0", DATA);
    assert_eq!(ipmpadm(&lab, &["offline", "e1000g1"]).0, 0);
    let (_, i, _) = ipmpstat(&lab, &["-i"]);
    assert_eq!(
        row(&i, "e1000g1"),
        [
            "e1000g1",
            "no",
            "production0",
            "-----d-",
            "up",
            "disabled",
            "offline"
        ]
    );
    assert_eq!(
        row(&i, "rge0")[1],
        "yes",
        "standby deployed for the offline member:\n{i}"
    );
    let (code, err) = ipmpadm(&lab, &["offline", "e1000g1"]);
    assert_eq!(code, 1);
    assert!(err.contains("e1000g1 is already offline"), "{err}");
    assert_eq!(ipmpadm(&lab, &["offline", "e1000g0"]).0, 0);
    let (code, err) = ipmpadm(&lab, &["offline", "rge0"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no other functioning interfaces are in its IPMP group"),
        "{err}"
    );
    let (code, err) = ipmpadm(&lab, &["offline", "nosuch0"]);
    assert_eq!(code, 1);
    assert!(err.contains("nosuch0 is not in an IPMP group"), "{err}");
    // Traffic still flows through the one member left.
    lab.ping("host", common::ROUTER_IP, 10).expect_clean();

    // A user other than root cannot change the group.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            IPMPADM,
            "online",
            "e1000g1",
        ])
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    assert_eq!(row(&ipmpstat(&lab, &["-i"]).1, "e1000g1")[6], "offline");

    assert_eq!(ipmpadm(&lab, &["online", "e1000g1"]).0, 0);
    assert_eq!(ipmpadm(&lab, &["online", "e1000g0"]).0, 0);
    let (code, err) = ipmpadm(&lab, &["online", "e1000g0"]);
    assert_eq!(code, 1);
    assert!(err.contains("e1000g0 is not offline"), "{err}");
    let (_, g, _) = ipmpstat(&lab, &["-g"]);
    assert_eq!(row(&g, "production0")[2], "ok", "{g}");
    let (_, i, _) = ipmpstat(&lab, &["-i"]);
    assert_eq!(row(&i, "rge0")[1], "no", "standby back to standby:\n{i}");
}

fn as_nobody(lab: &Lab, program: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .env("IPMPD_RUN_DIR", run_dir(lab))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_is_root_only_unless_the_admin_opens_it() {
    let lab = Lab::new("statusperm");
    let d = start_tutorial(&lab);
    let (code, _, err) = as_nobody(&lab, IPMPSTAT, &["-i"]);
    assert_eq!(code, 1, "{err}");
    drop(d);
    let mut a = tutorial_args();
    a.push("--status-readable-by-all".into());
    let _d = start(&lab, &a, "ipmp0", DATA);
    let (code, out, err) = as_nobody(&lab, IPMPSTAT, &["-i"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("e1000g0"), "{out}");
    // Reading is open; changing is not.
    let (code, _, err) = as_nobody(&lab, IPMPADM, &["offline", "e1000g0"]);
    assert_eq!(code, 1);
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn ipmpstat_p_streams_probe_results() {
    let lab = Lab::new("ipmpstatp");
    let a = {
        let mut a = tutorial_args();
        a.extend(strings(&[
            "--probe",
            "arp",
            "--target",
            common::ROUTER_IP,
            "--fdt",
            "700ms",
        ]));
        a
    };
    let _d = start(&lab, &a, "ipmp0", DATA);
    let out_path = lab.dir.join("ipmpstat-p.out");
    let mut child = Command::new(IPMPSTAT)
        .arg("-p")
        .env("IPMPD_RUN_DIR", run_dir(&lab))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || text().lines().count() > 10),
        "{}",
        text()
    );
    lab.cut("cable4");
    // Lost probes show with empty RTT fields.
    let lost = |t: &str| {
        t.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 7 && (f[1] == "e1000g0" || f[1] == "e1000g1") && f[3] == "--" && f[6] == "192.0.2.1"
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || lost(&text())),
        "{}",
        text()
    );
    lab.restore("cable4");
    let _ = child.kill();
    let _ = child.wait();
    let t = text();
    assert!(
        t.starts_with("TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET"),
        "{t}"
    );
    assert!(
        t.lines()
            .skip(1)
            .any(|l| l.contains("rge0") && l.contains("ms") && l.ends_with("192.0.2.1")),
        "{t}"
    );
}

#[test]
fn ipmpstat_p_without_probing_says_so() {
    let lab = Lab::new("ipmpstatp0");
    let _d = start_tutorial(&lab);
    let (code, _, err) = ipmpstat(&lab, &["-p"]);
    assert_eq!(code, 1);
    assert!(err.contains("probe-based failure detection is disabled"), "{err}");
}

#[test]
fn failback_no_and_targets_as_ipmpstat_shows_them() {
    let lab = Lab::new("ipmpstatfb");
    let a = strings(&[
        "--group",
        "production0",
        "--interface",
        "production0",
        "--data",
        "192.0.2.200/24",
        "--member",
        "e1000g0",
        "--member",
        "e1000g1",
        "--member",
        "rge0",
        "--failback",
        "no",
        "--probe",
        "arp",
        "--target",
        common::ROUTER_IP,
        "--fdt",
        "700ms",
    ]);
    let _d = start(&lab, &a, "production0", DATA);
    let (_, t, _) = ipmpstat(&lab, &["-t"]);
    assert_eq!(
        t.lines().next().unwrap(),
        "INTERFACE   MODE      TESTADDR              TARGETS"
    );
    assert_eq!(row(&t, "e1000g0"), ["e1000g0", "routes", "--", "192.0.2.1"]);
    let (_, g, _) = ipmpstat(&lab, &["-g"]);
    assert_eq!(row(&g, "production0")[3], "0.70s");
    // Fail and repair e1000g0: with FAILBACK=no it comes back inactive.
    lab.cut("e1000g0");
    assert!(wait_until(Duration::from_secs(10), || row(
        &ipmpstat(&lab, &["-i"]).1,
        "e1000g0"
    )[6] == "failed"));
    lab.restore("e1000g0");
    assert!(
        wait_until(Duration::from_secs(10), || row(
            &ipmpstat(&lab, &["-i"]).1,
            "e1000g0"
        )[6] == "ok"),
        "{}",
        ipmpstat(&lab, &["-i"]).1
    );
    let (_, i, _) = ipmpstat(&lab, &["-i"]);
    assert_eq!(
        row(&i, "e1000g0"),
        ["e1000g0", "no", "production0", "i------", "up", "ok", "ok"]
    );
    let (_, g, _) = ipmpstat(&lab, &["-g"]);
    assert!(row(&g, "production0").contains(&"(e1000g0)".to_string()), "{g}");
}

#[test]
fn a_duplicate_hardware_address_takes_the_later_member_out_with_flag_h() {
    let lab = Lab::new("duphw");
    let d = start_tutorial(&lab);
    let fmt = common::fmt_mac;
    let own = lab.mac("host", "e1000g1");
    let first = lab.mac("host", "e1000g0");
    lab.exec_ok(
        "host",
        &["ip", "link", "set", "dev", "e1000g1", "address", &fmt(&first)],
    );
    let flags = |name: &str| row(&ipmpstat(&lab, &["-i"]).1, name);
    assert!(
        wait_until(Duration::from_secs(10), || flags("e1000g1")[3] == "------h"),
        "{:?}\n{}",
        flags("e1000g1"),
        d.stderr_text()
    );
    let r = flags("e1000g1");
    assert_eq!((r[1].as_str(), r[6].as_str()), ("no", "offline"), "{r:?}");
    assert_eq!(flags("e1000g0")[3].chars().nth(6), Some('-'));
    assert!(d
        .stderr_text()
        .contains("e1000g1 has the same hardware address as e1000g0 in group production0"));
    assert!(lab.ping("router", DATA, 3).received > 0);

    // A unique address again: back in service.
    lab.exec_ok(
        "host",
        &["ip", "link", "set", "dev", "e1000g1", "address", &fmt(&own)],
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = flags("e1000g1");
            r[3] == "-------" && r[1] == "yes" && r[6] == "ok"
        }),
        "{:?}\n{}",
        flags("e1000g1"),
        d.stderr_text()
    );
    assert!(d
        .stderr_text()
        .contains("e1000g1 of group production0 no longer has a duplicate hardware address"));
}

/// Flag M: the nominee takes the group's IPv6 multicast too while IPv6 is
/// on on the group interface (the daemon reads it when asked), in the
/// table and in --json; nobody has it while IPv6 is off.
#[test]
fn flag_m_marks_the_nominee_while_ipv6_is_on_on_the_group_interface() {
    let lab = Lab::new("flagm");
    let _d = start_tutorial(&lab);
    let set_ipv6 = |on: bool| {
        let key = "net.ipv6.conf.ipmp0.disable_ipv6";
        let v = if on { "0" } else { "1" };
        lab.exec_ok("host", &["sysctl", "-q", "-w", &format!("{key}={v}")]);
    };
    let flags = || -> Vec<(String, String)> {
        let (_, i, _) = ipmpstat(&lab, &["-i"]);
        ["e1000g0", "e1000g1", "rge0"]
            .iter()
            .map(|m| (m.to_string(), row(&i, m)[3].clone()))
            .collect()
    };
    let json_flags = || -> Vec<(String, String)> {
        let (_, j, _) = ipmpstat(&lab, &["-i", "--json"]);
        let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
        groups[0]
            .members
            .iter()
            .map(|m| (m.name.clone(), m.flags.clone()))
            .collect()
    };

    set_ipv6(false);
    let off = flags();
    assert!(
        off.iter().all(|(_, f)| f.len() == 7 && !f.contains('M')),
        "{off:?}"
    );
    let nominee: Vec<&String> = off
        .iter()
        .filter(|(_, f)| f.contains('m'))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(nominee.len(), 1, "one nominee: {off:?}");
    let nominee = nominee[0].clone();
    assert_eq!(off.iter().find(|(n, _)| *n == nominee).unwrap().1, "--mb---");

    set_ipv6(true);
    let on = flags();
    for (name, f) in &on {
        let want = if *name == nominee { "--mbM--" } else { "-------" };
        assert_eq!((name.as_str(), f.as_str()), (name.as_str(), want), "{on:?}");
    }
    let mut by_json = json_flags();
    by_json.sort();
    let mut by_table = on.clone();
    by_table.sort();
    assert_eq!(by_json, by_table, "--json carries the same flags");

    set_ipv6(false);
    assert!(flags().iter().all(|(_, f)| !f.contains('M')), "{:?}", flags());
}

/// Probe rows (parsable) before `limit` arrive, from `ipmpstat -p -P -o FIELDS`.
fn probe_rows(lab: &Lab, fields: &str, limit: usize) -> Vec<Vec<String>> {
    let out_path = lab.dir.join("ipmpstat-p-rtt.out");
    let mut child = Command::new(IPMPSTAT)
        .args(["-p", "-P", "-o", fields])
        .env("IPMPD_RUN_DIR", run_dir(lab))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let enough = wait_until(Duration::from_secs(20), || text().lines().count() >= limit);
    let _ = child.kill();
    let _ = child.wait();
    assert!(enough, "{}", text());
    text()
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Milliseconds as ipmpstat prints them ("0.25ms").
fn millis(s: &str) -> f64 {
    s.strip_suffix("ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not an RTT: {s:?}"))
}

#[test]
fn netrtt_is_never_more_than_rtt() {
    let lab = Lab::new("netrtt");
    let mut a = tutorial_args();
    a.extend(strings(&[
        "--probe",
        "arp",
        "--target",
        common::ROUTER_IP,
        "--fdt",
        "700ms",
    ]));
    let _d = start(&lab, &a, "ipmp0", DATA);
    // Three members, a probe each per 100 ms: 60 rows in about 2 s.
    const ROWS: usize = 60;
    let rows = probe_rows(&lab, "interface,netrtt,rtt,target", ROWS);
    let mut answered = 0;
    for r in &rows {
        assert_eq!(r.len(), 4, "{r:?}");
        if r[1].is_empty() && r[2].is_empty() {
            continue; // lost
        }
        let (net, rtt) = (millis(&r[1]), millis(&r[2]));
        assert!(net <= rtt, "NETRTT {net} ms > RTT {rtt} ms: {r:?}");
        answered += 1;
    }
    assert!(answered * 2 > rows.len(), "most probes answered: {rows:?}");
}

#[test]
fn json_alone_prints_every_group_whole() {
    let lab = Lab::new("jsonall");
    let a = strings(&[
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
    ]);
    let b = strings(&[
        "--group",
        "backup0",
        "--interface",
        "ipmp1",
        "--data",
        "192.0.2.201/24",
        "--member",
        "rge0",
    ]);
    let _da = start(&lab, &a, "ipmp0", DATA);
    let _db = start(&lab, &b, "ipmp1", "192.0.2.201");
    let (code, j, err) = ipmpstat(&lab, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["backup0", "production0"], "one group per daemon socket");
    let p = &groups[1];
    assert_eq!(p.interface, "ipmp0");
    let members: Vec<&str> = p.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, ["e1000g0", "e1000g1"]);
    assert_eq!(p.addresses.len(), 1);
    assert_eq!(p.addresses[0].address, DATA);
    assert!(p.addresses[0].inbound.is_some(), "{j}");
    assert_eq!(groups[0].members[0].name, "rge0");
    assert_eq!(groups[0].addresses[0].address, "192.0.2.201");
    // The same document every mode's --json prints (counters aside).
    let strip = |mut gs: Vec<ipmpd::control::GroupStatus>| {
        for g in &mut gs {
            for m in &mut g.members {
                m.counters = Default::default();
                m.rtt_us = None;
            }
        }
        gs
    };
    let (_, jg, _) = ipmpstat(&lab, &["--json", "-g"]);
    let by_mode: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&jg).unwrap();
    assert_eq!(strip(groups), strip(by_mode));
    // Without --json a mode is still required.
    let (code, _, err) = ipmpstat(&lab, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("one mode is required"), "{err}");
}
