//! Teardown, the reverse of start-up, on every exit: a clean stop, an
//! error while running, or a start-up step failing half-way.

use super::Daemon;
use crate::datapath::plan::Plan;
use crate::datapath::shell::Table;
use std::net::IpAddr;

impl Drop for Daemon {
    /// Any exit, including a start-up step failing after the data plane
    /// started, runs the full teardown: nothing is left half-configured.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Daemon {
    /// Reverse of start-up: the outbound fast path detached, addresses off,
    /// carrier off, data plane stopped,
    /// sockets closed, members given back; the group interface goes away
    /// when the TAP (a later field) is dropped.
    pub(super) fn shutdown(&mut self) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        // First: the kernel stops sending frames out of members that are
        // about to be given back (tcx egress runs whatever the carrier).
        self.egress = None;
        if let Ok(addrs) = self.nl.addresses() {
            for a in addrs.iter().filter(|a| a.index == self.tap_index) {
                if let IpAddr::V4(v4) = a.addr {
                    let _ = self.nl.del_address(self.tap_index, v4, a.prefix_len);
                }
            }
        }
        let _ = self.tap.set_carrier(false);
        if let Some(dp) = self.dataplane.take() {
            drop(dp);
        }
        self.log_counters();
        // Close the packet sockets before the members are restored.
        self.shared.publish(Table {
            plan: Plan::empty(self.group_mac, self.seed),
            members: Vec::new(),
        });
        for (_, s) in self.slots.iter_mut() {
            drop(s.taken.take());
        }
    }
}
