//! in.mpathd's rules for the active set: which members carry traffic
//! (FAILBACK, STANDBY, the active count), the group's state, the
//! last-resort forwarding when every member fails by probes, and flag h
//! (duplicate hardware addresses); then buckets, bindings, nominee and
//! carrier brought in line with the choice.

use super::{notice, Action, Group, GroupState, LeftBecause, Member, Notice};
use crate::datapath::buckets::Slot;
use crate::wire::ethernet::Address as Mac;

impl Group {
    /// Chooses the active set by in.mpathd's policy, then brings buckets,
    /// bindings, nominee and carrier in line with it.
    pub(super) fn reconcile(&mut self, out: &mut Vec<Action>) {
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
                notice(
                    out,
                    Notice::AllFailed {
                        group: self.name.clone(),
                    },
                );
                self.unusable_reported = true;
                if blackhole {
                    notice(
                        out,
                        Notice::Blackhole {
                            group: self.name.clone(),
                        },
                    );
                }
            } else if self.state == GroupState::Failed && self.unusable_reported {
                self.unusable_reported = false;
                let first = slots()
                    .find(|&s| usable(s))
                    .map(|s| self.members[usize::from(s)].name.clone());
                notice(
                    out,
                    Notice::Usable {
                        member: first.unwrap_or_default(),
                        group: self.name.clone(),
                    },
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
        // Logged after the move (table taken up, announcements sent,
        // nominee), so that an "active"/"no longer active" line means
        // traffic has moved.
        let mut notices = Vec::new();
        for &j in &joined {
            notice(
                &mut notices,
                Notice::Active {
                    member: self.members[usize::from(j)].name.clone(),
                    group: self.name.clone(),
                },
            );
        }
        for &l in &left {
            let m = &self.members[usize::from(l)];
            if m.failed() {
                self.failovers += 1;
            }
            let why = if m.out_of_service() {
                LeftBecause::Offline
            } else if m.failed() {
                LeftBecause::Failed
            } else if m.standby {
                LeftBecause::Standby
            } else {
                LeftBecause::Inactive
            };
            notice(
                &mut notices,
                Notice::Inactive {
                    member: m.name.clone(),
                    group: self.name.clone(),
                    why,
                },
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
        out.append(&mut notices);
    }

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
            let n = match holder {
                Some(h) => Notice::DuplicateHwAddr {
                    member: m.name.clone(),
                    holder: self.members[h].name.clone(),
                    group: self.name.clone(),
                },
                None => Notice::HwAddrUnique {
                    member: m.name.clone(),
                    group: self.name.clone(),
                },
            };
            notice(out, n);
            self.members[i].dup_hwaddr = dup;
        }
    }
}
