//! Prometheus text exposition of the groups' state and counters
//! (`ipmpstat --metrics`).

use super::{GroupState, GroupStatus, MemberState};
use std::fmt::Write;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render(groups: &[GroupStatus]) -> String {
    let mut o = String::new();
    family(
        &mut o,
        "ipmpd_group_state",
        "gauge",
        "1 for the group's current state (ok, degraded, failed).",
    );
    for g in groups {
        for &s in GroupState::ALL {
            let _ = writeln!(
                o,
                "ipmpd_group_state{{group=\"{}\",state=\"{s}\"}} {}",
                esc(&g.group),
                u8::from(g.state == s)
            );
        }
    }
    family(
        &mut o,
        "ipmpd_group_failovers_total",
        "counter",
        "Members that left the active set by failing.",
    );
    for g in groups {
        let _ = writeln!(
            o,
            "ipmpd_group_failovers_total{{group=\"{}\"}} {}",
            esc(&g.group),
            g.failovers
        );
    }
    family(
        &mut o,
        "ipmpd_member_active",
        "gauge",
        "1 when the member carries traffic.",
    );
    for g in groups {
        for m in &g.members {
            let _ = writeln!(
                o,
                "ipmpd_member_active{{group=\"{}\",interface=\"{}\"}} {}",
                esc(&g.group),
                esc(&m.name),
                u8::from(m.active)
            );
        }
    }
    family(
        &mut o,
        "ipmpd_member_state",
        "gauge",
        "1 for the member's current state (ok, failed, offline, unknown).",
    );
    for g in groups {
        for m in &g.members {
            for &s in MemberState::ALL {
                let _ = writeln!(
                    o,
                    "ipmpd_member_state{{group=\"{}\",interface=\"{}\",state=\"{s}\"}} {}",
                    esc(&g.group),
                    esc(&m.name),
                    u8::from(m.state == s)
                );
            }
        }
    }
    for (name, help, get) in [
        (
            "ipmpd_member_rx_frames_total",
            "Frames received on the member and passed on.",
            (|c: &super::Counters| c.rx_frames) as fn(&super::Counters) -> u64,
        ),
        (
            "ipmpd_member_rx_bytes_total",
            "Bytes received on the member and passed on.",
            |c| c.rx_bytes,
        ),
        (
            "ipmpd_member_rx_fast_frames_total",
            "Of the frames received and passed on: those the kernel's inbound fast path delivered.",
            |c| c.rx_fast_frames,
        ),
        (
            "ipmpd_member_rx_fast_bytes_total",
            "Of the bytes received and passed on: those the kernel's inbound fast path delivered.",
            |c| c.rx_fast_bytes,
        ),
        (
            "ipmpd_member_tx_frames_total",
            "Frames sent on the member.",
            |c| c.tx_frames,
        ),
        (
            "ipmpd_member_tx_fast_frames_total",
            "Of the frames sent: those the kernel's outbound fast path sent.",
            |c| c.tx_fast_frames,
        ),
        (
            "ipmpd_member_tx_fast_bytes_total",
            "Of the bytes sent: those the kernel's outbound fast path sent.",
            |c| c.tx_fast_bytes,
        ),
        ("ipmpd_member_tx_bytes_total", "Bytes sent on the member.", |c| {
            c.tx_bytes
        }),
    ] {
        family(&mut o, name, "counter", help);
        for g in groups {
            for m in &g.members {
                let _ = writeln!(
                    o,
                    "{name}{{group=\"{}\",interface=\"{}\"}} {}",
                    esc(&g.group),
                    esc(&m.name),
                    get(&m.counters)
                );
            }
        }
    }
    family(
        &mut o,
        "ipmpd_member_drops_total",
        "counter",
        "Frames dropped, by direction and reason.",
    );
    for g in groups {
        for m in &g.members {
            for (dir, drops) in [("rx", &m.counters.rx_drops), ("tx", &m.counters.tx_drops)] {
                for (reason, n) in drops {
                    let _ = writeln!(
                        o,
                        "ipmpd_member_drops_total{{group=\"{}\",interface=\"{}\",direction=\"{dir}\",reason=\"{}\"}} {n}",
                        esc(&g.group),
                        esc(&m.name),
                        esc(reason)
                    );
                }
            }
        }
    }
    family(
        &mut o,
        "ipmpd_member_probe_rtt_seconds",
        "gauge",
        "Smoothed probe round-trip time.",
    );
    for g in groups {
        for m in &g.members {
            if let Some(us) = m.rtt_us {
                let _ = writeln!(
                    o,
                    "ipmpd_member_probe_rtt_seconds{{group=\"{}\",interface=\"{}\"}} {}",
                    esc(&g.group),
                    esc(&m.name),
                    us as f64 / 1e6
                );
            }
        }
    }
    o
}
