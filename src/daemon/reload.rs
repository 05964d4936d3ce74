//! SIGHUP: apply a new configuration to the running group without losing
//! state (the original re-execs and forgets everything). Members that did
//! not change keep their sockets, probers, bindings and flows.

use super::slots::Slots;
use super::{detection, Daemon, SlotState};
use crate::config::{GroupConfig, MemberConfig, ProbeMode};
use crate::datapath::buckets::Slot;
use crate::detect::probe::{ProbeCounter, ProbeState, Prober};
use crate::group;
use crate::group::Group;
use crate::netlink::RouteInfo;
use std::time::Instant;

/// Re-reads the configuration: the file merged with the original flags,
/// validated, as at the start. An error leaves the running configuration in
/// force.
pub type Reloader = crate::config::Source;

impl Daemon {
    /// Re-reads the configuration and applies it, or says why not (the
    /// running configuration then stays in force).
    pub(super) fn try_reload(&mut self) -> Result<(), String> {
        let Some(reloader) = self.reloader.as_ref() else {
            return Err("nothing to reload: no configuration source".into());
        };
        let new = reloader
            .load()
            .map_err(|e| format!("configuration not reloaded, the running one stays in force: {e}"))?;
        self.reload(new.cfg);
        Ok(())
    }

    pub(super) fn reload(&mut self, new: GroupConfig) {
        let now = Instant::now();
        let old = self.cfg.clone();
        if new.interface != old.interface {
            log::warn!(
                "reload: renaming the group interface ({} to {}) needs a restart; keeping {}",
                old.interface,
                new.interface,
                old.interface
            );
        }
        if new.probe_mode() != old.probe_mode() {
            log::warn!(
                "reload: changing the probe mode needs a restart; keeping {:?}",
                old.probe_mode()
            );
        }
        self.group.set_policy(group::Policy {
            failback: new.detect.failback,
            flap_limit: new.detect.link_flap_limit,
        });
        // Detection settings of the members that stay.
        let (fdt, _) = new.effective_fdt();
        for p in self.slots.probers_mut() {
            p.set_configured_fdt(fdt);
        }
        let mut cfg = new.clone();
        cfg.interface = old.interface.clone();
        cfg.detect.probe = old.detect.probe;
        self.cfg = cfg;
        let diff = diff_members(&old.members, &new.members);
        let routes = if diff.added.is_empty() && diff.changed.is_empty() {
            Vec::new()
        } else {
            self.nl.routes().unwrap_or_default()
        };
        let (cfg, secret, counter) = (self.cfg.clone(), self.secret, self.probe_counter.clone());
        let changes = apply_members(
            &mut self.group,
            &mut self.slots,
            &diff,
            cfg.probe_mode() != ProbeMode::Off,
            now,
            &mut |m, slot| prober_for(&cfg, &routes, secret, &counter, m, slot),
        );
        self.perform(changes.actions);
        if !changes.released.is_empty() {
            // The data plane lets go of the removed members' sockets before
            // they are restored (when `released` drops).
            let g = self.publish();
            if !self.shared.wait_taken(g, super::TAKE_UP_TIMEOUT) {
                log::warn!("data plane slow to take up table {g}; giving members back anyway");
            }
            drop(changes.released);
        }
        for slot in changes.added {
            let Some(name) = self.slots.get(slot).map(|s| s.cfg.name.clone()) else {
                continue;
            };
            match self.nl.link_by_name(&name) {
                Ok(Some(l)) => self.member_appeared(slot, &l, now),
                _ => log::warn!("reload: {name} does not exist yet; it joins when it appears"),
            }
        }
        // Targets follow the new configuration; none configured: the
        // routers (the refresh, due now, finds them).
        self.next_target_refresh = now;
        if self.cfg.detect.targets != old.detect.targets {
            for p in self.slots.probers_mut() {
                p.set_targets(&self.cfg.detect.targets);
            }
        }
        // Static routes through the group interface.
        for (dst, gw) in old.routes.iter().filter(|r| !new.routes.contains(r)) {
            if let Err(e) = self
                .nl
                .del_route_v4(self.tap_index, dst.addr, dst.prefix_len, *gw)
            {
                log::warn!("reload: removing route {dst}: {e}");
            }
        }
        for (dst, gw) in new.routes.iter().filter(|r| !old.routes.contains(r)) {
            if let Err(e) = self
                .nl
                .add_route_v4(self.tap_index, dst.addr, dst.prefix_len, *gw)
            {
                log::warn!("reload: adding route {dst}: {e}");
            }
        }
        // Data addresses: netlink events bind and unbind them as usual.
        for d in old
            .data
            .iter()
            .filter(|d| !new.data.iter().any(|n| n.addr == d.addr))
        {
            if let Err(e) = self.nl.del_address(self.tap_index, d.addr, d.prefix_len) {
                log::warn!("reload: removing {d}: {e}");
            }
        }
        for d in new
            .data
            .iter()
            .filter(|d| !old.data.iter().any(|o| o.addr == d.addr))
        {
            if let Err(e) = self.nl.add_address(self.tap_index, d.addr, d.prefix_len) {
                log::warn!("reload: adding {d}: {e}");
            }
        }
        self.publish();
        log::info!("configuration of group {} reloaded", self.cfg.group);
    }
}

/// A prober for one member, built by the same rules as at start-up.
fn prober_for(
    cfg: &GroupConfig,
    routes: &[RouteInfo],
    secret: u64,
    counter: &ProbeCounter,
    m: &MemberConfig,
    slot: Slot,
) -> Option<Prober> {
    let single = GroupConfig {
        members: vec![m.clone()],
        ..cfg.clone()
    };
    detection::build_probers(&single, routes, secret ^ u64::from(slot), counter)
        .pop()
        .flatten()
}

/// The member part of a reload, applied to the group core and the slot
/// table. Pure, so the model test drives it with the rest of the core.
pub(super) struct MemberChanges {
    /// The group's actions, to perform in order.
    pub actions: Vec<group::Action>,
    /// Removed members' state; restored when dropped, which the shell does
    /// once the data plane no longer uses their sockets.
    pub released: Vec<SlotState>,
    /// Slots of added members, to take over if their interface exists.
    pub added: Vec<Slot>,
}

pub(super) fn apply_members(
    group: &mut Group,
    slots: &mut Slots,
    diff: &MemberDiff,
    probing: bool,
    now: Instant,
    make_prober: &mut dyn FnMut(&MemberConfig, Slot) -> Option<Prober>,
) -> MemberChanges {
    let mut out = MemberChanges {
        actions: Vec::new(),
        released: Vec::new(),
        added: Vec::new(),
    };
    // Removals, standby changes and new probers are decided together, so
    // no member's flows move for a state that exists only half-way through.
    let mut batch = Vec::new();
    for name in &diff.removed {
        let Some(slot) = group.slot_of(name) else {
            continue;
        };
        batch.push(group::Event::Removed { slot });
        if let Some(st) = slots.remove(slot) {
            out.released.push(st);
        }
    }
    for m in &diff.changed {
        let Some(slot) = group.slot_of(&m.name) else {
            continue;
        };
        let Some(st) = slots.get_mut(slot) else {
            continue;
        };
        let before = std::mem::replace(&mut st.cfg, m.clone());
        if before.standby != m.standby {
            batch.push(group::Event::Standby {
                slot,
                standby: m.standby,
            });
        }
        if before.test_address != m.test_address {
            // A new prober, started if the link is up; the group hears its state.
            let mut p = make_prober(m, slot);
            let link_up = group.members().get(usize::from(slot)).is_some_and(|g| g.link_up);
            if let Some(p) = p.as_mut().filter(|_| link_up) {
                p.start(now);
            }
            let state = p.as_ref().map_or(ProbeState::Disabled, Prober::state);
            st.prober = p;
            out.actions
                .push(group::Action::Notice(group::Notice::ProbingReconfigured {
                    member: m.name.clone(),
                }));
            batch.push(group::Event::Probe { slot, state });
        }
    }
    if !batch.is_empty() {
        out.actions.extend(group.handle(group::Event::Batch(batch), now));
    }
    // Slots freed above are free for the members added now.
    for m in &diff.added {
        let member = group::Member::new(&m.name).standby(m.standby).probing(probing);
        let Some(slot) = group.add_member(member) else {
            out.actions.push(group::Action::Notice(group::Notice::NoFreeSlot {
                member: m.name.clone(),
                group: group.name().to_string(),
            }));
            continue;
        };
        let prober = make_prober(m, slot);
        slots.insert(
            slot,
            SlotState {
                cfg: m.clone(),
                prober,
                taken: None,
            },
        );
        out.actions
            .push(group::Action::Notice(group::Notice::MemberAdded {
                member: m.name.clone(),
                group: group.name().to_string(),
            }));
        out.added.push(slot);
    }
    out
}

/// What a reload changes about the members, from the two configurations
/// alone.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MemberDiff {
    /// Members no longer configured, by name.
    pub removed: Vec<String>,
    /// Members configured now and not before.
    pub added: Vec<MemberConfig>,
    /// Members in both whose settings changed, with the new settings.
    pub changed: Vec<MemberConfig>,
}

pub(crate) fn diff_members(old: &[MemberConfig], new: &[MemberConfig]) -> MemberDiff {
    let mut d = MemberDiff::default();
    for o in old {
        match new.iter().find(|n| n.name == o.name) {
            None => d.removed.push(o.name.clone()),
            Some(n) if n != o => d.changed.push(n.clone()),
            Some(_) => {}
        }
    }
    d.added = new
        .iter()
        .filter(|n| !old.iter().any(|o| o.name == n.name))
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, standby: bool) -> MemberConfig {
        MemberConfig {
            standby,
            ..MemberConfig::new(name)
        }
    }

    #[test]
    fn diff_names_removed_added_and_changed_members() {
        let old = [m("a", false), m("b", false), m("c", false)];
        let new = [m("c", true), m("d", false), m("a", false)];
        let d = diff_members(&old, &new);
        assert_eq!(d.removed, vec!["b".to_string()]);
        assert_eq!(d.added, vec![m("d", false)]);
        assert_eq!(d.changed, vec![m("c", true)]);
        assert_eq!(diff_members(&old, &old), MemberDiff::default());
    }
}
