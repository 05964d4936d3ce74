//! The daemon side of failure detection: probers built from the
//! configuration (their set-up notices logged), fed with probe frames from
//! the data plane and with the clock, their targets refreshed from the
//! routes; their outputs sent as frames or handed to the group core;
//! ETHTOOL_GLINK polling; gratuitous ARP repetition. The rules live in
//! `detect::probe` and `group`; this is I/O.

use super::Daemon;
use crate::config::{GroupConfig, ProbeMode};
use crate::datapath::buckets::Slot;
use crate::datapath::counters::DropReason;
use crate::datapath::frame::Mac;
use crate::datapath::shell::ProbeFrame;
use crate::datapath::vnet::VNET_HDR_LEN;
use crate::detect::dad::{Dad, DadOut};
use crate::detect::frames::{self, ProbeId, ProbeInput, ProbeKey, PROBE_KEY_LEN};
use crate::detect::frames6;
use crate::detect::notice::{Notice, TargetSource};
use crate::detect::probe::{Method, Out, ProbeCounter, ProbeState, Prober};
use crate::detect::{combine, GARP_INTERVAL, TARGET_REFRESH};
use crate::group;
use crate::netlink::RouteInfo;
use crate::sys::packet::SendError;
use crate::wire::ipv6;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// A member's IPv6 probing: its prober and, in ICMP mode, its test
/// address (the EUI-64 link-local of its MAC, held by the daemon) with
/// that address's duplicate address detection.
#[derive(Debug, Clone)]
pub(crate) struct Probe6 {
    pub prober: Prober,
    /// ICMP mode only: the test address and its DAD.
    pub dad: Option<Dad>,
    /// A claim on the assigned address was logged (once per address).
    pub claim_logged: bool,
}

impl Probe6 {
    /// The test address while it is not a duplicate (tentative included,
    /// so conflicts with it are seen).
    pub fn test_addr(&self) -> Option<Ipv6Addr> {
        // `::` until the member's MAC is known (never taken yet): no address.
        self.dad
            .as_ref()
            .filter(|d| !d.duplicate())
            .map(Dad::addr)
            .filter(|a| !a.is_unspecified())
    }
    /// The state that counts for the member: none while the test address
    /// is a duplicate (no IPv6 probing then).
    pub fn state(&self) -> ProbeState {
        if self.dad.as_ref().is_some_and(Dad::duplicate) {
            ProbeState::Disabled
        } else {
            self.prober.state()
        }
    }
}

/// Probe frames handled per member per turn of the control loop, so a member
/// under a flood cannot keep the loop from the others and from its timers.
const PROBE_FRAMES_PER_TURN: usize = crate::datapath::shell::PROBE_QUEUE_PER_MEMBER;

/// A fresh key for probe tags, from getrandom; a start without one is
/// refused (a clock-derived key would be guessable).
pub(super) fn new_probe_key() -> Result<ProbeKey, super::Error> {
    let mut k = [0u8; PROBE_KEY_LEN];
    crate::sys::random_bytes(&mut k).map_err(|e| {
        super::Error::Refused(format!("no random key for probe authentication (getrandom: {e})"))
    })?;
    Ok(ProbeKey::new(k))
}

/// A gratuitous ARP (or, for IPv6, unsolicited neighbour advertisement)
/// still to be repeated.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingGarp {
    pub at: Instant,
    pub addr: std::net::IpAddr,
    pub slot: Slot,
    pub left: u32,
}

fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    u32::from(a) & mask == u32::from(net) & mask
}

/// IPv4 targets: the configured ones, else the routers (next hops of
/// routes) inside the group's subnets: data addresses' and test addresses'.
pub(super) fn choose_targets(cfg: &GroupConfig, routes: &[RouteInfo]) -> (Vec<IpAddr>, TargetSource) {
    if !cfg.detect.targets.is_empty() {
        let v4 = cfg
            .detect
            .targets
            .iter()
            .copied()
            .filter(IpAddr::is_ipv4)
            .collect();
        return (v4, TargetSource::Configured);
    }
    let subnets: Vec<(Ipv4Addr, u8)> = cfg
        .data4()
        .chain(cfg.members.iter().filter_map(|m| m.test_address))
        .map(|d| (d.addr, d.prefix_len))
        .collect();
    let mut routers = Vec::new();
    for r in routes {
        if let Some(IpAddr::V4(g)) = r.gateway {
            if subnets.iter().any(|&(n, p)| in_subnet(g, n, p)) && !routers.contains(&IpAddr::V4(g)) {
                routers.push(IpAddr::V4(g));
            }
        }
    }
    (routers, TargetSource::Routers)
}

/// IPv6 targets: the configured ones, else the link-local next hops of
/// the IPv6 routes through the group interface (`tap_index`).
pub(super) fn choose_targets6(
    cfg: &GroupConfig,
    routes: &[RouteInfo],
    tap_index: u32,
) -> (Vec<IpAddr>, TargetSource) {
    if !cfg.detect.targets.is_empty() {
        let v6 = cfg
            .detect
            .targets
            .iter()
            .copied()
            .filter(IpAddr::is_ipv6)
            .collect();
        return (v6, TargetSource::Configured);
    }
    let mut routers = Vec::new();
    for r in routes {
        if let (Some(IpAddr::V6(g)), Some(oif)) = (r.gateway, r.oif) {
            if oif == tap_index && ipv6::is_link_local(&g) && !routers.contains(&IpAddr::V6(g)) {
                routers.push(IpAddr::V6(g));
            }
        }
    }
    (routers, TargetSource::Routers)
}

/// Addresses that are ours: never probe targets.
fn own_addresses(cfg: &GroupConfig) -> Vec<IpAddr> {
    cfg.data
        .iter()
        .map(|d| d.addr)
        .chain(
            cfg.members
                .iter()
                .filter_map(|m| m.test_address)
                .map(|d| IpAddr::V4(d.addr)),
        )
        .collect()
}

/// Each member's IPv6 prober, by the rules of the IPv4 ones: ICMPv6 echo
/// from the member's link-local test address (set once its MAC is known)
/// when probing is ICMP; in ARP mode neighbour solicitations from a bound
/// IPv6 data address, only when there are IPv6 targets.
pub(super) fn build_probers6(
    cfg: &GroupConfig,
    routes: &[RouteInfo],
    tap_index: u32,
    seed: u64,
    counter: &ProbeCounter,
) -> Vec<Option<Probe6>> {
    let mode = cfg.probe_mode();
    let (fdt, _) = cfg.effective_fdt();
    let (targets, source) = choose_targets6(cfg, routes, tap_index);
    let configured_v4_only = !cfg.detect.targets.is_empty() && targets.is_empty();
    cfg.members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (method, dad) = match mode {
                ProbeMode::Off => return None,
                // Only IPv4 targets configured: IPv6 is not probed.
                _ if configured_v4_only => return None,
                ProbeMode::Arp if targets.is_empty() => return None,
                ProbeMode::Arp => (Method::Arp, None),
                ProbeMode::Icmp => {
                    let unset = Ipv6Addr::UNSPECIFIED;
                    (
                        Method::Icmp {
                            test_addr: IpAddr::V6(unset),
                        },
                        Some(Dad::new(unset)),
                    )
                }
            };
            let seed = seed.rotate_left(SEED_ROTATION_V6) ^ (i as u64 + 1);
            let mut p = Prober::new(method, &m.name, &cfg.group, fdt, &targets, seed);
            p.set_counter(counter.clone());
            if targets.is_empty() {
                log_notice(Notice::Discovering {
                    member: m.name.clone(),
                    group: cfg.group.clone(),
                    to: IpAddr::V6(ipv6::ALL_NODES),
                });
                p.set_discovery(Some(Vec::new()));
            } else {
                log_targets(&m.name, &cfg.group, &targets, source, true);
            }
            Some(Probe6 {
                prober: p,
                dad,
                claim_logged: false,
            })
        })
        .collect()
}

/// The source of a member's neighbour solicitations in ARP mode: an IPv6
/// data address bound to it, else the EUI-64 link-local of its MAC; never
/// `::`, which makes the NS a DAD probe for the target's own address.
/// A member holds no data address while it is failed or inactive (they
/// move away): with no sender it could never be repaired, and "no
/// verdict" would repair it at once, only to fail it again. The
/// link-local is the member's own (unique with its MAC); the router's
/// answer comes back to it, on that member, without touching the
/// neighbour entries of the data addresses.
pub(super) fn ns_sender(bound: Option<Ipv6Addr>, mac: Option<Mac>) -> Option<Ipv6Addr> {
    bound.or_else(|| mac.map(ipv6::link_local_from_mac))
}

/// Whether IPv6 is on on the group interface `ifname` (this host has IPv6
/// and did not disable it there): without it the group is IPv4 only and
/// nothing probes over IPv6 (the test addresses themselves never use the
/// group interface's IPv6).
pub(super) fn ipv6_on(ifname: &str) -> bool {
    crate::sys::sysctl::read("ipv6", ifname, "disable_ipv6").is_ok_and(|v| v.trim() == "0")
}

/// The IPv6 probers' jitter seeds differ from the IPv4 ones of the same member.
const SEED_ROTATION_V6: u32 = 32;

/// One prober per probed member, with in.mpathd's refusals logged.
pub(super) fn build_probers(
    cfg: &GroupConfig,
    routes: &[RouteInfo],
    seed: u64,
    counter: &ProbeCounter,
) -> Vec<Option<Prober>> {
    let mode = cfg.probe_mode();
    let (fdt, too_small) = cfg.effective_fdt();
    if let Some(configured) = too_small {
        log_notice(Notice::FdtTooSmall {
            configured,
            minimum: fdt,
        });
    }
    if mode == ProbeMode::Off {
        return cfg.members.iter().map(|_| None).collect();
    }
    let (targets, source) = choose_targets(cfg, routes);
    let v6_only = !cfg.detect.targets.is_empty() && targets.is_empty();
    let no_v4_test_addresses = cfg.members.iter().all(|m| m.test_address.is_none());
    let mut probers = Vec::new();
    for (i, m) in cfg.members.iter().enumerate() {
        if v6_only || (mode == ProbeMode::Icmp && no_v4_test_addresses) {
            // Only IPv6 targets, or no IPv4 test address at all: IPv6 alone.
            probers.push(None);
            continue;
        }
        let method = match (mode, m.test_address) {
            (ProbeMode::Arp, _) => Method::Arp,
            (ProbeMode::Icmp, Some(t)) => {
                if cfg.members[..i]
                    .iter()
                    .any(|o| o.test_address.map(|a| a.addr) == Some(t.addr))
                {
                    log_notice(Notice::TestAddressNotUnique {
                        addr: IpAddr::V4(t.addr),
                        member: m.name.clone(),
                    });
                    probers.push(None);
                    continue;
                }
                Method::Icmp {
                    test_addr: IpAddr::V4(t.addr),
                }
            }
            (ProbeMode::Icmp, None) => {
                log_notice(Notice::NoTestAddress {
                    member: m.name.clone(),
                });
                probers.push(None);
                continue;
            }
            (ProbeMode::Off, _) => unreachable!("handled above"),
        };
        let mut p = Prober::new(method, &m.name, &cfg.group, fdt, &targets, seed ^ (i as u64 + 1));
        p.set_counter(counter.clone());
        if targets.is_empty() && mode == ProbeMode::Icmp {
            log_notice(Notice::Discovering {
                member: m.name.clone(),
                group: cfg.group.clone(),
                to: IpAddr::V4(crate::wire::ipv4::ALL_HOSTS),
            });
            p.set_discovery(Some(own_addresses(cfg)));
        } else {
            log_targets(&m.name, &cfg.group, &targets, source, false);
        }
        probers.push(Some(p));
    }
    probers
}

fn log_targets(member: &str, group: &str, targets: &[IpAddr], source: TargetSource, ipv6: bool) {
    let (member, group) = (member.to_string(), group.to_string());
    log_notice(if targets.is_empty() {
        Notice::NoRouters { member, group, ipv6 }
    } else {
        Notice::Targets {
            member,
            group,
            source,
            targets: targets.to_vec(),
        }
    });
}

/// Logs a notice of failure detection at its level.
fn log_notice(n: Notice) {
    log::log!(n.level(), "{n}");
}

impl Daemon {
    /// Routers may come and go (a default route added after start-up):
    /// re-read them and tell the probers, logging every change.
    pub(super) fn refresh_targets(&mut self, now: Instant) {
        if now < self.next_target_refresh || !self.cfg.detect.targets.is_empty() {
            return;
        }
        self.next_target_refresh = now + TARGET_REFRESH;
        if self.slots.probers().next().is_none() {
            return;
        }
        let routes = match self.nl.routes() {
            Ok(r) => r,
            Err(e) => return log::warn!("reading routes for probe targets: {e}"),
        };
        let (targets, source) = choose_targets(&self.cfg, &routes);
        let (targets6, source6) = choose_targets6(&self.cfg, &routes, self.tap_index);
        let own = own_addresses(&self.cfg);
        let own6 = self.own_addresses6();
        for (_, st) in self.slots.iter_mut() {
            let name = st.cfg.name.clone();
            let v4 = st.prober.as_mut().map(|p| (p, &targets, source, &own));
            let v6 = st.v6.as_mut().map(|v| (&mut v.prober, &targets6, source6, &own6));
            for (p, targets, source, own) in v4.into_iter().chain(v6) {
                refresh_prober(p, targets, source, own, &name, &self.cfg.group);
            }
        }
        self.republish_if_targets_changed();
    }

    /// Our IPv6 addresses, never targets: the members' test addresses and
    /// the group interface's link-local.
    pub(super) fn own_addresses6(&self) -> Vec<IpAddr> {
        let mut own: Vec<IpAddr> = self
            .slots
            .iter()
            .filter_map(|(_, st)| Some(IpAddr::V6(st.v6.as_ref()?.dad.as_ref()?.addr())))
            .collect();
        own.push(IpAddr::V6(ipv6::link_local_from_mac(self.group_mac)));
        own
    }
}

/// A prober's targets after a refresh: routers, else discovery.
fn refresh_prober(
    p: &mut Prober,
    targets: &[IpAddr],
    source: TargetSource,
    own: &[IpAddr],
    member: &str,
    group: &str,
) {
    if targets.is_empty() {
        // No routers (any more): hosts found by discovery serve (ICMP).
        if !p.discovering() {
            p.set_targets(&[]);
            p.set_discovery(Some(own.to_vec()));
        }
    } else if p.discovering() || p.all_targets() != targets {
        // Routers take precedence; a list never mixes them with hosts.
        p.set_discovery(None);
        p.set_targets(targets);
        log_targets(member, group, targets, source, p.ipv6());
    }
}

impl Daemon {
    /// Every prober's targets (the data plane lets only their ARP replies through).
    pub(super) fn probe_targets(&self) -> Vec<IpAddr> {
        let mut all: Vec<IpAddr> = self.slots.probers().flat_map(Prober::all_targets).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Targets found by discovery or changed by a refresh reach the data plane.
    fn republish_if_targets_changed(&mut self) {
        if self.shared.current().plan.targets != self.probe_targets() {
            self.publish();
        }
    }

    pub(super) fn test_addr(&self, slot: Slot) -> Option<Ipv4Addr> {
        match self.slots.prober(slot)?.method() {
            Method::Icmp {
                test_addr: IpAddr::V4(a),
            } => Some(a),
            _ => None,
        }
    }

    /// The member's IPv6 test address, unless it is a duplicate.
    pub(super) fn test_addr6(&self, slot: Slot) -> Option<Ipv6Addr> {
        self.slots.get(slot)?.v6.as_ref()?.test_addr()
    }

    /// The member's probe verdict over both families ([`combine`]).
    pub(super) fn probe_state(&self, slot: Slot) -> ProbeState {
        let Some(st) = self.slots.get(slot) else {
            return ProbeState::Disabled;
        };
        let v4 = st.prober.as_ref().map_or(ProbeState::Disabled, Prober::state);
        let v6 = st.v6.as_ref().map_or(ProbeState::Disabled, Probe6::state);
        combine(v4, v6)
    }

    /// Starts or stops a member's probing with its link. IPv6 in ICMP mode
    /// first runs DAD for the test address; its prober starts once the
    /// address is assigned.
    pub(super) fn start_stop_probers(&mut self, slot: Slot, up: bool, now: Instant) {
        let Some(st) = self.slots.get_mut(slot) else {
            return;
        };
        if let Some(p) = st.prober.as_mut() {
            if up {
                p.start(now);
            } else {
                p.stop();
            }
        }
        if let Some(v6) = st.v6.as_mut() {
            match (&mut v6.dad, up) {
                (Some(d), true) => d.start(now),
                (Some(d), false) => {
                    d.stop();
                    v6.prober.stop();
                }
                (None, true) => v6.prober.start(now),
                (None, false) => v6.prober.stop(),
            }
        }
    }

    /// A member's IPv6 test address follows its MAC: set at take-over and
    /// on a MAC change (DAD again, its solicited-node group joined).
    pub(super) fn sync_test_addr6(&mut self, slot: Slot, now: Instant) {
        let Some(mac) = self.slots.taken(slot).map(|t| t.mac) else {
            return;
        };
        let link_up = self
            .group
            .members()
            .get(usize::from(slot))
            .is_some_and(|m| m.link_up);
        let addr = ipv6::link_local_from_mac(mac);
        let own6 = self.own_addresses6();
        let Some(st) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(v6) = st.v6.as_mut() else { return };
        if v6.prober.discovering() {
            let mut own = own6;
            own.push(IpAddr::V6(addr));
            v6.prober.set_discovery(Some(own));
        }
        let Some(dad) = v6.dad.as_mut() else { return };
        let old = dad.addr();
        if !dad.set_addr(addr) {
            return;
        }
        v6.claim_logged = false;
        v6.prober.set_test_addr(IpAddr::V6(addr));
        v6.prober.stop();
        if link_up {
            dad.start(now);
        }
        log::info!(
            "{}: IPv6 test address {addr} (from MAC {})",
            st.cfg.name,
            crate::wire::ethernet::format(&mac)
        );
        self.move_test_group6(slot, mac, old, addr);
    }

    /// A member listens to the solicited-node group of its test address
    /// `addr` instead of that of `old` (`::`: none before).
    pub(super) fn move_test_group6(&self, slot: Slot, mac: Mac, old: Ipv6Addr, addr: Ipv6Addr) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let (old_group, group) = (ipv6::solicited_node(old), ipv6::solicited_node(addr));
        if !old.is_unspecified() && old_group != group {
            // The new group is reported by the DAD about to run.
            self.leave_test_group6(slot, mac, old);
        }
        if let Err(e) = t.io.rx.join_multicast(ipv6::multicast_mac(group)) {
            log::warn!("{}: {e}", t.io.name);
        }
    }

    /// A member no longer listens to the solicited-node group of its
    /// former test address `old`: left on the socket and by MLD, so
    /// snooping switches stop sending its NS here.
    pub(super) fn leave_test_group6(&self, slot: Slot, mac: Mac, old: Ipv6Addr) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let group = ipv6::solicited_node(old);
        if let Err(e) = t.io.rx.leave_multicast(ipv6::multicast_mac(group)) {
            log::warn!("{}: {e}", t.io.name);
        }
        self.send_on(slot, &frames6::mld_leave(mac, Ipv6Addr::UNSPECIFIED, group));
    }

    /// The link of a member changed (netlink or ETHTOOL_GLINK): its probers
    /// restart or stop, and the group decides.
    pub(super) fn link_changed(&mut self, slot: Slot, up: bool, now: Instant) {
        if self.group.members()[usize::from(slot)].link_up == up {
            return;
        }
        self.start_stop_probers(slot, up, now);
        let acts = self.group.handle(group::Event::Link { slot, up }, now);
        self.perform(acts);
    }

    /// After the group changed: probers repair on one answer while the
    /// whole group is down by probes; ARP probes speak for the bound address.
    pub(super) fn sync_probers(&mut self) {
        let fast = self.group.blackhole();
        for (slot, st) in self.slots.iter_mut() {
            if let Some(p) = st.prober.as_mut() {
                p.set_fast_repair(fast);
                p.set_arp_sender(self.group.bindings().on4(slot).next().map(IpAddr::V4));
            }
            if let Some(v6) = st.v6.as_mut() {
                v6.prober.set_fast_repair(fast);
                let mac = st.taken.as_ref().map(|t| t.mac);
                v6.prober
                    .set_arp_sender(ns_sender(self.group.bindings().on6(slot).next(), mac).map(IpAddr::V6));
            }
        }
    }

    /// Sends what a prober asked for; `v6`: the member's IPv6 prober.
    pub(super) fn prober_outs(&mut self, slot: Slot, outs: Vec<Out>, now: Instant, v6: bool) {
        self.prober_outs_rx(slot, outs, now, v6, None);
    }

    /// [`prober_outs`](Self::prober_outs) for the outputs of a received
    /// reply: `arrival` is the time the prober measured the reply's RTT to
    /// (the kernel's receive time), `now` when the control side handled
    /// it; the probe stream shows both round trips.
    fn prober_outs_rx(
        &mut self,
        slot: Slot,
        outs: Vec<Out>,
        now: Instant,
        v6: bool,
        arrival: Option<Instant>,
    ) {
        for o in outs {
            match o {
                Out::Echo {
                    target,
                    mac,
                    seq,
                    counter,
                } => {
                    let src = if v6 {
                        self.slots.prober6(slot).map(Prober::method)
                    } else {
                        self.slots.prober(slot).map(Prober::method)
                    };
                    let (Some(t), Some(Method::Icmp { test_addr: src })) = (self.slots.taken(slot), src)
                    else {
                        continue;
                    };
                    let id = ProbeId {
                        counter,
                        slot,
                        id: self.icmp_id,
                        seq,
                        test_addr: src,
                        target,
                    };
                    let payload = self.probe_key.seal(&id);
                    let f = match (src, target) {
                        (IpAddr::V4(s), IpAddr::V4(d)) => {
                            frames::echo_request(t.mac, mac, s, d, self.icmp_id, seq, &payload)
                        }
                        (IpAddr::V6(s), IpAddr::V6(d)) => {
                            frames6::echo6_request(t.mac, mac, s, d, self.icmp_id, seq, &payload)
                        }
                        _ => continue,
                    };
                    self.send_on(slot, &f);
                }
                Out::Arp { sender, target } => {
                    let Some(t) = self.slots.taken(slot) else {
                        continue;
                    };
                    let f = match (sender, target) {
                        (IpAddr::V4(s), IpAddr::V4(d)) => frames::arp_request(t.mac, s, d),
                        // Never from `::`: that is a DAD probe for the target's address.
                        (IpAddr::V6(s), IpAddr::V6(d)) if !s.is_unspecified() => {
                            // ARP mode: unicast to the pinned MAC (a
                            // reachability probe); else to the target's
                            // solicited-node group.
                            let pinned = self
                                .slots
                                .prober6(slot)
                                .filter(|p| p.method() == Method::Arp)
                                .and_then(|p| p.target_mac(target));
                            frames6::neighbor_solicit(t.mac, s, d, pinned)
                        }
                        _ => continue,
                    };
                    self.send_on(slot, &f);
                }
                Out::State(_) => {
                    let state = self.probe_state(slot);
                    let acts = self.group.handle(group::Event::Probe { slot, state }, now);
                    self.perform(acts);
                }
                Out::Notice(n) => log_notice(n),
                Out::Result {
                    seq,
                    target,
                    rtt,
                    rtt_avg,
                    rtt_dev,
                } => {
                    if !self.control.has_watchers() {
                        continue;
                    }
                    let ev = probe_event(
                        ProbeTimes {
                            epoch: self.epoch,
                            arrival,
                            now,
                        },
                        self.group.members()[usize::from(slot)].name.clone(),
                        seq,
                        target,
                        (rtt, rtt_avg, rtt_dev),
                    );
                    let Ok(mut line) = serde_json::to_string(&ev) else {
                        continue;
                    };
                    line.push('\n');
                    // A watcher that is gone or does not keep up is dropped.
                    self.control.broadcast(line.as_bytes());
                }
            }
        }
    }

    /// Sends a frame the daemon built on a member (no offloads); never
    /// waits when the member has a probe socket (a full queue is a counted
    /// drop: the probe counts as lost, the request goes unanswered).
    pub(super) fn send_on(&self, slot: Slot, frame: &[u8]) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        if let Some(ps) = &t.io.probe_sock {
            let c = &t.io.counters.control_tx;
            return match ps.try_send(frame).map_err(SendError::from) {
                Ok(()) => c.pass(frame.len()),
                Err(SendError::QueueFull | SendError::Refused) => c.drop(DropReason::TxQueueFull),
                Err(SendError::Io(e)) => {
                    c.drop(DropReason::IoError);
                    log::trace!("sending on {}: {e}", t.io.name);
                }
            };
        }
        let mut f = Vec::with_capacity(VNET_HDR_LEN + frame.len());
        f.resize(VNET_HDR_LEN, 0);
        f.extend_from_slice(frame);
        if let Err(e) = t.io.send_control(&f) {
            log::trace!("sending on {}: {e}", t.io.name);
        }
    }

    /// A probed member's filtered probe socket (see `sys::probesock`), and
    /// the test address it takes ARP requests for. Without one (logged),
    /// probe frames come through the member's data socket.
    pub(super) fn open_probe_socket(
        &self,
        slot: Slot,
        link: &crate::netlink::LinkInfo,
    ) -> (Option<crate::sys::probesock::ProbeSocket>, Option<Ipv4Addr>) {
        if self.slots.prober(slot).is_none() && self.slots.prober6(slot).is_none() {
            return (None, None);
        }
        let ta = self.test_addr(slot);
        match crate::sys::probesock::ProbeSocket::open(link.index, ta) {
            Ok(s) => (Some(s), ta),
            Err(e) => {
                log::warn!(
                    "probe socket on {}: {e}; probe frames share the data socket",
                    link.name
                );
                (None, None)
            }
        }
    }

    /// Handles what the data plane queued for the probers, member by member,
    /// a bounded number each turn.
    pub(super) fn drain_probe_queues(&mut self) {
        let queues: Vec<_> = self
            .slots
            .taken_all()
            .map(|(_, t)| t.io.probes.rx.clone())
            .collect();
        let mut more = false;
        let mut handled = 0;
        for rx in queues {
            for _ in 0..PROBE_FRAMES_PER_TURN {
                match rx.try_recv() {
                    Ok(pf) => {
                        self.on_probe_frame(pf);
                        handled += 1;
                    }
                    Err(_) => break,
                }
            }
            more |= !rx.is_empty();
        }
        if more {
            // Edge-triggered waker: come back at once for the rest.
            if let Some(ct) = self.shared.control.get() {
                let _ = ct.waker.wake();
            }
        }
        // Targets change with answers (discovery) or polls (below).
        if handled > 0 {
            self.republish_if_targets_changed();
        }
    }

    /// The MACs other members' probers see `target` answer from now.
    fn answering_elsewhere(&self, slot: Slot, target: IpAddr, now: Instant) -> Vec<Mac> {
        let mut v: Vec<Mac> = self
            .slots
            .iter()
            .filter(|(s, _)| *s != slot)
            .filter_map(|(_, st)| {
                let p = match target {
                    IpAddr::V4(_) => st.prober.as_ref(),
                    IpAddr::V6(_) => st.v6.as_ref().map(|v| &v.prober),
                };
                p?.answering_mac(target, now)
            })
            .collect();
        v.dedup();
        v
    }

    /// A probe frame from the data plane: a request for a test address
    /// (ARP or echo), an ARP reply from a target to a member, or an echo
    /// reply whose id and tag the data plane verified.
    pub(super) fn on_probe_frame(&mut self, pf: ProbeFrame) {
        let slot = pf.slot;
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let (mac, counters) = (t.mac, t.io.counters.clone());
        let test_addr = self.test_addr(slot);
        let test6 = self.test_addr6(slot);
        // The IPv6 test address answers (NS, ping6) only once DAD passed.
        let assigned6 = self
            .slots
            .get(slot)
            .and_then(|s| s.v6.as_ref()?.dad.as_ref())
            .is_some_and(|d| d.assigned());
        let now = Instant::now();
        // The RTT the prober measures (and estimates from) ends when the
        // kernel received the reply; without its timestamp, when the data
        // plane read it.
        let arrival = reply_arrival(pf.kernel_at, pf.at, now);
        let input = frames::probe_input(
            pf.bytes(),
            slot,
            mac,
            test_addr,
            test6,
            self.icmp_id,
            &self.probe_key,
        );
        // Checked here too: the control side trusts no frame it did not check.
        let is_v6 = crate::wire::ethernet::Frame::new_checked(pf.bytes())
            .is_ok_and(|f| f.ethertype() == crate::wire::ethernet::ethertype::IPV6);
        let (outs, v6) = match input {
            ProbeInput::AnswerEcho(_) | ProbeInput::AnswerNs(_) | ProbeInput::AnswerMld(_)
                if is_v6 && !assigned6 =>
            {
                return
            }
            ProbeInput::AnswerArp(reply)
            | ProbeInput::AnswerEcho(reply)
            | ProbeInput::AnswerNs(reply)
            | ProbeInput::AnswerMld(reply) => {
                return self.send_on(slot, &reply);
            }
            ProbeInput::Duplicate {
                mac,
                dad_probe,
                defence,
            } => {
                if assigned6 && dad_probe {
                    return self.send_on(slot, &defence);
                }
                return self.duplicate6(slot, mac, now);
            }
            ProbeInput::ArpReply { from, mac } => {
                let elsewhere = self.answering_elsewhere(slot, from, now);
                let p = match from {
                    IpAddr::V4(_) => self.slots.prober_mut(slot),
                    IpAddr::V6(_) => self.slots.prober6_mut(slot),
                };
                match p {
                    Some(p) => (
                        p.on_arp_reply_seen(from, mac, &elsewhere, arrival, now),
                        from.is_ipv6(),
                    ),
                    None => return,
                }
            }
            ProbeInput::EchoReply {
                from,
                eth_src,
                seq,
                counter,
            } => {
                let p = match from {
                    IpAddr::V4(_) => self.slots.prober_mut(slot),
                    IpAddr::V6(_) => self.slots.prober6_mut(slot),
                };
                match p {
                    Some(p) => (
                        p.on_echo_reply(from, eth_src, seq, counter, arrival, now),
                        from.is_ipv6(),
                    ),
                    None => return,
                }
            }
            ProbeInput::NotProbe => return counters.control_tx.drop(DropReason::NotProbe),
            ProbeInput::Ignored => return,
        };
        self.prober_outs_rx(slot, outs, now, v6, Some(arrival));
    }

    /// Another host claims the member's IPv6 test address. While DAD runs:
    /// a duplicate, logged, and no IPv6 probing on that member until its
    /// address changes. Once assigned, the address is kept; the claim is
    /// logged once.
    fn duplicate6(&mut self, slot: Slot, mac: Mac, now: Instant) {
        let Some(st) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(v6) = st.v6.as_mut() else { return };
        let Some(dad) = v6.dad.as_mut() else { return };
        if !dad.conflict() {
            if dad.assigned() && !std::mem::replace(&mut v6.claim_logged, true) {
                log::warn!(
                    "{}: {} advertises IPv6 test address {}; keeping it",
                    st.cfg.name,
                    crate::wire::ethernet::format(&mac),
                    dad.addr()
                );
            }
            return;
        }
        v6.prober.stop();
        log::error!(
            "{}: IPv6 test address {} is in use by {}; no IPv6 probing on {}",
            st.cfg.name,
            dad.addr(),
            crate::wire::ethernet::format(&mac),
            st.cfg.name
        );
        let state = self.probe_state(slot);
        let acts = self.group.handle(group::Event::Probe { slot, state }, now);
        self.perform(acts);
        self.publish();
    }

    /// Runs the DAD of the members' IPv6 test addresses.
    pub(super) fn poll_dad(&mut self, now: Instant) {
        let due: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(_, s)| s.taken.is_some())
            .filter(|(_, s)| {
                s.v6.as_ref()
                    .and_then(|v| v.dad.as_ref()?.next_deadline())
                    .is_some_and(|d| d <= now)
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in due {
            let Some(mac) = self.slots.taken(slot).map(|t| t.mac) else {
                continue;
            };
            let Some(st) = self.slots.get_mut(slot) else {
                continue;
            };
            let Some(v6) = st.v6.as_mut() else { continue };
            let Some(dad) = v6.dad.as_mut() else { continue };
            match dad.poll(now) {
                Some(DadOut::Probe(a)) => {
                    // Join the solicited-node group first (RFC 4862 5.4.2),
                    // so snooping switches let the NS for it through.
                    let group = ipv6::solicited_node(a);
                    let join = frames6::mld_report(mac, Ipv6Addr::UNSPECIFIED, group, true);
                    self.send_on(slot, &join);
                    let f = frames6::neighbor_solicit(mac, Ipv6Addr::UNSPECIFIED, a, None);
                    self.send_on(slot, &f);
                }
                Some(DadOut::Assigned(a)) => {
                    v6.prober.start(now);
                    log::info!("{}: IPv6 test address {a} passed DAD; probing", st.cfg.name);
                    self.publish();
                }
                None => {}
            }
        }
    }

    /// Runs the probers' timers.
    pub(super) fn poll_probers(&mut self, now: Instant) {
        let due: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(_, s)| s.taken.is_some())
            .filter(|(_, s)| {
                s.prober
                    .as_ref()
                    .and_then(|p| p.next_deadline())
                    .is_some_and(|d| d <= now)
            })
            .map(|(slot, _)| slot)
            .collect();
        let due6: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(_, s)| s.taken.is_some())
            .filter(|(_, s)| {
                s.v6.as_ref()
                    .and_then(|v| v.prober.next_deadline())
                    .is_some_and(|d| d <= now)
            })
            .map(|(slot, _)| slot)
            .collect();
        let polled = !due.is_empty() || !due6.is_empty();
        for slot in due {
            let Some(p) = self.slots.prober_mut(slot) else {
                continue;
            };
            let outs = p.poll(now);
            self.prober_outs(slot, outs, now, false);
        }
        for slot in due6 {
            let Some(p) = self.slots.prober6_mut(slot) else {
                continue;
            };
            let outs = p.poll(now);
            self.prober_outs(slot, outs, now, true);
        }
        if polled {
            // A poll may retire or replace a target.
            self.republish_if_targets_changed();
        }
    }

    /// Reads the carrier of physical NICs directly (see `sys::ethtool`).
    pub(super) fn poll_links(&mut self, now: Instant) {
        if now < self.next_link_poll {
            return;
        }
        self.next_link_poll = now + self.cfg.detect.link_poll;
        let Some(reader) = self.link_reader.as_ref() else {
            return;
        };
        let mut changes = Vec::new();
        for (slot, t) in self.slots.taken_all().filter(|(_, t)| t.polled) {
            if let Ok(up) = reader.link_up(&t.io.name) {
                if self
                    .group
                    .members()
                    .get(usize::from(slot))
                    .is_some_and(|m| m.link_up != up)
                {
                    changes.push((slot, up));
                }
            }
        }
        for (slot, up) in changes {
            self.link_changed(slot, up, now);
        }
    }

    /// Schedules the repeats of a gratuitous ARP (or unsolicited neighbour
    /// advertisement) just sent.
    pub(super) fn schedule_garp(&mut self, addr: std::net::IpAddr, slot: Slot, now: Instant) {
        self.garps.retain(|g| g.addr != addr);
        if self.cfg.detect.garp_count > 1 {
            self.garps.push(PendingGarp {
                at: now + GARP_INTERVAL,
                addr,
                slot,
                left: self.cfg.detect.garp_count - 1,
            });
        }
    }

    pub(super) fn garp_tick(&mut self, now: Instant) {
        let due: Vec<PendingGarp> = self.garps.iter().copied().filter(|g| g.at <= now).collect();
        self.garps.retain(|g| g.at > now);
        for mut g in due {
            // The address may have moved again meanwhile: then the new
            // binding's own announcements are what counts.
            if self.group.bindings().slot_of(g.addr) != Some(g.slot) {
                continue;
            }
            self.send_announcement(g.addr, g.slot);
            g.left -= 1;
            if g.left > 0 {
                g.at = now + GARP_INTERVAL;
                self.garps.push(g);
            }
        }
    }

    pub(super) fn detection_deadline(&self) -> Option<Instant> {
        let probers = self.slots.probers().filter_map(Prober::next_deadline);
        let dads = self
            .slots
            .iter()
            .filter_map(|(_, s)| s.v6.as_ref()?.dad.as_ref()?.next_deadline());
        let garps = self.garps.iter().map(|g| g.at);
        let refresh = (self.cfg.detect.targets.is_empty() && self.slots.probers().next().is_some())
            .then_some(self.next_target_refresh);
        let polled = self.link_reader.is_some() && self.slots.taken_all().map(|(_, t)| t).any(|t| t.polled);
        let poll = polled.then_some(self.next_link_poll);
        probers
            .chain(dads)
            .chain(garps)
            .chain(poll)
            .chain(refresh)
            .chain(self.group.next_deadline())
            .min()
    }
}

/// When a probe reply reached the host: the kernel's receive time, else
/// the data plane's read time; never after `now` (the handling time).
fn reply_arrival(kernel_at: Option<Instant>, read_at: Instant, now: Instant) -> Instant {
    kernel_at.unwrap_or(read_at).min(now)
}

/// The times a probe stream line is built from.
#[derive(Debug, Clone, Copy)]
struct ProbeTimes {
    /// The stream's time zero.
    epoch: Instant,
    /// When the reply reached the host (None: not a reply).
    arrival: Option<Instant>,
    /// When the control side handled it.
    now: Instant,
}

/// The probe stream's line for a prober's result: NETRTT is the RTT the
/// prober measured (to the reply's arrival), RTT adds the daemon's own
/// delay from the arrival to its handling.
fn probe_event(
    times: ProbeTimes,
    interface: String,
    seq: u16,
    target: IpAddr,
    (rtt, rtt_avg, rtt_dev): (Option<Duration>, Option<Duration>, Option<Duration>),
) -> crate::control::ProbeEvent {
    let us = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let delay = times
        .arrival
        .map_or(Duration::ZERO, |a| times.now.saturating_duration_since(a));
    crate::control::ProbeEvent {
        time_ms: u64::try_from(times.now.saturating_duration_since(times.epoch).as_millis())
            .unwrap_or(u64::MAX),
        interface,
        seq,
        target: target.to_string(),
        net_rtt_us: us(rtt),
        rtt_us: us(rtt.map(|r| r.saturating_add(delay))),
        rtt_avg_us: us(rtt_avg),
        rtt_dev_us: us(rtt_dev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_data_addr, DetectConfig, MemberConfig, Outbound};

    const TAP: u32 = 7;

    fn cfg(probe: ProbeMode, targets: &[&str]) -> GroupConfig {
        GroupConfig {
            group: "production0".into(),
            interface: "ipmp0".into(),
            data: vec![parse_data_addr("192.0.2.200/24").unwrap().into()],
            members: vec![MemberConfig::new("m0"), MemberConfig::new("m1")],
            outbound: Outbound::Flow,
            detect: DetectConfig {
                probe: Some(probe),
                targets: targets.iter().map(|t| t.parse().unwrap()).collect(),
                ..DetectConfig::default()
            },
            routes: vec![],
            status_world_readable: false,
            force: false,
            qdisc_bypass: false,
            inbound_fastpath: true,
            outbound_fastpath: true,
            run_dir: "/run/ipmpd".into(),
        }
    }

    fn route(gw: &str, oif: u32) -> RouteInfo {
        RouteInfo {
            table: 254,
            protocol: 3,
            kind: 1,
            dst: None,
            dst_len: 0,
            gateway: Some(gw.parse().unwrap()),
            oif: Some(oif),
        }
    }

    #[test]
    fn ipv6_targets_are_configured_else_link_local_next_hops_on_the_group() {
        let routes = [
            route("fe80::1", TAP),
            route("fe80::1", TAP),
            route("fe80::2", TAP + 1),
            route("2001:db8::1", TAP),
            route("192.0.2.1", TAP),
        ];
        let c = cfg(ProbeMode::Icmp, &[]);
        let fe80_1: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(
            choose_targets6(&c, &routes, TAP),
            (vec![fe80_1], TargetSource::Routers)
        );
        assert_eq!(
            choose_targets(&c, &routes),
            (
                vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
                TargetSource::Routers
            )
        );
        // Configured targets are split by family; none of a family: that
        // family has no targets (it is not probed).
        let c = cfg(ProbeMode::Icmp, &["192.0.2.9", "2001:db8::9"]);
        let (v6, _) = choose_targets6(&c, &routes, TAP);
        assert_eq!(v6, vec!["2001:db8::9".parse::<IpAddr>().unwrap()]);
        let (v4, _) = choose_targets(&c, &routes);
        assert_eq!(v4, vec!["192.0.2.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn the_ns_sender_is_a_bound_address_else_the_members_link_local_never_unspecified() {
        let mac = [0x02, 0, 0, 0, 0, 0x10];
        let bound: Ipv6Addr = "2001:db8::200".parse().unwrap();
        assert_eq!(ns_sender(Some(bound), Some(mac)), Some(bound));
        let ll = ns_sender(None, Some(mac)).unwrap();
        assert_eq!(ll, ipv6::link_local_from_mac(mac));
        assert!(ipv6::is_link_local(&ll) && !ll.is_unspecified());
        // Not taken over yet: no MAC, nothing to send from.
        assert_eq!(ns_sender(None, None), None);
    }

    #[test]
    fn ipv6_probers_by_mode() {
        let counter = ProbeCounter::default();
        let build = |c: &GroupConfig, routes: &[RouteInfo]| build_probers6(c, routes, TAP, 1, &counter);
        // ICMP without IPv4 test addresses: IPv6 alone, with DAD, discovery
        // when there are no routers.
        let p = build(&cfg(ProbeMode::Icmp, &[]), &[]);
        assert!(p.iter().all(|p| p
            .as_ref()
            .is_some_and(|p| p.dad.is_some() && p.prober.discovering())));
        assert!(build_probers(&cfg(ProbeMode::Icmp, &[]), &[], 1, &counter)
            .iter()
            .all(Option::is_none));
        // Only IPv4 targets configured: no IPv6 probing.
        assert!(build(&cfg(ProbeMode::Icmp, &["192.0.2.1"]), &[])
            .iter()
            .all(Option::is_none));
        // ARP mode: only with IPv6 targets, and without a test address.
        assert!(build(&cfg(ProbeMode::Arp, &[]), &[]).iter().all(Option::is_none));
        let p = build(&cfg(ProbeMode::Arp, &["fe80::1"]), &[]);
        assert!(p.iter().all(|p| p.as_ref().is_some_and(|p| p.dad.is_none()
            && p.prober.method() == Method::Arp
            && p.test_addr().is_none())));
        assert!(build(&cfg(ProbeMode::Off, &["fe80::1"]), &[])
            .iter()
            .all(Option::is_none));
    }

    /// The probe stream's two round trips, from a real prober: NETRTT ends
    /// at the kernel's receive time, RTT at the control side's handling.
    #[test]
    fn probe_event_splits_network_and_daemon_time() {
        let ms = Duration::from_millis;
        let target: IpAddr = "192.0.2.1".parse().unwrap();
        let test_addr: IpAddr = "192.0.2.2".parse().unwrap();
        let mac: Mac = [2, 0, 0, 0, 0, 1];
        // One ICMP probe: resolve the target, then wait for the echo.
        let run = |kernel_at_after: Option<Duration>| {
            let mut p = Prober::new(Method::Icmp { test_addr }, "m0", "g", ms(700), &[target], 5);
            let t0 = Instant::now();
            p.start(t0);
            let mut now = t0;
            let echo = loop {
                let outs = p.poll(now);
                if outs.iter().any(|o| matches!(o, Out::Arp { .. })) {
                    p.on_arp_reply(target, mac, now);
                }
                if let Some(e) = outs.into_iter().find_map(|o| match o {
                    Out::Echo { seq, counter, .. } => Some((seq, counter)),
                    _ => None,
                }) {
                    break e;
                }
                now += ms(1);
            };
            let sent = now;
            let read_at = sent + ms(3);
            let handled = sent + ms(10);
            let arrival = reply_arrival(kernel_at_after.map(|d| sent + d), read_at, handled);
            let outs = p.on_echo_reply(target, mac, echo.0, echo.1, arrival, handled);
            let (seq, rtt, avg, dev) = outs
                .into_iter()
                .find_map(|o| match o {
                    Out::Result {
                        seq,
                        rtt,
                        rtt_avg,
                        rtt_dev,
                        ..
                    } => Some((seq, rtt, rtt_avg, rtt_dev)),
                    _ => None,
                })
                .expect("a result");
            let times = ProbeTimes {
                epoch: t0,
                arrival: Some(arrival),
                now: handled,
            };
            (
                probe_event(times, "m0".into(), seq, target, (rtt, avg, dev)),
                handled - t0,
            )
        };
        // The kernel stamped the reply 1 ms after the probe left; the data
        // plane read it at 3 ms, the control side handled it at 10 ms.
        let (ev, at) = run(Some(ms(1)));
        assert_eq!(ev.net_rtt_us, Some(1_000));
        assert_eq!(ev.rtt_us, Some(10_000));
        assert_eq!(ev.time_ms, at.as_millis() as u64);
        assert_eq!(ev.interface, "m0");
        assert_eq!(ev.target, "192.0.2.1");
        // No kernel stamp: NETRTT ends at the data plane's read time.
        let (ev, _) = run(None);
        assert_eq!(ev.net_rtt_us, Some(3_000));
        assert_eq!(ev.rtt_us, Some(10_000));
        // A stamp after the handling (a clock step) is the handling time.
        let (ev, _) = run(Some(ms(50)));
        assert_eq!(ev.net_rtt_us, Some(10_000));
        assert_eq!(ev.rtt_us, Some(10_000));
    }

    /// A loss: no round trips, whatever the times.
    #[test]
    fn probe_event_of_a_loss_has_no_round_trips() {
        let t0 = Instant::now();
        let times = ProbeTimes {
            epoch: t0,
            arrival: None,
            now: t0 + Duration::from_millis(1_500),
        };
        let ev = probe_event(
            times,
            "m0".into(),
            7,
            "192.0.2.1".parse().unwrap(),
            (None, None, None),
        );
        assert_eq!(
            (ev.net_rtt_us, ev.rtt_us, ev.time_ms, ev.seq),
            (None, None, 1_500, 7)
        );
    }
}
