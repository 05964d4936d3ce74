//! The group state machine: member states and flags, which members are
//! active, which member each data address is bound to, and which member is
//! the multicast/broadcast nominee (in.mpathd's rules).
//!
//! Sans-IO: [`Group::handle`] takes an event and the current time and
//! returns actions (including the log lines); [`Group::next_deadline`] says
//! when it wants a [`Event::Tick`]. Nothing here reads a clock or touches a
//! socket, so every rule is unit-tested with synthetic time.

pub mod admin;
mod bindings;

pub use bindings::Bindings;

use crate::datapath::buckets::{Buckets, Slot};
use crate::datapath::frame::Mac;
use crate::detect::probe::ProbeState;
use crate::detect::FLAP_WINDOW;
use log::Level;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
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
    AddressAdded(Ipv4Addr),
    AddressRemoved(Ipv4Addr),
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
    /// After the new table is taken up: gratuitous ARP for `addr` from `slot`.
    Announce {
        addr: Ipv4Addr,
        slot: Slot,
    },
    /// Carrier of the group interface: on while any member forwards.
    Carrier(bool),
    /// Multicast reception moves: drop the old nominee's membership, join on
    /// the new one and make the kernel re-send its reports through it.
    NomineeMoved {
        from: Option<Slot>,
        to: Option<Slot>,
    },
    Log(Level, String),
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
                log(
                    out,
                    Level::Info,
                    format!("{} joined group {group} (link {})", m.name, updown(link_up)),
                );
            }
            Event::Gone { slot } => {
                let m = &mut self.members[usize::from(slot)];
                m.present = false;
                m.link_up = false;
                log(
                    out,
                    Level::Warn,
                    format!(
                        "{} was removed from the system; it rejoins group {group} when it comes back",
                        m.name
                    ),
                );
            }
            Event::Link { slot, up } => {
                let m = &mut self.members[usize::from(slot)];
                if m.link_up == up {
                    return false;
                }
                m.link_up = up;
                if up {
                    log(out, Level::Info, format!("The link has come up on {}", m.name));
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
                        log(
                            out,
                            Level::Warn,
                            format!(
                                "The link has come up on {} more than {limit} times in the last minute; disabling repair until it stabilizes",
                                m.name
                            ),
                        );
                    }
                } else {
                    log(out, Level::Warn, format!("The link has gone down on {}", m.name));
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
                    log(
                        out,
                        Level::Error,
                        format!("IP interface failure detected on {} of group {group}", m.name),
                    );
                }
                if m.link_up && old == ProbeState::Failed && state == ProbeState::Ok {
                    log(
                        out,
                        Level::Info,
                        format!("IP interface repair detected on {} of group {group}", m.name),
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
                log(
                    out,
                    Level::Info,
                    format!("{} was removed from group {group}", m.name),
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
                            log(
                                out,
                                Level::Info,
                                format!("The link on {} has stabilized; repair enabled", m.name),
                            );
                        }
                    }
                }
            }
        }
        true
    }

    /// Chooses the active set by in.mpathd's policy, then brings buckets,
    /// bindings, nominee and carrier in line with it.
    fn reconcile(&mut self, out: &mut Vec<Action>) {
        self.check_hwaddrs(out);
        // Usability does not change while the active set is chosen.
        let ok: Vec<bool> = self.members.iter().map(Member::usable).collect();
        let usable = |s: Slot| ok[usize::from(s)];
        let n = self.members.len();
        let slots = || (0..n).map(|i| i as Slot);
        // As many active members as there are non-standby members.
        let target = self
            .members
            .iter()
            .filter(|m| !m.standby && !m.removed)
            .count()
            .max(1);
        let was_failed = self.state == GroupState::Failed;
        let prev: Vec<Slot> = if self.blackhole {
            Vec::new()
        } else {
            self.active.clone()
        };
        let mut active: Vec<Slot> = prev.iter().copied().filter(|&s| usable(s)).collect();
        // Members that failed out of the active set may be replaced by
        // members FAILBACK=no keeps inactive.
        let mut replace_budget = prev.len() - active.len();
        // Taken offline is not failing: an administrator's online makes it
        // active again whatever FAILBACK says.
        for &s in prev.iter().filter(|&&s| !usable(s)) {
            let m = &mut self.members[usize::from(s)];
            m.fell = m.failed();
        }
        for s in slots() {
            let m = &mut self.members[usize::from(s)];
            if !m.usable() || m.standby || active.contains(&s) || m.kept_inactive {
                continue;
            }
            if m.fell && !self.policy.failback && !was_failed {
                // FAILBACK=no: the repaired member stays inactive (flag i).
                m.kept_inactive = true;
            } else {
                active.push(s);
            }
            m.fell = false;
        }
        if was_failed {
            // After a total failure every member that works is used.
            for s in slots() {
                let m = &mut self.members[usize::from(s)];
                if m.kept_inactive && m.usable() && !active.contains(&s) {
                    m.kept_inactive = false;
                    active.push(s);
                }
            }
        }
        // Too many: standbys go back first (last deployed first).
        while active.len() > target {
            match active.iter().rposition(|&s| self.members[usize::from(s)].standby) {
                Some(i) => {
                    active.remove(i);
                }
                None => break,
            }
        }
        // Too few: deploy standbys, then members kept inactive, these only
        // in place of members that failed.
        while active.len() < target {
            let next = slots()
                .filter(|&s| {
                    let m = &self.members[usize::from(s)];
                    m.usable()
                        && !active.contains(&s)
                        && (m.standby || (m.kept_inactive && replace_budget > 0))
                })
                .min_by_key(|&s| !self.members[usize::from(s)].standby);
            let Some(s) = next else { break };
            let m = &mut self.members[usize::from(s)];
            if !m.standby {
                m.kept_inactive = false;
                replace_budget -= 1;
            }
            active.push(s);
        }
        for s in slots() {
            let m = &mut self.members[usize::from(s)];
            m.inactive = m.usable() && !active.contains(&s);
        }

        let usable_count = slots().filter(|&s| usable(s)).count();
        let configured = self.members.iter().filter(|m| !m.removed).count();
        let state = match usable_count {
            0 => GroupState::Failed,
            u if u == configured => GroupState::Ok,
            _ => GroupState::Degraded,
        };
        // No member passes its probes but some still have their link: keep
        // forwarding over them rather than black-holing the whole host.
        let mut blackhole = false;
        if active.is_empty() {
            let alive = |s: Slot| {
                let m = &self.members[usize::from(s)];
                m.present && m.link_up && !m.out_of_service() && !m.held
            };
            active = self.active.iter().copied().filter(|&s| alive(s)).collect();
            if active.is_empty() {
                active = slots().filter(|&s| alive(s)).take(target).collect();
            }
            blackhole = !active.is_empty();
        }
        if state != self.state {
            if state == GroupState::Failed {
                log(
                    out,
                    Level::Error,
                    format!("All IP interfaces in group {} are now unusable", self.name),
                );
                if blackhole {
                    log(
                        out,
                        Level::Warn,
                        format!(
                            "Every member of group {} fails its probes while its link is up; forwarding continues on the last active members until a probe is answered",
                            self.name
                        ),
                    );
                }
            } else if self.state == GroupState::Failed {
                let first = slots()
                    .find(|&s| usable(s))
                    .map(|s| self.members[usize::from(s)].name.clone());
                log(
                    out,
                    Level::Info,
                    format!(
                        "At least 1 IP interface ({}) in group {} is now usable",
                        first.unwrap_or_default(),
                        self.name
                    ),
                );
            }
            self.state = state;
        }
        self.blackhole = blackhole;
        if active == self.active {
            return;
        }
        let was_empty = self.active.is_empty();
        // A member deployed in place of one that left takes over exactly its
        // buckets (standby for failed member, repaired member for standby).
        let left: Vec<Slot> = self
            .active
            .iter()
            .copied()
            .filter(|s| !active.contains(s))
            .collect();
        let joined: Vec<Slot> = active
            .iter()
            .copied()
            .filter(|s| !self.active.contains(s))
            .collect();
        let replacements: Vec<(Slot, Slot)> = left.iter().copied().zip(joined.iter().copied()).collect();
        for &j in &joined {
            log(
                out,
                Level::Info,
                format!(
                    "{} is now active in group {}",
                    self.members[usize::from(j)].name,
                    self.name
                ),
            );
        }
        for &l in &left {
            let m = &self.members[usize::from(l)];
            if m.failed() {
                self.failovers += 1;
            }
            let why = if m.out_of_service() {
                "offline"
            } else if m.failed() {
                "failed"
            } else if m.standby {
                "standby"
            } else {
                "inactive"
            };
            log(
                out,
                Level::Info,
                format!("{} is no longer active in group {} ({why})", m.name, self.name),
            );
        }
        self.active = active;
        self.buckets.rebalance(&self.active, &replacements);
        out.push(Action::Publish);
        for (addr, slot) in self.bindings.rebalance(&self.active) {
            out.push(Action::Announce { addr, slot });
        }
        let nominee = match self.nominee {
            Some(n) if self.active.contains(&n) => Some(n),
            _ => self.active.first().copied(),
        };
        if nominee != self.nominee {
            out.push(Action::NomineeMoved {
                from: self.nominee,
                to: nominee,
            });
            self.nominee = nominee;
        }
        if was_empty != self.active.is_empty() {
            out.push(Action::Carrier(!self.active.is_empty()));
        }
    }
}

impl Group {
    /// Flag h: of members in service with the same hardware address, the
    /// one that claimed it first keeps it; the others are taken out of
    /// service until their address changes or the first one leaves.
    fn check_hwaddrs(&mut self, out: &mut Vec<Action>) {
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        // Members already in service keep their claim over newcomers.
        order.sort_by_key(|&i| (self.members[i].dup_hwaddr, self.members[i].claim_seq));
        let mut claimed: Vec<(Mac, usize)> = Vec::new();
        for i in order {
            let m = &self.members[i];
            let eligible = m.present && !m.offline && !m.removed;
            let holder = match (eligible, m.mac) {
                (true, Some(mac)) => match claimed.iter().find(|(c, _)| *c == mac) {
                    Some(&(_, h)) => Some(h),
                    None => {
                        claimed.push((mac, i));
                        None
                    }
                },
                _ => None,
            };
            let dup = holder.is_some();
            if dup == m.dup_hwaddr {
                continue;
            }
            let msg = match holder {
                Some(h) => format!(
                    "{} has the same hardware address as {} in group {}; {} is offline until its hardware address changes",
                    m.name, self.members[h].name, self.name, m.name
                ),
                None => format!(
                    "{} of group {} no longer has a duplicate hardware address; it is back in service",
                    m.name, self.name
                ),
            };
            log(out, if dup { Level::Error } else { Level::Info }, msg);
            self.members[i].dup_hwaddr = dup;
        }
    }
}

fn log(out: &mut Vec<Action>, level: Level, msg: String) {
    out.push(Action::Log(level, msg));
}

fn updown(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

#[cfg(test)]
mod tests;
