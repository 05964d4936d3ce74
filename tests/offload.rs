//! Large TCP transfers through ipmp0 arrive intact whatever the members'
//! offloads: GSO super-frames cross the daemon whole (virtio-net headers on
//! the TAP and the packet sockets), so segmentation, checksums and GRO
//! happen wherever the members' features put them. Each case sets the
//! members' features (`ethtool -K`, in the host namespace) before the
//! tutorial's group starts, checks the kernel took them, then sends
//! 256 MiB each way, SHA-256 of what was sent against what was received.
//! Outbound, the host's bytes leave by ipmp0's tcx program (the outbound
//! fast path) unless a case turns it off, so the user-space path is one
//! case of its own.

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
/// `ethtool -k M`, starts the tutorial group (with `daemon_args` more) and
/// transfers both ways. `outbound_fast`: whether the outbound fast path is
/// on, so the host's bytes must leave in the kernel (or must not).
fn transfers_intact_with(
    tag: &str,
    what: &str,
    args: &[&str],
    expect: Features,
    daemon_args: &[&str],
    outbound_fast: bool,
) {
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
    let mut daemon = tutorial_args();
    daemon.extend(strings(daemon_args));
    let d = start(&lab, &daemon, "ipmp0", DATA);
    // host -> router, then router -> host (to the data address); the bytes
    // cross ipmp0 (the stack's tx is what the daemon reads from the TAP, or
    // what the outbound fast path sends).
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
        let after = ipmp0_bytes(&lab, counter);
        let crossed = (after.0 + after.1) - (before.0 + before.1);
        assert!(
            crossed >= TRANSFER_BYTES,
            "{what}: {sender} -> {receiver}: only {crossed} bytes crossed ipmp0 ({counter})"
        );
        if counter == "tx_bytes" {
            let fast = after.1 - before.1;
            if outbound_fast {
                assert!(
                    fast >= TRANSFER_BYTES,
                    "{what}: the outbound fast path sent only {fast} bytes"
                );
            } else {
                assert_eq!(fast, 0, "{what}: the outbound fast path sent bytes");
            }
        }
    }
    drop(d);
}

/// A byte counter of ipmp0 in the host (`/sys/class/net/ipmp0/statistics`)
/// and what the fast path of that direction moved past it: the kernel
/// counts no device statistics for a tcx redirect (the members' inbound
/// programs into ipmp0, ipmp0's outbound one out of a member), the daemon
/// counts those bytes per member (`rx_fast_bytes`, `tx_fast_bytes`).
fn ipmp0_bytes(lab: &Lab, counter: &str) -> (u64, u64) {
    let path = format!("/sys/class/net/ipmp0/statistics/{counter}");
    let v = lab.exec_ok("host", &["cat", &path]);
    let dev: u64 = v.trim().parse().unwrap_or_else(|e| panic!("{path}: {v:?}: {e}"));
    let fast = member_counters(lab)
        .values()
        .map(|c| match counter {
            "rx_bytes" => c.rx_fast_bytes,
            _ => c.tx_fast_bytes,
        })
        .sum::<u64>();
    (dev, fast)
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
        &[],
        true,
    );
}

#[test]
fn tcp_each_way_arrives_intact_with_offloads_on_and_the_outbound_fast_path_off() {
    transfers_intact_with(
        "offuser",
        "offloads on, GRO on, outbound through ipmpd",
        &["tso", "on", "gso", "on", "tx", "on", "gro", "on"],
        &[
            ("tcp-segmentation-offload", "on"),
            ("generic-segmentation-offload", "on"),
            ("tx-checksumming", "on"),
            ("generic-receive-offload", "on"),
        ],
        &["--outbound-fastpath", "off"],
        false,
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
        &[],
        true,
    );
}

#[test]
fn tcp_each_way_arrives_intact_with_gro_off() {
    transfers_intact_with(
        "offgro",
        "GRO off",
        &["gro", "off"],
        &[("generic-receive-offload", "off")],
        &[],
        true,
    );
}
