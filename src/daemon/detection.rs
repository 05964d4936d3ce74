//! The daemon side of failure detection: probers fed with frames from the
//! data plane and with the clock, ETHTOOL_GLINK polling, gratuitous ARP
//! repetition. The rules live in `detect::probe` and `group`; this is I/O.

use super::Daemon;
use crate::config::{GroupConfig, ProbeMode};
use crate::datapath::buckets::Slot;
use crate::datapath::shell::ProbeFrame;
use crate::datapath::vnet::VNET_HDR_LEN;
use crate::detect::frames::{self, ProbeInput};
use crate::detect::probe::{Method, Out, Prober};
use crate::detect::{GARP_INTERVAL, TARGET_REFRESH};
use crate::group;
use crate::netlink::RouteInfo;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// A gratuitous ARP still to be repeated.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingGarp {
    pub at: Instant,
    pub addr: Ipv4Addr,
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
pub(super) fn choose_targets(cfg: &GroupConfig, routes: &[RouteInfo]) -> (Vec<Ipv4Addr>, &'static str) {
    if !cfg.detect.targets.is_empty() {
        return (cfg.detect.targets.clone(), "configured");
    }
    let subnets: Vec<(Ipv4Addr, u8)> = cfg
        .data
        .iter()
        .chain(cfg.members.iter().filter_map(|m| m.test_address.as_ref()))
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
    (routers, "routers")
}

/// Addresses that are ours: never probe targets.
fn own_addresses(cfg: &GroupConfig) -> Vec<Ipv4Addr> {
    cfg.data
        .iter()
        .chain(cfg.members.iter().filter_map(|m| m.test_address.as_ref()))
        .map(|d| d.addr)
        .collect()
}

/// One prober per probed member, with in.mpathd's refusals logged.
pub(super) fn build_probers(cfg: &GroupConfig, routes: &[RouteInfo], seed: u64) -> Vec<Option<Prober>> {
    let mode = cfg.probe_mode();
    let (fdt, too_small) = cfg.effective_fdt();
    if let Some(msg) = too_small {
        log::warn!("{msg}");
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
                    log::error!(
                        "Test address {} is not unique in group; disabling probe-based failure detection on {}",
                        t.addr,
                        m.name
                    );
                    probers.push(None);
                    continue;
                }
                Method::Icmp { test_addr: t.addr }
            }
            (ProbeMode::Icmp, None) => {
                log::warn!(
                    "No test address configured on interface {}; disabling probe-based failure detection on it",
                    m.name
                );
                probers.push(None);
                continue;
            }
            (ProbeMode::Off, _) => unreachable!("handled above"),
        };
        let mut p = Prober::new(method, &m.name, &cfg.group, fdt, &targets, seed ^ (i as u64 + 1));
        if targets.is_empty() && mode == ProbeMode::Icmp {
            log::info!(
                "No routers for {} of group {}; looking for probe targets with echo requests to 224.0.0.1",
                m.name,
                cfg.group
            );
            p.set_discovery(Some(own_addresses(cfg)));
        } else {
            log_targets(&m.name, &cfg.group, &targets, source);
        }
        probers.push(Some(p));
    }
    probers
}

fn log_targets(member: &str, group: &str, targets: &[Ipv4Addr], source: &str) {
    if targets.is_empty() {
        log::warn!(
            "No probe targets for {member} of group {group}: no routers in its subnets and none configured (--target)"
        );
    } else {
        let list: Vec<String> = targets.iter().map(Ipv4Addr::to_string).collect();
        log::info!(
            "Probe targets for {member} of group {group} ({source}): {}",
            list.join(" ")
        );
    }
}

impl Daemon {
    /// Routers may come and go (a default route added after start-up):
    /// re-read them and tell the probers, logging every change.
    pub(super) fn refresh_targets(&mut self, now: Instant) {
        if now < self.next_target_refresh || !self.cfg.detect.targets.is_empty() {
            return;
        }
        self.next_target_refresh = now + TARGET_REFRESH;
        if self.probers.iter().all(Option::is_none) {
            return;
        }
        let routes = match self.nl.routes() {
            Ok(r) => r,
            Err(e) => return log::warn!("reading routes for probe targets: {e}"),
        };
        let (targets, source) = choose_targets(&self.cfg, &routes);
        let own = own_addresses(&self.cfg);
        for (i, p) in self.probers.iter_mut().enumerate() {
            let Some(p) = p else { continue };
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
                log_targets(&self.cfg.members[i].name, &self.cfg.group, &targets, source);
            }
        }
    }

    pub(super) fn test_addr(&self, slot: Slot) -> Option<Ipv4Addr> {
        match self.probers.get(usize::from(slot))?.as_ref()?.method() {
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
        if let Some(p) = self.probers[usize::from(slot)].as_mut() {
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
        for (i, p) in self.probers.iter_mut().enumerate() {
            if let Some(p) = p {
                p.set_fast_repair(fast);
                p.set_arp_sender(self.group.bindings().on(i as Slot).next());
            }
        }
    }

    pub(super) fn prober_outs(&mut self, slot: Slot, outs: Vec<Out>, now: Instant) {
        for o in outs {
            match o {
                Out::Echo { target, mac, seq } => {
                    let (Some(t), Some(src)) = (self.taken[usize::from(slot)].as_ref(), self.test_addr(slot))
                    else {
                        continue;
                    };
                    let sent_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
                    let nonce = frames::probe_nonce(self.secret, slot, seq);
                    let f = frames::echo_request(
                        t.mac,
                        mac,
                        src,
                        target,
                        self.icmp_id,
                        seq,
                        &frames::probe_payload(sent_ns, nonce),
                    );
                    self.send_on(slot, &f);
                }
                Out::Arp { sender, target } => {
                    let Some(t) = self.taken[usize::from(slot)].as_ref() else {
                        continue;
                    };
                    let f = frames::arp_request(t.mac, sender, target);
                    self.send_on(slot, &f);
                }
                Out::State(state) => {
                    let acts = self.group.handle(group::Event::Probe { slot, state }, now);
                    self.perform(acts);
                }
                Out::Log(level, msg) => log::log!(level, "{msg}"),
                Out::Result {
                    seq,
                    target,
                    rtt,
                    rtt_avg,
                    rtt_dev,
                } => {
                    if self.probe_watchers.is_empty() {
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
                    self.probe_watchers
                        .retain_mut(|w| std::io::Write::write_all(w, line.as_bytes()).is_ok());
                }
            }
        }
    }

    /// Sends a frame the daemon built on a member (no offloads).
    pub(super) fn send_on(&self, slot: Slot, frame: &[u8]) {
        let Some(t) = self.taken[usize::from(slot)].as_ref() else {
            return;
        };
        let mut f = Vec::with_capacity(VNET_HDR_LEN + frame.len());
        f.resize(VNET_HDR_LEN, 0);
        f.extend_from_slice(frame);
        if let Err(e) = t.io.tx.send(&f) {
            log::debug!("sending on {}: {e}", t.io.name);
        }
    }

    /// A probe frame from the data plane: ARP for a test address, an ARP
    /// reply to a member, or an ICMP echo reply to a test address.
    pub(super) fn on_probe_frame(&mut self, pf: ProbeFrame) {
        let slot = pf.slot;
        let Some(mac) = self
            .taken
            .get(usize::from(slot))
            .and_then(|t| t.as_ref())
            .map(|t| t.mac)
        else {
            return;
        };
        let test_addr = self.test_addr(slot);
        let outs = match frames::probe_input(pf.bytes(), slot, mac, test_addr, self.icmp_id, self.secret) {
            ProbeInput::AnswerArp(reply) | ProbeInput::AnswerEcho(reply) => {
                return self.send_on(slot, &reply);
            }
            ProbeInput::ArpReply { from, mac } => match self.probers[usize::from(slot)].as_mut() {
                Some(p) => p.on_arp_reply(from, mac, pf.at),
                None => return,
            },
            ProbeInput::EchoReply { from, seq } => match self.probers[usize::from(slot)].as_mut() {
                Some(p) => p.on_echo_reply(from, seq, pf.at),
                None => return,
            },
            ProbeInput::Foreign { from } => {
                return log::debug!("ignoring echo reply from {from} on slot {slot}: not one of our probes");
            }
            ProbeInput::Ignored => return,
        };
        self.prober_outs(slot, outs, Instant::now());
    }

    /// Runs the probers' timers.
    pub(super) fn poll_probers(&mut self, now: Instant) {
        for slot in 0..self.probers.len() {
            if self.taken[slot].is_none() {
                continue;
            }
            let outs = match self.probers[slot].as_mut() {
                Some(p) if p.next_deadline().is_some_and(|d| d <= now) => p.poll(now),
                _ => continue,
            };
            self.prober_outs(slot as Slot, outs, now);
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
        for (slot, t) in self.taken.iter().enumerate() {
            let Some(t) = t.as_ref().filter(|t| t.polled) else {
                continue;
            };
            if let Ok(up) = reader.link_up(&t.io.name) {
                if up != self.group.members()[slot].link_up {
                    changes.push((slot as Slot, up));
                }
            }
        }
        for (slot, up) in changes {
            self.link_changed(slot, up, now);
        }
    }

    /// Schedules the repeats of a gratuitous ARP just sent.
    pub(super) fn schedule_garp(&mut self, addr: Ipv4Addr, slot: Slot, now: Instant) {
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
            self.send_garp(g.addr, g.slot);
            g.left -= 1;
            if g.left > 0 {
                g.at = now + GARP_INTERVAL;
                self.garps.push(g);
            }
        }
    }

    pub(super) fn detection_deadline(&self) -> Option<Instant> {
        let probers = self.probers.iter().flatten().filter_map(Prober::next_deadline);
        let garps = self.garps.iter().map(|g| g.at);
        let refresh = (self.cfg.detect.targets.is_empty() && self.probers.iter().any(Option::is_some))
            .then_some(self.next_target_refresh);
        let polled = self.link_reader.is_some() && self.taken.iter().flatten().any(|t| t.polled);
        let poll = polled.then_some(self.next_link_poll);
        probers
            .chain(garps)
            .chain(poll)
            .chain(refresh)
            .chain(self.group.next_deadline())
            .min()
    }
}
