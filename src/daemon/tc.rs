//! Traffic control on the group interface. The outbound fast path's tcx
//! egress program runs before ipmp0's qdisc and its clsact egress filters,
//! so a frame it sends out of a member skips them. While an administrator
//! has traffic control on ipmp0 the fast path's table is all zero: every
//! frame goes through user space and so through ipmp0's qdisc as usual.
//!
//! "Traffic control" is anything other than the qdiscs ipmp0 had right
//! after start (the kernel's default for a TAP: `pfifo_fast`, `fq_codel`,
//! `noqueue`... per net.core.default_qdisc): another root qdisc kind or
//! handle, another child, or a clsact or ingress qdisc. An ingress-only
//! qdisc does not touch outbound frames, but it is treated like clsact
//! (which carries egress filters) for simplicity: both hang at
//! TC_H_INGRESS. Changes are learnt from RTM_NEWQDISC/RTM_DELQDISC events
//! (RTNLGRP_TC): a turn of the control loop that had any for ipmp0 ends
//! with one RTM_GETQDISC dump of ipmp0.

use super::Daemon;
use crate::netlink::{QdiscInfo, TC_H_INGRESS, TC_H_ROOT};

/// What names the configuration in the log when its qdiscs could not be read.
const UNREADABLE: &str = "qdiscs unreadable";

/// ipmp0's qdiscs as at start, and whether traffic control is on now.
#[derive(Debug, Default)]
pub(super) struct TcWatch {
    /// The qdiscs right after start, sorted; `None` if they could not be
    /// read (then the fast path steps aside for good: nothing to compare).
    baseline: Option<Vec<(String, u32, u32)>>,
    /// The qdisc kind that makes ipmp0 configured, while it is.
    configured: Option<String>,
    /// A qdisc event for ipmp0 came since the last read: one dump per
    /// turn of the control loop however many came (a script building an
    /// htb tree sends hundreds).
    changed: bool,
}

impl TcWatch {
    /// Traffic control is configured on the group interface: the fast
    /// path's table must be all zero.
    pub(super) fn configured(&self) -> bool {
        self.configured.is_some()
    }
}

/// (kind, parent, handle) of each qdisc, sorted: the kernel's dump order
/// is not part of what is compared.
fn shape(qdiscs: &[QdiscInfo]) -> Vec<(String, u32, u32)> {
    let mut v: Vec<(String, u32, u32)> = qdiscs
        .iter()
        .map(|q| (q.kind.clone(), q.parent, q.handle))
        .collect();
    v.sort();
    v
}

/// The kind of qdisc that makes `now` traffic control over `baseline` (the
/// qdiscs at start), or `None` when it is the same. A clsact or ingress
/// qdisc always counts; else a root qdisc that differs is named first, then
/// any other added one; "default" when one of the start's went away.
fn configured_kind(baseline: &[(String, u32, u32)], now: &[(String, u32, u32)]) -> Option<String> {
    if let Some((kind, _, _)) = now.iter().find(|(_, parent, _)| *parent == TC_H_INGRESS) {
        return Some(kind.clone());
    }
    if baseline == now {
        return None;
    }
    let added = |q: &&(String, u32, u32)| !baseline.contains(q);
    let root = now
        .iter()
        .filter(added)
        .find(|(_, parent, _)| *parent == TC_H_ROOT);
    let other = now.iter().find(added);
    Some(
        root.or(other)
            .map_or_else(|| "default".to_string(), |(k, _, _)| k.clone()),
    )
}

impl Daemon {
    /// Records the group interface's qdiscs as the kernel made them (called
    /// once ipmp0 is up: a down interface has none yet).
    pub(super) fn read_tc_baseline(&mut self) {
        match self.nl.qdiscs(self.tap_index) {
            Ok(q) => {
                let baseline = shape(&q);
                log::debug!("{}: qdiscs at start: {baseline:?}", self.cfg.interface);
                self.tc.configured = configured_kind(&baseline, &baseline);
                self.tc.baseline = Some(baseline);
            }
            Err(e) => {
                log::warn!(
                    "reading the qdiscs of {}: {e}; the outbound fast path steps aside for good",
                    self.cfg.interface
                );
                self.tc.configured = Some(UNREADABLE.to_string());
            }
        }
        if let Some(kind) = &self.tc.configured {
            self.log_configured(kind);
        }
    }

    fn log_configured(&self, kind: &str) {
        log::info!(
            "traffic control configured on {} ({kind}): outbound frames go through ipmpd so it applies",
            self.cfg.interface
        );
    }

    /// A qdisc of the group interface changed: read at the end of this
    /// turn's netlink events ([`Daemon::reread_qdiscs_if_changed`]).
    pub(super) fn note_qdisc_event(&mut self) {
        self.tc.changed = true;
    }

    /// Reads the qdiscs again if an event said they changed.
    pub(super) fn reread_qdiscs_if_changed(&mut self) {
        if self.tc.changed {
            self.reread_qdiscs();
        }
    }

    /// Reads the group interface's qdiscs again (after events, or after
    /// netlink lost some), switching the fast path's table on a change.
    pub(super) fn reread_qdiscs(&mut self) {
        self.tc.changed = false;
        let Some(baseline) = &self.tc.baseline else {
            return;
        };
        let configured = match self.nl.qdiscs(self.tap_index) {
            Ok(q) => configured_kind(baseline, &shape(&q)),
            Err(e) => {
                // Unreadable now: user space sends, which applies whatever is there.
                log::warn!("reading the qdiscs of {}: {e}", self.cfg.interface);
                Some(UNREADABLE.to_string())
            }
        };
        if configured.is_some() == self.tc.configured.is_some() {
            self.tc.configured = configured;
            return;
        }
        match &configured {
            Some(kind) => self.log_configured(kind),
            None => log::info!(
                "no traffic control on {} any more: outbound fast path resumed",
                self.cfg.interface
            ),
        }
        self.tc.configured = configured;
        self.resync_egress();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tcm_handle of `tc qdisc add ... handle 1:`.
    const HANDLE_1: u32 = 0x0001_0000;
    /// tcm_handle of clsact and ingress (ffff:).
    const HANDLE_INGRESS: u32 = 0xFFFF_0000;
    /// A child's parent: class 1:1.
    const CLASS_1_1: u32 = 0x0001_0001;

    fn q(kind: &str, parent: u32, handle: u32) -> QdiscInfo {
        QdiscInfo {
            index: 7,
            kind: kind.into(),
            parent,
            handle,
        }
    }

    fn kind(baseline: &[QdiscInfo], now: &[QdiscInfo]) -> Option<String> {
        configured_kind(&shape(baseline), &shape(now))
    }

    #[test]
    fn the_default_qdisc_of_start_is_no_configuration() {
        for default in ["pfifo_fast", "fq_codel", "noqueue", "fq"] {
            let start = [q(default, TC_H_ROOT, 0)];
            assert_eq!(kind(&start, &start), None, "{default}");
        }
        // Multi-queue: mq and one child per queue, in any dump order.
        let start = [q("mq", TC_H_ROOT, 0), q("fq_codel", 1, 0), q("fq_codel", 2, 0)];
        let reordered = [start[2].clone(), start[0].clone(), start[1].clone()];
        assert_eq!(kind(&start, &reordered), None);
        assert_eq!(kind(&[], &[]), None);
    }

    #[test]
    fn another_root_qdisc_is_configuration() {
        let start = [q("pfifo_fast", TC_H_ROOT, 0)];
        let tbf = [q("tbf", TC_H_ROOT, 0x8001_0000)];
        assert_eq!(kind(&start, &tbf).as_deref(), Some("tbf"));
        // The same kind, set by hand (a handle of its own).
        let again = [q("pfifo_fast", TC_H_ROOT, HANDLE_1)];
        assert_eq!(kind(&start, &again).as_deref(), Some("pfifo_fast"));
        // htb with a shaped child: the root is named.
        let htb = [q("htb", TC_H_ROOT, HANDLE_1), q("netem", CLASS_1_1, 0x0010_0000)];
        assert_eq!(kind(&start, &htb).as_deref(), Some("htb"));
        // The root deleted: the kernel puts its default back.
        assert_eq!(kind(&start, &start), None);
    }

    #[test]
    fn a_replaced_child_or_a_missing_one_is_configuration() {
        let start = [q("mq", TC_H_ROOT, 0), q("fq_codel", 1, 0), q("fq_codel", 2, 0)];
        let child = [q("mq", TC_H_ROOT, 0), q("tbf", 1, HANDLE_1), q("fq_codel", 2, 0)];
        assert_eq!(kind(&start, &child).as_deref(), Some("tbf"));
        let fewer = [q("mq", TC_H_ROOT, 0), q("fq_codel", 1, 0)];
        assert_eq!(kind(&start, &fewer).as_deref(), Some("default"));
    }

    #[test]
    fn clsact_or_ingress_is_configuration() {
        let start = [q("noqueue", TC_H_ROOT, 0)];
        for extra in ["clsact", "ingress"] {
            let now = [q("noqueue", TC_H_ROOT, 0), q(extra, TC_H_INGRESS, HANDLE_INGRESS)];
            assert_eq!(kind(&start, &now).as_deref(), Some(extra));
            // Even had it been there at start.
            assert_eq!(kind(&now, &now).as_deref(), Some(extra));
        }
    }
}
