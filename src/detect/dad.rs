//! Duplicate address detection of a member's IPv6 test address (RFC 4862
//! 5.4), sans-IO: the daemon holds the address, not the kernel, so it runs
//! DAD itself before the address is used (probes, answers to NS and ping6).
//! The caller sends the probes it is asked for and reports conflicts.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// DupAddrDetectTransmits: Linux's default (`dad_transmits` = 1).
pub const DAD_TRANSMITS: u32 = 1;
/// RetransTimer (RFC 4861 10: RETRANS_TIMER, 1 s): the wait after each
/// DAD probe before the next or before the address is assigned.
pub const DAD_RETRANS: Duration = Duration::from_secs(1);

/// Where the address stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DadState {
    /// Not started (the link is down).
    Idle,
    /// Probes still to send (`left`), the next one (or assignment) at `at`.
    Tentative { left: u32, at: Instant },
    /// Unique: the address may be used.
    Assigned,
    /// Another host has it: never used until the address changes.
    Duplicate,
}

/// What the caller must do after [`Dad::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DadOut {
    /// Send a DAD probe (NS from `::` to the solicited-node group).
    Probe(Ipv6Addr),
    /// The address passed DAD.
    Assigned(Ipv6Addr),
}

#[derive(Clone, Debug)]
pub struct Dad {
    addr: Ipv6Addr,
    state: DadState,
}

impl Dad {
    pub fn new(addr: Ipv6Addr) -> Dad {
        Dad {
            addr,
            state: DadState::Idle,
        }
    }
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }
    pub fn state(&self) -> DadState {
        self.state
    }
    pub fn assigned(&self) -> bool {
        self.state == DadState::Assigned
    }
    pub fn duplicate(&self) -> bool {
        self.state == DadState::Duplicate
    }

    /// (Re)starts DAD, first probe at once: the link came up. A duplicate
    /// stays one (RFC 4862 5.4.5: manual intervention or a new address).
    pub fn start(&mut self, now: Instant) {
        if self.state != DadState::Duplicate {
            self.state = DadState::Tentative {
                left: DAD_TRANSMITS,
                at: now,
            };
        }
    }

    /// The link went down: DAD runs again when it is back.
    pub fn stop(&mut self) {
        if self.state != DadState::Duplicate {
            self.state = DadState::Idle;
        }
    }

    /// The member's MAC changed, so its test address did: a fresh start
    /// (also after a duplicate). Returns whether the address changed.
    pub fn set_addr(&mut self, addr: Ipv6Addr) -> bool {
        if addr == self.addr {
            return false;
        }
        self.addr = addr;
        self.state = DadState::Idle;
        true
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            DadState::Tentative { at, .. } => Some(at),
            _ => None,
        }
    }

    pub fn poll(&mut self, now: Instant) -> Option<DadOut> {
        let DadState::Tentative { left, at } = self.state else {
            return None;
        };
        if now < at {
            return None;
        }
        if left == 0 {
            self.state = DadState::Assigned;
            return Some(DadOut::Assigned(self.addr));
        }
        self.state = DadState::Tentative {
            left: left - 1,
            at: now + DAD_RETRANS,
        };
        Some(DadOut::Probe(self.addr))
    }

    /// Another host claims the address (its NA, or its own DAD probe for
    /// it). Only a tentative address becomes a duplicate (RFC 4862 5.4.3,
    /// 5.4.4; Linux likewise ignores advertisements for an address it has
    /// assigned): once assigned the address is kept and defended, so a LAN
    /// host cannot switch IPv6 probing off with one forged advertisement.
    /// Returns true when this made the address a duplicate.
    pub fn conflict(&mut self) -> bool {
        if !matches!(self.state, DadState::Tentative { .. }) {
            return false;
        }
        self.state = DadState::Duplicate;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_then_assigned_after_the_retrans_timer() {
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut d = Dad::new(a);
        let t0 = Instant::now();
        assert_eq!(d.poll(t0), None, "idle until started");
        d.start(t0);
        assert_eq!(d.poll(t0), Some(DadOut::Probe(a)));
        assert_eq!(d.poll(t0 + DAD_RETRANS / 2), None);
        assert!(!d.assigned());
        assert_eq!(d.next_deadline(), Some(t0 + DAD_RETRANS));
        assert_eq!(d.poll(t0 + DAD_RETRANS), Some(DadOut::Assigned(a)));
        assert!(d.assigned());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_conflict_makes_a_duplicate_that_only_a_new_address_clears() {
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut d = Dad::new(a);
        let t0 = Instant::now();
        assert!(!d.conflict(), "not in use yet: nothing to conflict with");
        d.start(t0);
        d.poll(t0);
        d.poll(t0 + DAD_RETRANS);
        assert!(d.assigned());
        assert!(!d.conflict(), "an assigned address is kept (and defended)");
        assert!(d.assigned());
        d.stop();
        d.start(t0);
        d.poll(t0);
        assert!(d.conflict(), "a tentative one is a duplicate");
        assert!(d.duplicate());
        assert!(!d.conflict(), "reported once");
        d.stop();
        d.start(t0);
        assert!(d.duplicate(), "a link flap does not clear it");
        assert!(!d.set_addr(a));
        assert!(d.set_addr("fe80::2".parse().unwrap()));
        d.start(t0);
        assert_eq!(d.poll(t0), Some(DadOut::Probe("fe80::2".parse().unwrap())));
    }
}
