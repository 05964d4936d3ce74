//! SIGHUP: apply a new configuration to the running group without losing
//! state (the original re-execs and forgets everything). Members that did
//! not change keep their sockets, probers, bindings and flows.

use super::slots::Slots;
use super::{detection, Daemon, SlotState};
use crate::config::{GroupConfig, IfAddr, MemberConfig, ProbeMode};
use crate::datapath::buckets::Slot;
use crate::detect::probe::{ProbeCounter, ProbeState, Prober};
use crate::group;
use crate::group::Group;
use crate::netlink::RouteInfo;
use std::fmt;
use std::time::{Duration, Instant};

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

    /// Applies the difference [`diff_config`] finds between the running
    /// configuration and `new`.
    pub(super) fn reload(&mut self, new: GroupConfig) {
        let now = Instant::now();
        let diff = diff_config(&self.cfg, &new);
        for k in &diff.kept {
            log::warn!("{k}");
        }
        self.group.set_policy(diff.policy);
        // Detection settings of the members that stay.
        for p in self.slots.probers_mut() {
            p.set_configured_fdt(diff.fdt);
        }
        self.cfg = diff.running;
        let routes = if diff.members.builds_probers() || diff.targets.is_some() {
            self.nl.routes().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (cfg, secret, counter) = (self.cfg.clone(), self.secret, self.probe_counter.clone());
        let changes = apply_members(
            &mut self.group,
            &mut self.slots,
            &diff.members,
            diff.probing,
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
        for &slot in &changes.added {
            // IPv6 probing of an added member, by the start-up rules.
            let Some(m) = self.slots.get(slot).map(|s| s.cfg.clone()) else {
                continue;
            };
            let single = GroupConfig {
                members: vec![m],
                ..self.cfg.clone()
            };
            if !detection::ipv6_on(&self.cfg.interface) {
                continue;
            }
            let v6 = detection::build_probers6(
                &single,
                &routes,
                self.tap_index,
                self.secret ^ u64::from(slot),
                &self.probe_counter,
            )
            .pop()
            .flatten();
            if let Some(st) = self.slots.get_mut(slot) {
                st.v6 = v6;
            }
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
        if diff.targets.is_some() {
            self.retarget(&routes, now);
        }
        // Static routes through the group interface.
        for (dst, gw) in &diff.routes.removed {
            if let Err(e) = self.nl.del_route(self.tap_index, dst.addr, dst.prefix_len, *gw) {
                log::warn!("reload: removing route {dst}: {e}");
            }
        }
        for (dst, gw) in &diff.routes.added {
            if let Err(e) = self.nl.add_route(self.tap_index, dst.addr, dst.prefix_len, *gw) {
                log::warn!(
                    "reload: adding route {dst}: {e}{}",
                    super::start::route_exists_hint(&e)
                );
            }
        }
        // Data addresses: netlink events bind and unbind them as usual.
        for d in &diff.data.removed {
            if let Err(e) = self.nl.del_ip_address(self.tap_index, d.addr, d.prefix_len) {
                log::warn!("reload: removing {d}: {e}");
            }
        }
        for d in &diff.data.added {
            if let Err(e) = self.nl.add_ip_address(self.tap_index, d.addr, d.prefix_len) {
                log::warn!("reload: adding {d}: {e}");
            }
        }
        // A reload is the administrator's way to try a refused outbound
        // program again (after a kernel or policy change).
        self.egress_refused = false;
        // The programs follow the new `inbound_fastpath` and
        // `outbound_fastpath` at once: publishing syncs them.
        self.publish();
        log::info!("configuration of group {} reloaded", self.cfg.group);
    }
}

impl Daemon {
    /// New targets: each member's prober of each family keeps its state
    /// and takes the new targets; a family that gains targets gets a
    /// prober (IPv6 with DAD first in ICMP mode), one that loses them
    /// loses it (only IPv4 targets now: no IPv6 probing, and the reverse),
    /// by the start-up rules. The group hears the members' new verdicts.
    fn retarget(&mut self, routes: &[RouteInfo], now: Instant) {
        let v6_on = detection::ipv6_on(&self.cfg.interface);
        let slots: Vec<Slot> = self.slots.iter().map(|(s, _)| s).collect();
        let own6 = self.own_addresses6();
        for slot in slots {
            let Some(m) = self.slots.get(slot).map(|s| s.cfg.clone()) else {
                continue;
            };
            let link_up = self
                .group
                .members()
                .get(usize::from(slot))
                .is_some_and(|g| g.link_up && g.present);
            let new4 = prober_for(&self.cfg, routes, self.secret, &self.probe_counter, &m, slot);
            let new6 = v6_on
                .then(|| {
                    let single = GroupConfig {
                        members: vec![m.clone()],
                        ..self.cfg.clone()
                    };
                    detection::build_probers6(
                        &single,
                        routes,
                        self.tap_index,
                        self.secret ^ u64::from(slot),
                        &self.probe_counter,
                    )
                    .pop()
                    .flatten()
                })
                .flatten();
            let Some(st) = self.slots.get_mut(slot) else {
                continue;
            };
            let (c4, c6) = (
                prober_change(st.prober.is_some(), new4.is_some()),
                prober_change(st.v6.is_some(), new6.is_some()),
            );
            match (c4, new4) {
                (ProberChange::Retarget, Some(n)) => {
                    if let Some(p) = st.prober.as_mut() {
                        retarget_prober(p, &n);
                    }
                }
                (ProberChange::Add, Some(mut n)) => {
                    if link_up {
                        n.start(now);
                    }
                    st.prober = Some(n);
                }
                (ProberChange::Remove, _) => st.prober = None,
                _ => {}
            }
            let (mut joined6, mut left6) = (None, None);
            match (c6, new6) {
                (ProberChange::Retarget, Some(n)) => {
                    if let Some(v) = st.v6.as_mut() {
                        retarget_prober(&mut v.prober, &n.prober);
                    }
                }
                (ProberChange::Add, Some(mut n)) => {
                    // No verdict until it has one (never "failed" for
                    // lack of probes): ICMP runs DAD for the test address
                    // from the MAC first, the prober starting once it
                    // passes; ARP starts the prober with the link.
                    let mac = st.taken.as_ref().map(|t| t.mac);
                    match (n.dad.as_mut(), mac) {
                        (Some(dad), Some(mac)) => {
                            let addr = crate::wire::ipv6::link_local_from_mac(mac);
                            dad.set_addr(addr);
                            n.prober.set_test_addr(std::net::IpAddr::V6(addr));
                            if n.prober.discovering() {
                                let mut own = own6.clone();
                                own.push(std::net::IpAddr::V6(addr));
                                n.prober.set_discovery(Some(own));
                            }
                            if link_up {
                                dad.start(now);
                            }
                            joined6 = Some((mac, addr));
                        }
                        (Some(_), None) => {} // set at take-over
                        (None, _) if link_up => n.prober.start(now),
                        (None, _) => {}
                    }
                    st.v6 = Some(n);
                }
                (ProberChange::Remove, _) => {
                    // Its test address goes with it: so does its group.
                    let ta = st.v6.take().and_then(|v| v.test_addr());
                    left6 = st.taken.as_ref().map(|t| t.mac).zip(ta);
                }
                _ => {}
            }
            if let Some((mac, addr)) = joined6 {
                self.move_test_group6(slot, mac, std::net::Ipv6Addr::UNSPECIFIED, addr);
            }
            if let Some((mac, addr)) = left6 {
                self.leave_test_group6(slot, mac, addr);
            }
            if [c4, c6]
                .iter()
                .any(|c| matches!(c, ProberChange::Add | ProberChange::Remove))
            {
                log::info!("reload: probing of {} follows the new targets", m.name);
                let state = self.probe_state(slot);
                let acts = self.group.handle(group::Event::Probe { slot, state }, now);
                self.perform(acts);
            }
        }
    }
}

/// A running prober takes the targets of the one the new configuration
/// builds: configured ones end a discovery; none (routers, else
/// discovery) are left to the target refresh, due at once.
fn retarget_prober(p: &mut Prober, new: &Prober) {
    let targets = new.all_targets();
    if targets == p.all_targets() && !targets.is_empty() {
        return; // this family's targets did not change: nothing starts over
    }
    if !targets.is_empty() {
        p.set_discovery(None);
    }
    p.set_targets(&targets);
}

/// What a reload does to one family's prober of a member that stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProberChange {
    /// Not probed before nor now.
    None,
    /// Probed before and now: the prober stays, with the new targets.
    Retarget,
    /// Probed now only: a new prober.
    Add,
    /// Probed before only: its prober goes.
    Remove,
}

pub(crate) fn prober_change(had: bool, wants: bool) -> ProberChange {
    match (had, wants) {
        (false, false) => ProberChange::None,
        (true, true) => ProberChange::Retarget,
        (false, true) => ProberChange::Add,
        (true, false) => ProberChange::Remove,
    }
}

/// A setting a reload cannot change without a restart: the running one
/// is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The group interface's name.
    Interface { running: String, wanted: String },
    /// The probe mode in force.
    ProbeMode { running: ProbeMode, wanted: ProbeMode },
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Interface { running, wanted } => write!(
                f,
                "reload: renaming the group interface ({running} to {wanted}) needs a restart; keeping {running}"
            ),
            Kept::ProbeMode { running, .. } => write!(
                f,
                "reload: changing the probe mode needs a restart; keeping {running:?}"
            ),
        }
    }
}

/// Entries a reload removes and adds, each in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changes<T> {
    pub removed: Vec<T>,
    pub added: Vec<T>,
}

impl<T> Default for Changes<T> {
    fn default() -> Self {
        Changes {
            removed: Vec::new(),
            added: Vec::new(),
        }
    }
}

/// A static route through the group interface: (destination, gateway).
pub(crate) type Route = (IfAddr, Option<std::net::IpAddr>);

/// What a reload does, worked out from the old and new configurations
/// alone; the shell ([`Daemon::reload`]) applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigDiff {
    /// Settings that need a restart, kept as they run (logged).
    pub kept: Vec<Kept>,
    /// The configuration in force afterwards: the new one with the kept
    /// settings of the old.
    pub running: GroupConfig,
    /// Failback and flap damping, set on every reload.
    pub policy: group::Policy,
    /// The FDT for the probers that stay, set on every reload (which also
    /// drops an FDT the prober raised).
    pub fdt: Duration,
    /// Whether members added now are probed (the running probe mode is
    /// not off).
    pub probing: bool,
    pub members: MemberDiff,
    /// The new probe targets, when they changed.
    pub targets: Option<Vec<std::net::IpAddr>>,
    /// Static routes, compared by destination and gateway.
    pub routes: Changes<Route>,
    /// Data addresses, compared by address (a new prefix length alone
    /// changes nothing).
    pub data: Changes<IfAddr>,
}

pub(crate) fn diff_config(old: &GroupConfig, new: &GroupConfig) -> ConfigDiff {
    let mut kept = Vec::new();
    if new.interface != old.interface {
        kept.push(Kept::Interface {
            running: old.interface.clone(),
            wanted: new.interface.clone(),
        });
    }
    if new.probe_mode() != old.probe_mode() {
        kept.push(Kept::ProbeMode {
            running: old.probe_mode(),
            wanted: new.probe_mode(),
        });
    }
    let mut running = new.clone();
    running.interface = old.interface.clone();
    running.detect.probe = old.detect.probe;
    let probing = running.probe_mode() != ProbeMode::Off;
    ConfigDiff {
        kept,
        policy: group::Policy {
            failback: new.detect.failback,
            flap_limit: new.detect.link_flap_limit,
        },
        fdt: new.effective_fdt().0,
        probing,
        members: diff_members(&old.members, &new.members),
        targets: (new.detect.targets != old.detect.targets).then(|| new.detect.targets.clone()),
        routes: Changes {
            removed: old
                .routes
                .iter()
                .filter(|r| !new.routes.contains(r))
                .cloned()
                .collect(),
            added: new
                .routes
                .iter()
                .filter(|r| !old.routes.contains(r))
                .cloned()
                .collect(),
        },
        data: Changes {
            removed: old
                .data
                .iter()
                .filter(|d| !new.data.iter().any(|n| n.addr == d.addr))
                .cloned()
                .collect(),
            added: new
                .data
                .iter()
                .filter(|d| !old.data.iter().any(|o| o.addr == d.addr))
                .cloned()
                .collect(),
        },
        running,
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
                // Set by the shell (`Daemon::reload`), not by this pure part.
                v6: None,
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberDiff {
    /// Members no longer configured, by name.
    pub removed: Vec<String>,
    /// Members configured now and not before.
    pub added: Vec<MemberConfig>,
    /// Members in both whose settings changed, with the new settings.
    pub changed: Vec<MemberConfig>,
}

impl MemberDiff {
    /// Whether applying it builds probers (which need the routes).
    pub fn builds_probers(&self) -> bool {
        !(self.added.is_empty() && self.changed.is_empty())
    }
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

    fn addr(s: &str) -> crate::config::DataAddr {
        crate::config::parse_data_addr(s).unwrap()
    }

    /// Two members, no test addresses (probing off), one data address.
    fn base() -> GroupConfig {
        GroupConfig {
            group: "g0".into(),
            interface: "ipmp0".into(),
            data: vec![addr("192.0.2.200/24").into()],
            members: vec![m("a", false), m("b", false)],
            outbound: crate::config::Outbound::Flow,
            detect: crate::config::DetectConfig::default(),
            status_world_readable: false,
            routes: vec![],
            force: false,
            qdisc_bypass: false,
            inbound_fastpath: true,
            outbound_fastpath: true,
            run_dir: crate::config::DEFAULT_RUN_DIR.into(),
        }
    }

    #[test]
    fn the_same_configuration_changes_nothing_but_what_every_reload_sets() {
        let c = base();
        let d = diff_config(&c, &c);
        assert_eq!(
            d,
            ConfigDiff {
                kept: vec![],
                running: c.clone(),
                policy: group::Policy {
                    failback: c.detect.failback,
                    flap_limit: c.detect.link_flap_limit,
                },
                fdt: c.detect.fdt,
                probing: false,
                members: MemberDiff::default(),
                targets: None,
                routes: Changes::default(),
                data: Changes::default(),
            }
        );
        assert!(!d.members.builds_probers());
    }

    #[test]
    fn a_new_interface_name_is_kept_for_a_restart() {
        let old = base();
        let new = GroupConfig {
            interface: "ipmp1".into(),
            ..base()
        };
        let d = diff_config(&old, &new);
        assert_eq!(d.running.interface, "ipmp0");
        assert_eq!(
            d.kept,
            vec![Kept::Interface {
                running: "ipmp0".into(),
                wanted: "ipmp1".into()
            }]
        );
        assert_eq!(
            d.kept[0].to_string(),
            "reload: renaming the group interface (ipmp0 to ipmp1) needs a restart; keeping ipmp0"
        );
    }

    #[test]
    fn a_new_probe_mode_is_kept_for_a_restart() {
        let old = base();
        let mut new = base();
        new.detect.probe = Some(ProbeMode::Arp);
        let d = diff_config(&old, &new);
        assert_eq!(d.running.detect.probe, None);
        assert!(!d.probing);
        assert_eq!(
            d.kept,
            vec![Kept::ProbeMode {
                running: ProbeMode::Off,
                wanted: ProbeMode::Arp
            }]
        );
        assert_eq!(
            d.kept[0].to_string(),
            "reload: changing the probe mode needs a restart; keeping Off"
        );
        // Running with ARP, members added are probed.
        let d = diff_config(&new, &new);
        assert!(d.kept.is_empty() && d.probing);
    }

    #[test]
    fn policy_and_fdt_follow_the_new_configuration_clamped() {
        let old = base();
        let mut new = base();
        new.detect.failback = !old.detect.failback;
        new.detect.link_flap_limit = old.detect.link_flap_limit + 1;
        new.detect.fdt = crate::detect::FDT_MIN / 2;
        let d = diff_config(&old, &new);
        assert_eq!(
            d.policy,
            group::Policy {
                failback: new.detect.failback,
                flap_limit: new.detect.link_flap_limit,
            }
        );
        assert_eq!(d.fdt, crate::detect::FDT_MIN);
        assert_eq!(d.running, new);
        assert!(d.kept.is_empty());
    }

    #[test]
    fn members_are_diffed_and_test_addresses_need_probers() {
        let old = base();
        let mut new = base();
        new.members[1].test_address = Some(addr("192.0.2.201/24"));
        new.members.push(m("c", true));
        // A test address turns probing on only at a restart (probe unset).
        let d = diff_config(&old, &new);
        assert_eq!(
            d.members,
            MemberDiff {
                removed: vec![],
                added: vec![m("c", true)],
                changed: vec![new.members[1].clone()],
            }
        );
        assert!(d.members.builds_probers());
        assert_eq!(d.running.members, new.members);
    }

    #[test]
    fn targets_are_given_only_when_they_changed() {
        let old = base();
        let mut new = base();
        new.detect.targets = vec![std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))];
        assert_eq!(diff_config(&old, &new).targets, Some(new.detect.targets.clone()));
        assert_eq!(diff_config(&new, &new).targets, None);
        // Back to none: the probers are told (they then use the routers).
        assert_eq!(diff_config(&new, &old).targets, Some(vec![]));
    }

    #[test]
    fn routes_are_compared_by_destination_and_gateway() {
        let gw = |d| Some(std::net::Ipv4Addr::new(192, 0, 2, d).into());
        let (net1, net2): (IfAddr, IfAddr) = (addr("198.51.100.0/24").into(), addr("203.0.113.0/24").into());
        let mut old = base();
        old.routes = vec![(net1, gw(1)), (net2, None)];
        let mut new = base();
        new.routes = vec![(net2, None), (net1, gw(2))];
        let d = diff_config(&old, &new);
        assert_eq!(
            d.routes,
            Changes {
                removed: vec![(net1, gw(1))],
                added: vec![(net1, gw(2))],
            }
        );
    }

    #[test]
    fn data_addresses_are_compared_by_address_only() {
        let mut old = base();
        old.data.push(addr("192.0.2.210/24").into());
        let mut new = base();
        new.data = vec![addr("192.0.2.200/25").into(), addr("192.0.2.220/24").into()];
        let d = diff_config(&old, &new);
        assert_eq!(
            d.data,
            Changes {
                removed: vec![addr("192.0.2.210/24").into()],
                added: vec![addr("192.0.2.220/24").into()],
            }
        );
    }

    #[test]
    fn a_family_gains_or_loses_its_prober_with_its_targets() {
        assert_eq!(prober_change(false, false), ProberChange::None);
        assert_eq!(prober_change(true, true), ProberChange::Retarget);
        assert_eq!(prober_change(false, true), ProberChange::Add);
        assert_eq!(prober_change(true, false), ProberChange::Remove);
        // IPv4-only targets to IPv6-only ones, ARP mode: by the start-up
        // rules the IPv4 probers go and IPv6 ones come.
        let mut old = base();
        old.detect.probe = Some(ProbeMode::Arp);
        old.detect.targets = vec!["192.0.2.1".parse().unwrap()];
        let mut new = old.clone();
        new.detect.targets = vec!["fe80::1".parse().unwrap()];
        let d = diff_config(&old, &new);
        assert_eq!(d.targets, Some(new.detect.targets.clone()));
        assert!(d.kept.is_empty());
        let counter = ProbeCounter::default();
        let has = |c: &GroupConfig| {
            let v4 = detection::build_probers(c, &[], 1, &counter);
            let v6 = detection::build_probers6(c, &[], 7, 1, &counter);
            (v4[0].is_some(), v6[0].is_some())
        };
        let ((o4, o6), (n4, n6)) = (has(&old), has(&d.running));
        assert_eq!(prober_change(o4, n4), ProberChange::Remove);
        assert_eq!(prober_change(o6, n6), ProberChange::Add);
        // Both families: each keeps its prober.
        let mut both = old.clone();
        both.detect.targets.push("fe80::1".parse().unwrap());
        let (b4, b6) = has(&diff_config(&old, &both).running);
        assert_eq!(prober_change(o4, b4), ProberChange::Retarget);
        assert_eq!(prober_change(o6, b6), ProberChange::Add);
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
