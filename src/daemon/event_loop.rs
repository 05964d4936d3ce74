//! The control loop: one mio poll over netlink events, signal pipes, the
//! data plane's probe waker and the control socket; each turn handles
//! signals, netlink events (members changing, appearing, vanishing;
//! addresses on the group interface), probe frames, timers, and only then
//! the control clients, so no client delays a failover.

use super::{
    member, Daemon, Error, COUNTER_LOG_INTERVAL, EVENTS_CAPACITY, HEALTH_INTERVAL, NL, SIG_HUP, SIG_TERM,
    TAKE_UP_TIMEOUT,
};
use crate::datapath::buckets::Slot;
use crate::datapath::shell::DataPlane;
use crate::group;
use crate::netlink::{self, EventSocket, LinkInfo};
use crate::sys;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Signal pipes: SIGINT/SIGTERM end the daemon, SIGHUP is reported.
pub(super) struct Signals {
    term: UnixStream,
    hup: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    pub(super) fn register() -> io::Result<Signals> {
        let (term, term_w) = UnixStream::pair()?;
        let (hup, hup_w) = UnixStream::pair()?;
        term.set_nonblocking(true)?;
        hup.set_nonblocking(true)?;
        let ids = vec![
            signal_hook::low_level::pipe::register(libc::SIGINT, term_w.try_clone()?)?,
            signal_hook::low_level::pipe::register(libc::SIGTERM, term_w)?,
            signal_hook::low_level::pipe::register(libc::SIGHUP, hup_w)?,
        ];
        Ok(Signals { term, hup, ids })
    }

    pub(super) fn pending(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 16];
        let mut any = false;
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                break;
            }
            any = true;
        }
        any
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl Daemon {
    pub(super) fn event_loop(
        &mut self,
        mut poll: Poll,
        events: &mut EventSocket,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        let reg = poll.registry();
        let fail = |e: io::Error| Error::Failed(e.to_string());
        reg.register(&mut SourceFd(&events.as_raw_fd()), NL, Interest::READABLE)
            .map_err(fail)?;
        reg.register(
            &mut SourceFd(&signals.term.as_raw_fd()),
            SIG_TERM,
            Interest::READABLE,
        )
        .map_err(fail)?;
        reg.register(
            &mut SourceFd(&signals.hup.as_raw_fd()),
            SIG_HUP,
            Interest::READABLE,
        )
        .map_err(fail)?;
        let mut mio_events = Events::with_capacity(EVENTS_CAPACITY);
        let mut nl_events = Vec::new();
        let mut next_counters = Instant::now() + COUNTER_LOG_INTERVAL;
        loop {
            let now = Instant::now();
            let mut deadline = next_counters.min(now + HEALTH_INTERVAL);
            if let Some(d) = self.detection_deadline() {
                deadline = deadline.min(d);
            }
            if let Some(d) = self.egress_deadline() {
                deadline = deadline.min(d);
            }
            if let Some(d) = self.control.next_deadline() {
                deadline = deadline.min(d);
            }
            if self.control.busy() {
                // Connections still waiting: take more after this turn's work.
                deadline = now;
            }
            match poll.poll(&mut mio_events, Some(deadline.saturating_duration_since(now))) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => r.map_err(fail)?,
            }
            // Control clients are read now, answered after the group's
            // own work below: no client delays a failover.
            let now = Instant::now();
            let mut requests = self.control.resume(now);
            for ev in mio_events.iter() {
                if self.control.owns(ev.token()) {
                    requests.extend(self.control.on_event(ev.token(), now));
                }
            }
            if Signals::pending(&mut signals.term) {
                log::info!("shutting down group {}", self.cfg.group);
                return Ok(());
            }
            if Signals::pending(&mut signals.hup) {
                if let Err(e) = self.try_reload() {
                    log::error!("{e}");
                }
            }
            nl_events.clear();
            if let Err(e) = events.drain(&mut nl_events) {
                log::warn!("netlink events: {e}");
            }
            for ev in nl_events.drain(..) {
                self.on_netlink(ev)?;
            }
            self.reread_qdiscs_if_changed();
            self.drain_probe_queues();
            let now = Instant::now();
            self.poll_probers(now);
            self.poll_dad(now);
            if self.group.next_deadline().is_some_and(|d| d <= now) {
                let acts = self.group.handle(group::Event::Tick, now);
                self.perform(acts);
            }
            self.garp_tick(now);
            self.poll_links(now);
            self.refresh_targets(now);
            self.look_for_captures(now);
            for client in requests {
                let watch = matches!(&client.request, Ok(r) if r.body == crate::control::Request::Probes);
                let resp = match &client.request {
                    Ok(r) => self.handle_request(&r.body, client.uid),
                    Err(e) => crate::control::Reply::error(e),
                };
                self.control.reply(client.id, &resp, watch, Instant::now());
            }
            self.control.expire(Instant::now());
            if self.dataplane.as_ref().is_some_and(DataPlane::failed) {
                return Err(Error::Failed("a data plane thread stopped; shutting down".into()));
            }
            if Instant::now() >= next_counters {
                next_counters = Instant::now() + COUNTER_LOG_INTERVAL;
                self.log_counters();
            }
        }
    }

    pub(super) fn on_netlink(&mut self, ev: netlink::Event) -> Result<(), Error> {
        let now = Instant::now();
        match ev {
            netlink::Event::Link(l) if l.index == self.tap_index => {}
            netlink::Event::Link(l) => {
                if let Some(slot) = self.slot_by_index(l.index) {
                    self.member_changed(slot, &l, now);
                } else if let Some(slot) = self.group.slot_of(&l.name) {
                    if self.slots.taken(slot).is_none() {
                        self.member_appeared(slot, &l, now);
                    }
                }
            }
            netlink::Event::LinkGone { index, .. } if index == self.tap_index => {
                return Err(Error::Failed(format!(
                    "{} was deleted from outside; shutting down",
                    self.cfg.interface
                )));
            }
            netlink::Event::LinkGone { index, .. } => {
                if let Some(slot) = self.slot_by_index(index) {
                    if let Some(mut t) = self.slots.get_mut(slot).and_then(|s| s.taken.take()) {
                        t.isolation.forget();
                    }
                    self.start_stop_probers(slot, false, now);
                    let acts = self.group.handle(group::Event::Gone { slot }, now);
                    self.perform(acts);
                    self.publish();
                }
            }
            netlink::Event::AddrAdded(a) if a.index == self.tap_index => {
                // An IPv6 address is bound once the kernel's DAD for it is
                // over (RTM_NEWADDR comes again then); tentative again (DAD
                // restarts when the carrier returns) or failed: unbound.
                let ev = if a.dad_pending_or_failed() {
                    group::Event::AddressRemoved(a.addr)
                } else {
                    group::Event::AddressAdded(a.addr)
                };
                let acts = self.group.handle(ev, now);
                self.perform(acts);
            }
            netlink::Event::AddrRemoved(a) if a.index == self.tap_index => {
                let acts = self.group.handle(group::Event::AddressRemoved(a.addr), now);
                self.perform(acts);
            }
            netlink::Event::AddrAdded(_) | netlink::Event::AddrRemoved(_) => {}
            netlink::Event::Qdisc { index } if index == self.tap_index => self.note_qdisc_event(),
            netlink::Event::Qdisc { .. } => {}
            netlink::Event::Overrun => self.resync()?,
        }
        Ok(())
    }

    pub(super) fn member_changed(&mut self, slot: Slot, l: &LinkInfo, now: Instant) {
        let Some(t) = self.slots.taken_mut(slot) else {
            return;
        };
        let mut republish = false;
        if let Some(mac) = l.mac {
            if mac != t.mac {
                log::info!("{} changed its MAC address", l.name);
                t.mac = mac;
                republish = true;
            }
        }
        if l.mtu != t.mtu {
            t.mtu = l.mtu;
            self.update_mtu();
        }
        if republish {
            // The IPv6 test address follows the MAC (DAD runs again).
            self.sync_test_addr6(slot, now);
            // Two members with one address would both take the same frames.
            let acts = self.group.handle(group::Event::HwAddr { slot, mac: l.mac }, now);
            self.perform(acts);
        }
        self.link_changed(slot, l.up && l.lower_up, now);
        if republish {
            // Neighbours still hold the old MAC for the addresses bound here:
            // tell them, once the data plane answers with the new one.
            let g = self.publish();
            self.shared.wait_taken(g, TAKE_UP_TIMEOUT);
            let bound: Vec<IpAddr> = self.group.bindings().on(slot).collect();
            for addr in bound {
                self.announce(addr, slot);
            }
        }
    }

    pub(super) fn member_appeared(&mut self, slot: Slot, l: &LinkInfo, now: Instant) {
        let check = (|| -> io::Result<Result<(), String>> {
            let links = self.nl.links()?;
            let addrs = self.nl.addresses()?;
            let routes = self.nl.routes()?;
            let tcx = sys::bpf::tcx_ingress_count(l.index)?;
            Ok(member::check_member(
                l,
                &links,
                &addrs,
                &routes,
                tcx,
                self.cfg.force,
            ))
        })();
        match check {
            Ok(Ok(())) => match self.take(slot, l, now) {
                Ok(()) => {
                    self.update_mtu();
                    self.publish();
                }
                Err(e) => log::error!("cannot take member {}: {e}", l.name),
            },
            Ok(Err(why)) => log::error!("not taking {}: {why}", l.name),
            Err(e) => log::error!("checking member {}: {e}", l.name),
        }
    }

    /// Netlink lost events: re-read the state of the members and of the
    /// group interface's addresses and qdiscs.
    pub(super) fn resync(&mut self) -> Result<(), Error> {
        log::warn!("netlink events were lost; re-reading state");
        let links = self.nl.links().map_err(|e| Error::Failed(e.to_string()))?;
        let addrs = self.nl.addresses().map_err(|e| Error::Failed(e.to_string()))?;
        if !links.iter().any(|l| l.index == self.tap_index) {
            return Err(Error::Failed(format!(
                "{} was deleted from outside",
                self.cfg.interface
            )));
        }
        let slots: Vec<Slot> = self.slots.iter().map(|(s, _)| s).collect();
        for s in slots {
            let slot = usize::from(s);
            let idx = self.slots.taken(s).map(|t| t.ifindex);
            match (idx, idx.and_then(|i| links.iter().find(|l| l.index == i))) {
                (Some(_), Some(l)) => self.on_netlink(netlink::Event::Link(l.clone()))?,
                (Some(i), None) => self.on_netlink(netlink::Event::LinkGone {
                    index: i,
                    name: self.group.members()[slot].name.clone(),
                })?,
                (None, _) => {
                    let name = &self.group.members()[slot].name;
                    if let Some(l) = links.iter().find(|l| &l.name == name).cloned() {
                        self.member_appeared(s, &l, Instant::now());
                    }
                }
            }
        }
        let on_tap: Vec<IpAddr> = addrs
            .iter()
            .filter(|a| a.index == self.tap_index && !a.dad_pending_or_failed())
            .map(|a| a.addr)
            .collect();
        let bound: Vec<IpAddr> = self.group.bindings().iter().map(|(a, _)| a).collect();
        let now = Instant::now();
        for a in bound.iter().filter(|a| !on_tap.contains(a)) {
            let acts = self.group.handle(group::Event::AddressRemoved(*a), now);
            self.perform(acts);
        }
        for a in on_tap.iter().filter(|a| !bound.contains(a)) {
            let acts = self.group.handle(group::Event::AddressAdded(*a), now);
            self.perform(acts);
        }
        self.reread_qdiscs();
        Ok(())
    }

    pub(super) fn log_counters(&self) {
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let c = &self.shared.counters;
        log::debug!("{} from stack: {}", self.cfg.interface, c.from_tap.summary());
        log::debug!("{} to stack: {}", self.cfg.interface, c.to_tap.summary());
        for t in self.slots.taken_all().map(|(_, t)| t) {
            log::debug!("{} in: {}", t.io.name, t.io.counters.rx.summary());
            log::debug!("{} out: {}", t.io.name, t.io.counters.tx.summary());
            log::debug!(
                "{} out (control): {}",
                t.io.name,
                t.io.counters.control_tx.summary()
            );
        }
    }
}
