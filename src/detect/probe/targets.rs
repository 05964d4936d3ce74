//! A prober's targets: what is known about each (pinned MAC, RTT, whether
//! it is retired), the list's upkeep (configured, refreshed, discovered by
//! an echo to the all-hosts group), and the retirement of a target that
//! alone stopped answering.

use super::{Method, Notice, Out, Prober, Status, TargetSource};
use crate::detect::rtt::Rtt;
use crate::detect::{MAX_PROBE_TARGETS, NUM_PROBE_FAILS, TARGET_RETRY};
use crate::wire::ethernet::Address as Mac;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The all-hosts group (RFC 1112) and its MAC, for target discovery.
pub const ALL_HOSTS: Ipv4Addr = crate::wire::ipv4::ALL_HOSTS;
pub const ALL_HOSTS_MAC: Mac = crate::wire::ethernet::ipv4_multicast(ALL_HOSTS);
/// IPv6's: the all-nodes group (ff02::1; Linux answers echo to it by default).
pub const ALL_NODES: Ipv6Addr = crate::wire::ipv6::ALL_NODES;

/// The group a discovery echo goes to, and its MAC, for the family of `test_addr`.
pub fn discovery_group(test_addr: IpAddr) -> (IpAddr, Mac) {
    match test_addr {
        IpAddr::V4(_) => (IpAddr::V4(ALL_HOSTS), ALL_HOSTS_MAC),
        IpAddr::V6(_) => (IpAddr::V6(ALL_NODES), crate::wire::ipv6::multicast_mac(ALL_NODES)),
    }
}

#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) addr: IpAddr,
    /// The pinned MAC, while in force: answers from any other are ignored.
    /// None while (re-)resolving.
    pub(super) mac: Option<Mac>,
    /// The MAC it last answered from (kept while re-resolving, to log a change).
    pub(super) known: Option<Mac>,
    /// When it last acknowledged a probe.
    pub(super) answered: Option<Instant>,
    /// A rejected answer was logged since the last accepted one.
    pub(super) warned: bool,
    pub(super) rtt: Rtt,
    pub(super) dead_until: Option<Instant>,
}

impl Target {
    pub(super) fn new(addr: IpAddr) -> Target {
        Target {
            addr,
            mac: None,
            known: None,
            answered: None,
            warned: false,
            rtt: Rtt::default(),
            dead_until: None,
        }
    }
}

impl Prober {
    /// The MAC `target` answers from on this member, if it answered within
    /// the last FDT: what other members hold a re-resolution against.
    pub fn answering_mac(&self, target: IpAddr, now: Instant) -> Option<Mac> {
        let t = self.targets.iter().find(|t| t.addr == target)?;
        let recent = t
            .answered
            .is_some_and(|a| now.saturating_duration_since(a) <= self.fdt);
        t.mac.filter(|_| recent)
    }

    /// The MAC `target` is pinned to on this member, if it is.
    pub fn target_mac(&self, target: IpAddr) -> Option<Mac> {
        self.targets.iter().find(|t| t.addr == target)?.mac
    }

    /// Targets in firing order, dead ones left out.
    pub fn targets(&self) -> Vec<IpAddr> {
        self.targets
            .iter()
            .filter(|t| t.dead_until.is_none())
            .map(|t| t.addr)
            .collect()
    }

    /// Mean smoothed RTT over the targets that have answered.
    pub fn rtt(&self) -> Option<Duration> {
        let s: Vec<Duration> = self.targets.iter().filter_map(|t| t.rtt.srtt()).collect();
        (!s.is_empty()).then(|| s.iter().sum::<Duration>() / s.len() as u32)
    }

    /// Every target, dead ones included (the configured or discovered list).
    pub fn all_targets(&self) -> Vec<IpAddr> {
        self.targets.iter().map(|t| t.addr).collect()
    }

    /// Replaces the target list (at most [`MAX_PROBE_TARGETS`]), keeping
    /// what is known about targets that stay.
    pub fn set_targets(&mut self, addrs: &[IpAddr]) {
        let old = std::mem::take(&mut self.targets);
        for a in addrs.iter().take(MAX_PROBE_TARGETS) {
            let t = old
                .iter()
                .find(|t| t.addr == *a)
                .cloned()
                .unwrap_or_else(|| Target::new(*a));
            self.targets.push(t);
        }
        self.rr = 0;
    }

    /// Turns multicast target discovery on (with the addresses that must
    /// never become targets) or off. Only ICMP probing can discover.
    pub fn set_discovery(&mut self, own: Option<Vec<IpAddr>>) {
        self.discovery = own.filter(|_| matches!(self.method, Method::Icmp { .. }));
        self.discovery_seq = None;
    }

    /// Whether targets come from multicast discovery.
    pub fn discovering(&self) -> bool {
        self.discovery.is_some()
    }

    /// The target's MAC may have changed: after two probes to it lost in a
    /// row (echoes in ICMP mode, ARP requests in ARP mode) the pin is lifted
    /// and the next answer may come from another MAC.
    pub(super) fn unpin_after_two_losses(&mut self, i: usize) {
        let s = self.history[i];
        let icmp = matches!(self.method, Method::Icmp { .. });
        if icmp && s.arp {
            return; // a lost resolution: still resolving
        }
        let previous = self.history.iter().take(i).rev().find(|p| {
            p.arp == s.arp && p.target == s.target && matches!(p.status, Status::Acked | Status::Lost)
        });
        if previous.is_some_and(|p| p.status == Status::Lost) {
            if let Some(t) = self.targets.iter_mut().find(|t| t.addr == s.target) {
                t.mac = None;
            }
        }
    }

    pub(super) fn discovered(&mut self, from: IpAddr, out: &mut Vec<Out>) {
        let Some(own) = &self.discovery else { return };
        // IPv6 discovery asks ff02::1 from a link-local address: answers
        // come from link-local addresses.
        let not_link_local = matches!(from, IpAddr::V6(a) if !crate::wire::ipv6::is_link_local(&a));
        if own.contains(&from)
            || not_link_local
            || from.is_multicast()
            || from.is_unspecified()
            || self.targets.iter().any(|t| t.addr == from)
        {
            return;
        }
        if self.targets.len() >= MAX_PROBE_TARGETS {
            if !std::mem::replace(&mut self.discovery_capped, true) {
                out.push(Out::Notice(Notice::DiscoveryCapped {
                    member: self.member.clone(),
                    first_ignored: from,
                }));
            }
            return;
        }
        self.targets.push(Target::new(from));
        out.push(Out::Notice(Notice::Targets {
            member: self.member.clone(),
            group: self.group.clone(),
            source: TargetSource::Discovery,
            targets: self.targets.iter().map(|t| t.addr).collect(),
        }));
    }

    /// A target whose own last [`NUM_PROBE_FAILS`] probes were all lost
    /// while another target answered more recently died, not the member:
    /// it is retired for [`TARGET_RETRY`] and its losses no longer count.
    pub(super) fn retire_dead_target(&mut self, now: Instant, out: &mut Vec<Out>) -> bool {
        let alive: Vec<IpAddr> = self.targets().into_iter().collect();
        if alive.len() < 2 {
            return false;
        }
        let victim = alive.into_iter().find(|&t| {
            let mine: Vec<(usize, Status)> = self
                .history
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, s)| s.target == t && matches!(s.status, Status::Acked | Status::Lost))
                .map(|(i, s)| (i, s.status))
                .take(NUM_PROBE_FAILS)
                .collect();
            if mine.len() < NUM_PROBE_FAILS || mine.iter().any(|(_, st)| *st != Status::Lost) {
                return false;
            }
            let oldest_loss = mine[NUM_PROBE_FAILS - 1].0;
            self.history
                .iter()
                .skip(oldest_loss)
                .any(|s| s.target != t && s.status == Status::Acked)
        });
        let Some(victim) = victim else { return false };
        for s in self.history.iter_mut() {
            if s.target == victim && s.status == Status::Lost {
                s.status = Status::Discounted;
            }
        }
        if self.discovery.is_some() {
            // A host target is dropped and rediscovered, not retried.
            self.targets.retain(|t| t.addr != victim);
        } else if let Some(t) = self.targets.iter_mut().find(|t| t.addr == victim) {
            t.dead_until = Some(now + TARGET_RETRY);
            t.mac = None;
        }
        out.push(Out::Notice(Notice::TargetDead {
            target: victim,
            member: self.member.clone(),
        }));
        true
    }
}
