//! Large TCP transfers through ipmp0 arrive intact whatever the members'
//! offloads: GSO super-frames cross the daemon whole (virtio-net headers on
//! the TAP and the packet sockets), so segmentation, checksums and GRO
//! happen wherever the members' features put them. Each case sets the
//! members' features (`ethtool -K`, in the host namespace) before the
//! tutorial's group starts, checks the kernel took them, then sends
//! 256 MiB each way, SHA-256 of what was sent against what was received.

mod common;

use common::daemon::*;
use common::xfer::transfer_intact;
use common::{Lab, MEMBERS, ROUTER_IP};

/// Each way: big enough for thousands of super-frames, small enough for the
/// debug daemon on a shared 2-core machine.
const TRANSFER_BYTES: u64 = 256 << 20;
/// Bound on each transfer, in seconds (`timeout`).
const TRANSFER_TIMEOUT_S: &str = "300";
const XFER_PORT: &str = "5203";

/// `ethtool -k` feature names and the state each case expects on every member.
type Features<'a> = &'a [(&'a str, &'a str)];

/// Applies `ethtool -K M ARGS` to every member, checks `expect` in
/// `ethtool -k M`, starts the tutorial group and transfers both ways.
fn transfers_intact_with(tag: &str, what: &str, args: &[&str], expect: Features) {
    let lab = Lab::new(tag);
    for m in MEMBERS {
        let mut cmd = vec!["ethtool", "-K", m];
        cmd.extend_from_slice(args);
        lab.exec_ok("host", &cmd);
        let shown = lab.exec_ok("host", &["ethtool", "-k", m]);
        for (feature, state) in expect {
            let line = format!("{feature}: {state}");
            assert!(
                shown.lines().any(|l| l.trim().starts_with(&line)),
                "{what}: {m} does not show {line:?}:\n{shown}"
            );
        }
    }
    let d = start_tutorial(&lab);
    // host -> router, then router -> host (to the data address); the bytes
    // cross ipmp0 (the stack's tx is what the daemon reads from the TAP).
    for (sender, receiver, at, counter) in [
        ("host", "router", ROUTER_IP, "tx_bytes"),
        ("router", "host", DATA, "rx_bytes"),
    ] {
        let before = ipmp0_bytes(&lab, counter);
        transfer_intact(
            &lab,
            what,
            (sender, receiver),
            (at, XFER_PORT),
            TRANSFER_BYTES,
            TRANSFER_TIMEOUT_S,
        );
        let crossed = ipmp0_bytes(&lab, counter) - before;
        assert!(
            crossed >= TRANSFER_BYTES,
            "{what}: {sender} -> {receiver}: only {crossed} bytes crossed ipmp0 ({counter})"
        );
    }
    drop(d);
}

/// A byte counter of ipmp0 in the host (`/sys/class/net/ipmp0/statistics`),
/// plus what the kernel's fast paths moved past the TAP: the kernel counts
/// no device statistics for a tcx redirect, the daemon counts those bytes
/// per member (into ipmp0 `rx_fast_bytes`, out of it `tx_fast_bytes`).
fn ipmp0_bytes(lab: &Lab, counter: &str) -> u64 {
    let path = format!("/sys/class/net/ipmp0/statistics/{counter}");
    let v = lab.exec_ok("host", &["cat", &path]);
    let dev: u64 = v.trim().parse().unwrap_or_else(|e| panic!("{path}: {v:?}: {e}"));
    let (_, j, _) = ipmpstat(lab, &["-i", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    let fast = |c: &ipmpd::control::Counters| match counter {
        "rx_bytes" => c.rx_fast_bytes,
        _ => c.tx_fast_bytes,
    };
    dev + groups[0].members.iter().map(|m| fast(&m.counters)).sum::<u64>()
}

#[test]
fn tcp_each_way_arrives_intact_with_offloads_on() {
    transfers_intact_with(
        "offon",
        "offloads on, GRO on",
        &["tso", "on", "gso", "on", "tx", "on", "gro", "on"],
        &[
            ("tcp-segmentation-offload", "on"),
            ("generic-segmentation-offload", "on"),
            ("tx-checksumming", "on"),
            ("generic-receive-offload", "on"),
        ],
    );
}

#[test]
fn tcp_each_way_arrives_intact_with_software_segmentation_and_checksums() {
    transfers_intact_with(
        "offsw",
        "tso, gso, tx checksums off",
        &["tso", "off", "gso", "off", "tx", "off"],
        &[
            ("tcp-segmentation-offload", "off"),
            ("generic-segmentation-offload", "off"),
            ("tx-checksumming", "off"),
        ],
    );
}

#[test]
fn tcp_each_way_arrives_intact_with_gro_off() {
    transfers_intact_with(
        "offgro",
        "GRO off",
        &["gro", "off"],
        &[("generic-receive-offload", "off")],
    );
}
