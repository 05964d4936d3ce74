//! SIGHUP: apply a new configuration to the running group without losing
//! state (the original re-execs and forgets everything). Members that did
//! not change keep their sockets, probers, bindings and flows.

use super::{detection, Daemon, SlotState};
use crate::config::{GroupConfig, MemberConfig};
use crate::datapath::buckets::Slot;
use crate::detect::probe::{ProbeState, Prober};
use crate::group;
use std::time::Instant;

/// Re-reads the configuration: the file merged with the original flags,
/// validated. An error leaves the running configuration in force.
pub type Reloader = Box<dyn Fn() -> Result<GroupConfig, String>>;

impl Daemon {
    /// Re-reads the configuration and applies it, or says why not (the
    /// running configuration then stays in force).
    pub(super) fn try_reload(&mut self) -> Result<(), String> {
        let Some(reloader) = self.reloader.as_ref() else {
            return Err("nothing to reload: no configuration source".into());
        };
        let new = reloader()
            .map_err(|e| format!("configuration not reloaded, the running one stays in force: {e}"))?;
        self.reload(new);
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
        let diff = diff_members(&old.members, &new.members);
        // Members that left the configuration are given back; their slots
        // are free for the members added below.
        for name in &diff.removed {
            let Some(slot) = self.group.slot_of(name) else {
                continue;
            };
            self.release(slot);
            let acts = self.group.handle(group::Event::Removed { slot }, now);
            self.perform(acts);
            self.slots.remove(slot);
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
        for m in &diff.changed {
            let Some(slot) = self.group.slot_of(&m.name) else {
                continue;
            };
            let Some(st) = self.slots.get_mut(slot) else {
                continue;
            };
            let before = std::mem::replace(&mut st.cfg, m.clone());
            if before.standby != m.standby {
                let acts = self.group.handle(
                    group::Event::Standby {
                        slot,
                        standby: m.standby,
                    },
                    now,
                );
                self.perform(acts);
            }
            if before.test_address != m.test_address {
                self.rebuild_prober(slot, now);
            }
        }
        // New members: a slot each (a freed one first), taken over now if
        // they exist.
        for m in &diff.added {
            let probing = self.cfg.probe_mode() != crate::config::ProbeMode::Off;
            let Some(slot) = self
                .group
                .add_member(group::Member::new(&m.name).standby(m.standby).probing(probing))
            else {
                log::error!(
                    "reload: group {} has no free slot for {}; not added",
                    self.cfg.group,
                    m.name
                );
                continue;
            };
            let prober = self.build_prober(m, slot);
            self.slots.insert(
                slot,
                SlotState {
                    cfg: m.clone(),
                    prober,
                    taken: None,
                },
            );
            log::info!("reload: {} added to group {}", m.name, self.cfg.group);
            match self.nl.link_by_name(&m.name) {
                Ok(Some(l)) => self.member_appeared(slot, &l, now),
                _ => log::warn!("reload: {} does not exist yet; it joins when it appears", m.name),
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

    /// A prober for one member, built by the same rules as at start-up.
    fn build_prober(&mut self, m: &MemberConfig, slot: Slot) -> Option<Prober> {
        let routes = self.nl.routes().unwrap_or_default();
        let single = GroupConfig {
            members: vec![m.clone()],
            ..self.cfg.clone()
        };
        detection::build_probers(&single, &routes, self.secret ^ u64::from(slot))
            .pop()
            .flatten()
    }

    /// A member's probe settings changed: a new prober, started if its link is up.
    fn rebuild_prober(&mut self, slot: Slot, now: Instant) {
        let Some(m) = self.slots.get(slot).map(|s| s.cfg.clone()) else {
            return;
        };
        let mut p = self.build_prober(&m, slot);
        if let Some(p) = p.as_mut() {
            if self.group.members()[usize::from(slot)].link_up {
                p.start(now);
            }
        }
        let state = p.as_ref().map_or(ProbeState::Disabled, |p| p.state());
        if let Some(st) = self.slots.get_mut(slot) {
            st.prober = p;
        }
        let acts = self.group.handle(group::Event::Probe { slot, state }, now);
        self.perform(acts);
        log::info!("reload: probing of {} reconfigured", m.name);
    }

    /// Gives a member back (sockets closed, settings restored).
    fn release(&mut self, slot: Slot) {
        let Some(st) = self.slots.get_mut(slot) else {
            return;
        };
        if let Some(p) = st.prober.as_mut() {
            p.stop();
        }
        st.prober = None;
        if let Some(t) = st.taken.take() {
            // The data plane lets go of the sockets before the member is restored.
            let g = self.publish();
            self.shared.wait_taken(g, super::TAKE_UP_TIMEOUT);
            drop(t);
        }
    }
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
