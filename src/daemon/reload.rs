//! SIGHUP: apply a new configuration to the running group without losing
//! state (the original re-execs and forgets everything). Members that did
//! not change keep their sockets, probers, bindings and flows.

use super::{detection, Daemon};
use crate::config::GroupConfig;
use crate::datapath::buckets::Slot;
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
        // Members that left the configuration are given back.
        for m in old
            .members
            .iter()
            .filter(|m| !new.members.iter().any(|n| n.name == m.name))
        {
            let Some(slot) = self.group.slot_of(&m.name) else {
                continue;
            };
            self.release(slot);
            let acts = self.group.handle(group::Event::Removed { slot }, now);
            self.perform(acts);
        }
        self.group.set_policy(group::Policy {
            failback: new.detect.failback,
            flap_limit: new.detect.link_flap_limit,
        });
        // Detection settings of the members that stay.
        let (fdt, _) = new.effective_fdt();
        for p in self.probers.iter_mut().flatten() {
            p.set_configured_fdt(fdt);
        }
        let mut cfg = new.clone();
        cfg.interface = old.interface.clone();
        cfg.detect.probe = old.detect.probe;
        // Keep member settings in slot order: existing slots first; members
        // removed above leave the list (they get a new slot if they return).
        let mut members = old.members.clone();
        members.retain(|o| new.members.iter().any(|n| n.name == o.name));
        for m in &new.members {
            match members.iter_mut().find(|o| o.name == m.name) {
                Some(o) => {
                    if o.standby != m.standby {
                        if let Some(slot) = self.group.slot_of(&m.name) {
                            let acts = self.group.handle(
                                group::Event::Standby {
                                    slot,
                                    standby: m.standby,
                                },
                                now,
                            );
                            self.perform(acts);
                        }
                    }
                    if o.test_address != m.test_address {
                        self.rebuild_prober(&m.name, m.clone(), now);
                    }
                    *o = m.clone();
                }
                None => members.push(m.clone()),
            }
        }
        cfg.members = members;
        self.cfg = cfg;
        // New members: a slot each, taken over now if they exist.
        for m in new
            .members
            .iter()
            .filter(|m| !old.members.iter().any(|o| o.name == m.name))
        {
            let probing = self.cfg.probe_mode() != crate::config::ProbeMode::Off;
            let slot = self
                .group
                .add_member(group::Member::new(&m.name).standby(m.standby).probing(probing));
            self.taken.push(None);
            let routes = self.nl.routes().unwrap_or_default();
            let single = GroupConfig {
                members: vec![m.clone()],
                ..self.cfg.clone()
            };
            let prober = detection::build_probers(
                &single,
                &routes,
                self.secret ^ u64::from(slot),
                &self.probe_counter,
            )
            .pop()
            .flatten();
            self.probers.push(prober);
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
            for p in self.probers.iter_mut().flatten() {
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

    /// A member's probe settings changed: a new prober, started if its link is up.
    fn rebuild_prober(&mut self, name: &str, m: crate::config::MemberConfig, now: Instant) {
        let Some(slot) = self.group.slot_of(name) else {
            return;
        };
        let routes = self.nl.routes().unwrap_or_default();
        let single = GroupConfig {
            members: vec![m],
            ..self.cfg.clone()
        };
        let mut p = detection::build_probers(
            &single,
            &routes,
            self.secret ^ u64::from(slot),
            &self.probe_counter,
        )
        .pop()
        .flatten();
        if let Some(p) = p.as_mut() {
            if self.group.members()[usize::from(slot)].link_up {
                p.start(now);
            }
        }
        let state = p
            .as_ref()
            .map_or(crate::detect::probe::ProbeState::Disabled, |p| p.state());
        self.probers[usize::from(slot)] = p;
        let acts = self.group.handle(group::Event::Probe { slot, state }, now);
        self.perform(acts);
        log::info!("reload: probing of {name} reconfigured");
    }

    /// Gives a member back (sockets closed, settings restored).
    fn release(&mut self, slot: Slot) {
        if let Some(p) = self.probers[usize::from(slot)].as_mut() {
            p.stop();
        }
        self.probers[usize::from(slot)] = None;
        if let Some(t) = self.taken[usize::from(slot)].take() {
            // The data plane lets go of the sockets before the member is restored.
            let g = self.publish();
            self.shared.wait_taken(g, super::TAKE_UP_TIMEOUT);
            drop(t);
        }
    }
}
