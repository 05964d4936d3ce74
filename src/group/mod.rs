//! The group state machine: member states and flags, which members are
//! active, which member each data address is bound to, and which member is
//! the multicast/broadcast nominee (in.mpathd's rules).
//!
//! Sans-IO: [`Group::handle`] takes an event and the current time and
//! returns actions, among them typed [`Notice`]s for the log (their texts
//! are rendered in `notice`); [`Group::next_deadline`] says when it wants a
//! [`Event::Tick`]. Nothing here reads a clock or touches a socket, so every
//! rule is unit-tested with synthetic time. This file applies events to the
//! members; `rules` chooses the active set from them.

pub mod admin;
mod bindings;
mod notice;
mod rules;

pub use bindings::Bindings;
pub use notice::{LeftBecause, Notice};

use crate::datapath::buckets::{Buckets, Slot};
use crate::detect::probe::ProbeState;
use crate::detect::FLAP_WINDOW;
use crate::wire::ethernet::Address as Mac;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

/// Slots a group can have: every slot number but the buckets' "none".
pub const MAX_MEMBERS: usize = crate::datapath::buckets::NO_SLOT as usize;

/// Group-wide policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// FAILBACK=yes: a repaired member becomes active again.
    pub failback: bool,
    /// Link-ups within [`FLAP_WINDOW`] before a repair is held; 0 disables.
    pub flap_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            failback: true,
            flap_limit: crate::detect::LINK_FLAP_LIMIT_DEFAULT,
        }
    }
}

/// The STATE column of `ipmpstat -i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Ok,
    Failed,
    Offline,
    Unknown,
}

/// The group's state: ok (all members usable), degraded (some), failed (none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Ok,
    Degraded,
    Failed,
}

/// What the group knows about one configured member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The interface exists and the daemon has taken it over.
    pub present: bool,
    /// Carrier (IFF_LOWER_UP).
    pub link_up: bool,
    /// OFFLINE: taken out of service by the administrator.
    pub offline: bool,
    /// STANDBY: used only when an active member fails.
    pub standby: bool,
    /// The prober's verdict; `Disabled` when the member is not probed.
    pub probe: ProbeState,
    /// Repair held by link flap damping.
    pub held: bool,
    /// INACTIVE: functioning, but not used (policy).
    pub inactive: bool,
    link_ups: VecDeque<Instant>,
    /// Left the active set by failing; FAILBACK decides what its repair does.
    fell: bool,
    /// Kept inactive by FAILBACK=no until a member must be replaced.
    kept_inactive: bool,
    /// Removed from the configuration (SIGHUP); the slot is free for the
    /// next member added.
    pub removed: bool,
    /// The member's hardware address, once taken over.
    pub mac: Option<Mac>,
    /// Flag h: out of service because another member in service already has
    /// its hardware address (both would receive the same frames).
    pub dup_hwaddr: bool,
    /// When the member last became eligible to claim its hardware address
    /// (joined, or brought back online): the later of two duplicates goes.
    claim_seq: u64,
}

impl Member {
    pub fn new(name: &str) -> Member {
        Member {
            name: name.to_string(),
            present: false,
            link_up: false,
            offline: false,
            standby: false,
            probe: ProbeState::Disabled,
            held: false,
            inactive: false,
            link_ups: VecDeque::new(),
            fell: false,
            kept_inactive: false,
            removed: false,
            mac: None,
            dup_hwaddr: false,
            claim_seq: 0,
        }
    }

    pub fn standby(mut self, on: bool) -> Member {
        self.standby = on;
        self
    }

    pub fn probing(mut self, on: bool) -> Member {
        self.probe = if on {
            ProbeState::Unknown
        } else {
            ProbeState::Disabled
        };
        self
    }

    /// FAILED: the daemon considers it not functioning.
    pub fn failed(&self) -> bool {
        !self.present || !self.link_up || self.probe == ProbeState::Failed || self.held
    }

    /// Functioning and not offline (by the administrator or for a
    /// duplicate hardware address).
    pub fn usable(&self) -> bool {
        !self.failed() && !self.offline && !self.dup_hwaddr
    }

    /// Out of service by the administrator or for a duplicate hardware
    /// address: its frames are not accepted either.
    pub fn out_of_service(&self) -> bool {
        self.offline || self.dup_hwaddr
    }

    pub fn state(&self) -> MemberState {
        if self.offline || self.dup_hwaddr {
            MemberState::Offline
        } else if self.failed() {
            MemberState::Failed
        } else if self.probe == ProbeState::Unknown {
            MemberState::Unknown
        } else {
            MemberState::Ok
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The member was taken over (at start or when it appeared later).
    Joined {
        slot: Slot,
        link_up: bool,
        /// The prober's state (`Disabled` when not probed): a member that
        /// comes back after failing must be repaired by probes again.
        probe: ProbeState,
        /// Its hardware address (None: unknown, never a duplicate).
        mac: Option<Mac>,
    },
    /// The member's hardware address changed.
    HwAddr {
        slot: Slot,
        mac: Option<Mac>,
    },
    /// The member's interface disappeared.
    Gone {
        slot: Slot,
    },
    Link {
        slot: Slot,
        up: bool,
    },
    /// The prober's verdict changed.
    Probe {
        slot: Slot,
        state: ProbeState,
    },
    Offline {
        slot: Slot,
        offline: bool,
    },
    Standby {
        slot: Slot,
        standby: bool,
    },
    /// The member was removed from the configuration.
    Removed {
        slot: Slot,
    },
    AddressAdded(IpAddr),
    AddressRemoved(IpAddr),
    /// The deadline from [`Group::next_deadline`] passed.
    Tick,
    /// Several changes decided together (a reload): the active set is
    /// chosen once, after all of them.
    Batch(Vec<Event>),
}

impl Event {
    /// The member an event is about, if it is about one.
    pub fn slot(&self) -> Option<Slot> {
        match *self {
            Event::Joined { slot, .. }
            | Event::Gone { slot }
            | Event::Link { slot, .. }
            | Event::Probe { slot, .. }
            | Event::Offline { slot, .. }
            | Event::Standby { slot, .. }
            | Event::Removed { slot }
            | Event::HwAddr { slot, .. } => Some(slot),
            Event::AddressAdded(_) | Event::AddressRemoved(_) | Event::Tick | Event::Batch(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The forwarding state changed: publish a new table.
    Publish,
    /// After the new table is taken up: gratuitous ARP (IPv4) or unsolicited
    /// neighbour advertisement (IPv6) for `addr` from `slot`.
    Announce { addr: IpAddr, slot: Slot },
    /// Carrier of the group interface: on while any member forwards.
    Carrier(bool),
    /// Multicast reception moves: drop the old nominee's membership, join on
    /// the new one and make the kernel re-send its reports through it.
    NomineeMoved { from: Option<Slot>, to: Option<Slot> },
    /// Something to tell the operator (the shell logs it).
    Notice(Notice),
}

#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    policy: Policy,
    members: Vec<Member>,
    /// Members carrying traffic, in activation order; the head becomes nominee.
    active: Vec<Slot>,
    buckets: Buckets,
    bindings: Bindings,
    nominee: Option<Slot>,
    state: GroupState,
    /// Every member failed by probes while links are up: forwarding goes on
    /// over the last active set (the targets, not the paths, likely died).
    blackhole: bool,
    /// An AllFailed was reported and no Usable since: only then is a member
    /// becoming usable a recovery worth a warning. A group starts in
    /// [`GroupState::Failed`] before its first member joins; that start is
    /// routine and not logged (in.mpathd logs neither at start either).
    unusable_reported: bool,
    /// Members that left the active set by failing.
    failovers: u64,
    /// Orders members' claims to their hardware addresses.
    claims: u64,
}

impl Group {
    /// A group of `members` in slots 0, 1, ...; at most [`MAX_MEMBERS`]
    /// (configuration validation refuses more; any beyond are left out).
    pub fn new(name: &str, policy: Policy, mut members: Vec<Member>) -> Group {
        members.truncate(MAX_MEMBERS);
        Group {
            name: name.to_string(),
            policy,
            members,
            active: Vec::new(),
            buckets: Buckets::default(),
            bindings: Bindings::default(),
            nominee: None,
            state: GroupState::Failed,
            blackhole: false,
            unusable_reported: false,
            failovers: 0,
            claims: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn policy(&self) -> Policy {
        self.policy
    }
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    pub fn active(&self) -> &[Slot] {
        &self.active
    }
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }
    pub fn nominee(&self) -> Option<Slot> {
        self.nominee
    }
    pub fn state(&self) -> GroupState {
        self.state
    }
    /// Whether forwarding continues only because every member failed by
    /// probes with its link up (probers then repair on one answer).
    pub fn blackhole(&self) -> bool {
        self.blackhole
    }
    pub fn failovers(&self) -> u64 {
        self.failovers
    }
    pub fn slot_of(&self, name: &str) -> Option<Slot> {
        self.members
            .iter()
            .position(|m| m.name == name && !m.removed)
            .map(|i| i as Slot)
    }

    /// A member added to the configuration (SIGHUP); it joins when taken
    /// over. It takes the slot of a removed member when there is one (no
    /// bucket, binding or nominee refers to a removed member), else a new
    /// slot; `None` when the group already has [`MAX_MEMBERS`] slots.
    pub fn add_member(&mut self, m: Member) -> Option<Slot> {
        if let Some(i) = self.members.iter().position(|o| o.removed) {
            debug_assert!(!self.active.contains(&(i as Slot)));
            self.members[i] = m;
            return Some(i as Slot);
        }
        if self.members.len() >= MAX_MEMBERS {
            return None;
        }
        self.members.push(m);
        Some((self.members.len() - 1) as Slot)
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// When a held repair may be released (flap damping).
    pub fn next_deadline(&self) -> Option<Instant> {
        let limit = self.policy.flap_limit as usize;
        self.members
            .iter()
            .filter(|m| m.held && m.link_ups.len() > limit)
            .map(|m| m.link_ups[m.link_ups.len() - limit - 1] + FLAP_WINDOW)
            .min()
    }

    pub fn handle(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.apply(ev, now, &mut out) {
            self.reconcile(&mut out);
        }
        out
    }

    /// Applies one event's state change; true when the active set must be
    /// chosen again. An event naming a slot the group does not have is
    /// ignored (the shell never sends one; a bug there must not panic).
    fn apply(&mut self, ev: Event, now: Instant, out: &mut Vec<Action>) -> bool {
        if ev.slot().is_some_and(|s| usize::from(s) >= self.members.len()) {
            return false;
        }
        let group = self.name.clone();
        let limit = self.policy.flap_limit;
        match ev {
            Event::Joined {
                slot,
                link_up,
                probe,
                mac,
            } => {
                self.claims += 1;
                let m = &mut self.members[usize::from(slot)];
                m.present = true;
                m.link_up = link_up;
                m.probe = probe;
                m.mac = mac;
                m.claim_seq = self.claims;
                notice(
                    out,
                    Notice::Joined {
                        member: m.name.clone(),
                        group,
                        link_up,
                    },
                );
            }
            Event::Gone { slot } => {
                let m = &mut self.members[usize::from(slot)];
                m.present = false;
                m.link_up = false;
                notice(
                    out,
                    Notice::Gone {
                        member: m.name.clone(),
                        group,
                    },
                );
            }
            Event::Link { slot, up } => {
                let m = &mut self.members[usize::from(slot)];
                if m.link_up == up {
                    return false;
                }
                m.link_up = up;
                if up {
                    notice(
                        out,
                        Notice::LinkUp {
                            member: m.name.clone(),
                        },
                    );
                    m.link_ups.push_back(now);
                    while m
                        .link_ups
                        .front()
                        .is_some_and(|t| now.saturating_duration_since(*t) >= FLAP_WINDOW)
                    {
                        m.link_ups.pop_front();
                    }
                    if limit > 0 && m.link_ups.len() > limit as usize && !m.held {
                        m.held = true;
                        notice(
                            out,
                            Notice::LinkFlapping {
                                member: m.name.clone(),
                                limit,
                            },
                        );
                    }
                } else {
                    notice(
                        out,
                        Notice::LinkDown {
                            member: m.name.clone(),
                        },
                    );
                    // With probing, a member is repaired only when the link
                    // is up and the probes agree again.
                    if m.probe != ProbeState::Disabled {
                        m.probe = ProbeState::Failed;
                    }
                }
            }
            Event::Probe { slot, state } => {
                let m = &mut self.members[usize::from(slot)];
                let old = std::mem::replace(&mut m.probe, state);
                if m.link_up && old != ProbeState::Failed && state == ProbeState::Failed {
                    notice(
                        out,
                        Notice::FailureDetected {
                            member: m.name.clone(),
                            group: group.clone(),
                        },
                    );
                }
                if m.link_up && old == ProbeState::Failed && state == ProbeState::Ok {
                    notice(
                        out,
                        Notice::RepairDetected {
                            member: m.name.clone(),
                            group,
                        },
                    );
                }
            }
            Event::Offline { slot, offline } => {
                self.claims += 1;
                let m = &mut self.members[usize::from(slot)];
                if m.offline && !offline {
                    // Back online: it claims its address after those in service.
                    m.claim_seq = self.claims;
                }
                m.offline = offline;
            }
            Event::HwAddr { slot, mac } => {
                self.claims += 1;
                let m = &mut self.members[usize::from(slot)];
                if m.mac != mac {
                    // A new address is claimed after those already in use.
                    m.mac = mac;
                    m.claim_seq = self.claims;
                }
            }
            Event::Standby { slot, standby } => self.members[usize::from(slot)].standby = standby,
            Event::Removed { slot } => {
                let m = &mut self.members[usize::from(slot)];
                m.removed = true;
                m.present = false;
                m.link_up = false;
                notice(
                    out,
                    Notice::Removed {
                        member: m.name.clone(),
                        group,
                    },
                );
            }
            Event::AddressAdded(a) => {
                if let Some(slot) = self.bindings.add(a, &self.active) {
                    out.push(Action::Publish);
                    out.push(Action::Announce { addr: a, slot });
                } else if self.bindings.contains(a) {
                    out.push(Action::Publish);
                }
                return false;
            }
            Event::AddressRemoved(a) => {
                if self.bindings.remove(a) {
                    out.push(Action::Publish);
                }
                return false;
            }
            Event::Batch(events) => {
                // One decision for the lot: nobody's flows move for a state
                // that only existed half-way through (a reload).
                let mut any = false;
                for e in events {
                    any |= self.apply(e, now, out);
                }
                return any;
            }
            Event::Tick => {
                for m in &mut self.members {
                    while m
                        .link_ups
                        .front()
                        .is_some_and(|t| now.saturating_duration_since(*t) >= FLAP_WINDOW)
                    {
                        m.link_ups.pop_front();
                    }
                    if m.held && m.link_ups.len() <= limit as usize {
                        m.held = false;
                        if m.link_up {
                            notice(
                                out,
                                Notice::LinkStabilized {
                                    member: m.name.clone(),
                                },
                            );
                        }
                    }
                }
            }
        }
        true
    }
}

fn notice(out: &mut Vec<Action>, n: Notice) {
    out.push(Action::Notice(n));
}

#[cfg(test)]
mod tests;
