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
use crate::detect::frames::{self, ProbeId, ProbeInput, ProbeKey, PROBE_KEY_LEN};
use crate::detect::notice::{Notice, TargetSource};
use crate::detect::probe::{Method, Out, ProbeCounter, Prober};
use crate::detect::{GARP_INTERVAL, TARGET_REFRESH};
use crate::group;
use crate::netlink::RouteInfo;
use crate::sys::packet::SendError;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

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

/// Targets: the configured ones, else the routers (next hops of routes)
/// inside the group's subnets: data addresses' and test addresses'.
pub(super) fn choose_targets(cfg: &GroupConfig, routes: &[RouteInfo]) -> (Vec<Ipv4Addr>, TargetSource) {
    if !cfg.detect.targets.is_empty() {
        return (cfg.detect.targets.clone(), TargetSource::Configured);
    }
    let subnets: Vec<(Ipv4Addr, u8)> = cfg
        .data4()
        .chain(cfg.members.iter().filter_map(|m| m.test_address))
        .map(|d| (d.addr, d.prefix_len))
        .collect();
    let mut routers = Vec::new();
    for r in routes {
        if let Some(IpAddr::V4(g)) = r.gateway {
            if subnets.iter().any(|&(n, p)| in_subnet(g, n, p)) && !routers.contains(&g) {
                routers.push(g);
            }
        }
    }
    (routers, TargetSource::Routers)
}

/// Addresses that are ours: never probe targets.
fn own_addresses(cfg: &GroupConfig) -> Vec<Ipv4Addr> {
    cfg.data4()
        .chain(cfg.members.iter().filter_map(|m| m.test_address))
        .map(|d| d.addr)
        .collect()
}

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
    let mut probers = Vec::new();
    for (i, m) in cfg.members.iter().enumerate() {
        let method = match (mode, m.test_address) {
            (ProbeMode::Arp, _) => Method::Arp,
            (ProbeMode::Icmp, Some(t)) => {
                if cfg.members[..i]
                    .iter()
                    .any(|o| o.test_address.map(|a| a.addr) == Some(t.addr))
                {
                    log_notice(Notice::TestAddressNotUnique {
                        addr: t.addr,
                        member: m.name.clone(),
                    });
                    probers.push(None);
                    continue;
                }
                Method::Icmp { test_addr: t.addr }
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
            });
            p.set_discovery(Some(own_addresses(cfg)));
        } else {
            log_targets(&m.name, &cfg.group, &targets, source);
        }
        probers.push(Some(p));
    }
    probers
}

fn log_targets(member: &str, group: &str, targets: &[Ipv4Addr], source: TargetSource) {
    let (member, group) = (member.to_string(), group.to_string());
    log_notice(if targets.is_empty() {
        Notice::NoRouters { member, group }
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
        let own = own_addresses(&self.cfg);
        for (_, st) in self.slots.iter_mut() {
            let Some(p) = st.prober.as_mut() else { continue };
            if targets.is_empty() {
                // No routers (any more): hosts found by discovery serve.
                if !p.discovering() {
                    p.set_targets(&[]);
                    p.set_discovery(Some(own.clone()));
                }
            } else if p.discovering() || p.all_targets() != targets {
                // Routers take precedence; a list never mixes them with hosts.
                p.set_discovery(None);
                p.set_targets(&targets);
                log_targets(&st.cfg.name, &self.cfg.group, &targets, source);
            }
        }
        self.republish_if_targets_changed();
    }

    /// Every prober's targets (the data plane lets only their ARP replies through).
    pub(super) fn probe_targets(&self) -> Vec<Ipv4Addr> {
        let mut all: Vec<Ipv4Addr> = self.slots.probers().flat_map(Prober::all_targets).collect();
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
            Method::Icmp { test_addr } => Some(test_addr),
            Method::Arp => None,
        }
    }

    /// The link of a member changed (netlink or ETHTOOL_GLINK): its prober
    /// restarts or stops, and the group decides.
    pub(super) fn link_changed(&mut self, slot: Slot, up: bool, now: Instant) {
        if self.group.members()[usize::from(slot)].link_up == up {
            return;
        }
        if let Some(p) = self.slots.prober_mut(slot) {
            if up {
                p.start(now);
            } else {
                p.stop();
            }
        }
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
                p.set_arp_sender(self.group.bindings().on4(slot).next());
            }
        }
    }

    pub(super) fn prober_outs(&mut self, slot: Slot, outs: Vec<Out>, now: Instant) {
        for o in outs {
            match o {
                Out::Echo {
                    target,
                    mac,
                    seq,
                    counter,
                } => {
                    let (Some(t), Some(src)) = (self.slots.taken(slot), self.test_addr(slot)) else {
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
                    let f = frames::echo_request(
                        t.mac,
                        mac,
                        src,
                        target,
                        self.icmp_id,
                        seq,
                        &self.probe_key.seal(&id),
                    );
                    self.send_on(slot, &f);
                }
                Out::Arp { sender, target } => {
                    let Some(t) = self.slots.taken(slot) else {
                        continue;
                    };
                    let f = frames::arp_request(t.mac, sender, target);
                    self.send_on(slot, &f);
                }
                Out::State(state) => {
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
                    let us = |d: Option<std::time::Duration>| d.map(|d| d.as_micros() as u64);
                    let ev = crate::control::ProbeEvent {
                        time_ms: now.saturating_duration_since(self.epoch).as_millis() as u64,
                        interface: self.group.members()[usize::from(slot)].name.clone(),
                        seq,
                        target: target.to_string(),
                        rtt_us: us(rtt),
                        rtt_avg_us: us(rtt_avg),
                        rtt_dev_us: us(rtt_dev),
                    };
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
                Err(SendError::QueueFull) => c.drop(DropReason::TxQueueFull),
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
        if self.slots.prober(slot).is_none() {
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
    fn answering_elsewhere(&self, slot: Slot, target: Ipv4Addr, now: Instant) -> Vec<Mac> {
        let mut v: Vec<Mac> = self
            .slots
            .iter()
            .filter(|(s, _)| *s != slot)
            .filter_map(|(_, st)| st.prober.as_ref()?.answering_mac(target, now))
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
        let now = Instant::now();
        let outs = match frames::probe_input(pf.bytes(), slot, mac, test_addr, self.icmp_id, &self.probe_key)
        {
            ProbeInput::AnswerArp(reply) | ProbeInput::AnswerEcho(reply) => {
                return self.send_on(slot, &reply);
            }
            ProbeInput::ArpReply { from, mac } => {
                let elsewhere = self.answering_elsewhere(slot, from, now);
                match self.slots.prober_mut(slot) {
                    Some(p) => p.on_arp_reply_seen(from, mac, &elsewhere, pf.at),
                    None => return,
                }
            }
            ProbeInput::EchoReply {
                from,
                eth_src,
                seq,
                counter,
            } => match self.slots.prober_mut(slot) {
                Some(p) => p.on_echo_reply(from, eth_src, seq, counter, pf.at),
                None => return,
            },
            ProbeInput::NotProbe => return counters.control_tx.drop(DropReason::NotProbe),
            ProbeInput::Ignored => return,
        };
        self.prober_outs(slot, outs, now);
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
        let polled = !due.is_empty();
        for slot in due {
            let Some(p) = self.slots.prober_mut(slot) else {
                continue;
            };
            let outs = p.poll(now);
            self.prober_outs(slot, outs, now);
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
        let garps = self.garps.iter().map(|g| g.at);
        let refresh = (self.cfg.detect.targets.is_empty() && self.slots.probers().next().is_some())
            .then_some(self.next_target_refresh);
        let polled = self.link_reader.is_some() && self.slots.taken_all().map(|(_, t)| t).any(|t| t.polled);
        let poll = polled.then_some(self.next_link_poll);
        probers
            .chain(garps)
            .chain(poll)
            .chain(refresh)
            .chain(self.group.next_deadline())
            .min()
    }
}
