//! Start-up: refusals first (nothing changed yet), then every step in the
//! order that makes a data address on the group interface mean "ready";
//! a step that fails leaves the rest to the teardown. Also taking a member
//! over, at start or when it appears later.

use super::event_loop::Signals;
use super::member::{self, Isolation};
use super::rundir::{self, PidFile};
use super::slots::{SlotState, Slots, Taken};
use super::{detection, identity, refused, state, Daemon, Error, Reloader, CONTROL, CONTROL_CLIENTS, PROBE};
use crate::config::{GroupConfig, IfAddr};
use crate::control::server::Server;
use crate::datapath::buckets::Slot;
use crate::datapath::counters::MemberCounters;
use crate::datapath::plan::Plan;
use crate::datapath::shell::{DataPlane, MemberIo, Shared, Table};
use crate::group::{self, Group};
use crate::netlink::{EventSocket, Handle, LinkInfo};
use crate::sys::packet::{RxSocket, TxSocket};
use crate::sys::tap::Tap;
use crate::sys::{self, sysctl};
use mio::Poll;
use std::io;
use std::sync::Arc;
use std::time::Instant;

/// The run directory checked, the group's pid lock taken, and whatever a
/// daemon of this group that died left changed on its members given back.
/// Nothing about the members is read before this.
fn lock_group(cfg: &GroupConfig, nl: &mut Handle) -> Result<PidFile, Error> {
    rundir::prepare(&cfg.run_dir).map_err(Error::Refused)?;
    let sock = crate::control::socket::socket_path(&cfg.run_dir, &cfg.group);
    let state_path = state::state_path(&cfg.run_dir, &cfg.group);
    for (p, kind) in [
        (cfg.pid_file(), rundir::Kind::File),
        (state_path, rundir::Kind::File),
        (sock, rundir::Kind::Socket),
    ] {
        rundir::check_entry(&p, kind).map_err(Error::Refused)?;
    }
    let pid = PidFile::lock(&cfg.pid_file(), &cfg.group).map_err(Error::Refused)?;
    state::restore_stale(&cfg.run_dir, &cfg.group, nl)?;
    Ok(pid)
}

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(cfg: GroupConfig, reloader: Option<Reloader>) -> Result<(), Error> {
    cfg.validate().map_err(Error::Refused)?;
    for (cap, name) in [
        (sys::CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (sys::CAP_NET_RAW, "CAP_NET_RAW"),
    ] {
        if !sys::has_capability(cap) {
            return Err(refused(format!("ipmpd needs {name} (run it as root)")));
        }
    }
    if !sys::has_capability(sys::CAP_BPF) && !sys::has_capability(sys::CAP_SYS_ADMIN) {
        return Err(refused("ipmpd needs CAP_BPF (run it as root)"));
    }
    // Probe tags need a secret key: no weaker fallback.
    let probe_key = detection::new_probe_key()?;
    // Registered first: a signal during start-up still ends in a clean teardown.
    let mut signals = Signals::register().map_err(|e| refused(format!("signal setup: {e}")))?;
    // Subscribed before state is read, so no change between the two is lost.
    let mut events = EventSocket::new().map_err(|e| refused(format!("netlink: {e}")))?;
    let mut nl = Handle::new().map_err(|e| refused(format!("netlink: {e}")))?;
    let pid = lock_group(&cfg, &mut nl)?;
    let links = nl.links().map_err(refused)?;
    let addrs = nl.addresses().map_err(refused)?;
    let routes = nl.routes().map_err(refused)?;

    if links.iter().any(|l| l.name == cfg.interface) {
        return Err(refused(format!(
            "interface {} already exists (another group, or a leftover): choose another --interface or remove it",
            cfg.interface
        )));
    }
    for d in &cfg.data {
        if let Some(a) = addrs.iter().find(|a| a.addr == d.addr) {
            let on = links
                .iter()
                .find(|l| l.index == a.index)
                .map_or("another interface", |l| l.name.as_str());
            return Err(refused(format!(
                "data address {} is already configured on {on}",
                d.addr
            )));
        }
    }
    let mut present = Vec::new();
    for m in &cfg.members {
        match links.iter().find(|l| l.name == m.name) {
            Some(l) => {
                let tcx = sys::bpf::tcx_ingress_count(l.index)
                    .map_err(|e| refused(format!("querying tcx programs on {}: {e}", l.name)))?;
                member::check_member(l, &links, &addrs, &routes, tcx, cfg.force).map_err(Error::Refused)?;
                present.push(Some(l.clone()));
            }
            None if m.optional => {
                log::info!(
                    "optional member {} is not present; it joins when it appears",
                    m.name
                );
                present.push(None);
            }
            None => {
                return Err(refused(format!(
                    "member {} does not exist (use --optional-member to let it join when it appears)",
                    m.name
                )))
            }
        }
    }
    let poll = Poll::new().map_err(|e| refused(format!("epoll: {e}")))?;
    let control = Server::bind(
        &cfg.run_dir,
        &cfg.group,
        cfg.status_world_readable,
        poll.registry(),
        CONTROL,
        CONTROL_CLIENTS,
    )
    .map_err(refused)?;

    // From here on every step is undone by drops if a later one fails.
    let tap = Arc::new(Tap::create(&cfg.interface).map_err(refused)?);
    let tap_link = nl
        .link_by_name(tap.name())
        .map_err(refused)?
        .ok_or_else(|| refused(format!("{} vanished after creation", tap.name())))?;
    let group_mac = identity::derive_mac(&identity::machine_id(), &cfg.group);
    nl.set_mac(tap_link.index, group_mac).map_err(refused)?;
    // IPv6 follows the host: the group interface takes
    // net.ipv6.conf.default like any new interface, so a host with IPv6
    // off (or without it) runs the group IPv4 only. Where it is on, the
    // link-local (from the group's MAC, set above) and every other address
    // is bound like an IPv4 one. The TAP has no carrier until a member
    // forwards, and Linux starts DAD (and forms the link-local) only on
    // carrier: no address is tested while no member can carry the probe.
    let ipv6 = detection::ipv6_on(tap.name());
    if !ipv6 {
        // Refused before any member is touched: nothing half-configured.
        if let Some(what) = cfg.first_ipv6_use() {
            return Err(refused(format!(
                "{what} needs IPv6, which is off on {} (net.ipv6.conf.default.disable_ipv6, or no IPv6 on this host)",
                tap.name()
            )));
        }
        log::info!(
            "IPv6 is off on {} (net.ipv6.conf.default.disable_ipv6, or no IPv6 on this host): IPv4 only",
            tap.name()
        );
    }
    // The kernel answers ARP only for addresses on ipmp0 and announces the
    // right source.
    sysctl::write("ipv4", tap.name(), "arp_ignore", "1").map_err(refused)?;
    sysctl::write("ipv4", tap.name(), "arp_announce", "2").map_err(refused)?;

    let seed = sys::random_u64();
    let probe_counter = crate::detect::probe::ProbeCounter::default();
    let probers = detection::build_probers(&cfg, &routes, seed, &probe_counter);
    let probers6 = if ipv6 {
        detection::build_probers6(&cfg, &routes, tap_link.index, seed, &probe_counter)
    } else {
        cfg.members.iter().map(|_| None).collect()
    };
    if cfg.probe_mode() == crate::config::ProbeMode::Icmp
        && probers.iter().all(Option::is_none)
        && probers6.iter().all(Option::is_none)
    {
        // ICMP probing asked for and nothing to probe from: refused rather
        // than run on link state alone.
        return Err(refused(format!(
            "--probe icmp: no member has an IPv4 test address, and IPv6 is off on {}",
            tap.name()
        )));
    }
    let members: Vec<group::Member> = cfg
        .members
        .iter()
        .zip(probers.iter().zip(&probers6))
        .map(|(m, (p, p6))| {
            group::Member::new(&m.name)
                .standby(m.standby)
                .probing(p.is_some() || p6.is_some())
        })
        .collect();
    let policy = group::Policy {
        failback: cfg.detect.failback,
        flap_limit: cfg.detect.link_flap_limit,
    };
    let group = Group::new(&cfg.group, policy, members);
    let mut slots = Slots::default();
    for (i, ((m, prober), v6)) in cfg.members.iter().zip(probers).zip(probers6).enumerate() {
        slots.insert(
            i as Slot,
            SlotState {
                cfg: m.clone(),
                prober,
                v6,
                taken: None,
            },
        );
    }
    let waker =
        Arc::new(mio::Waker::new(poll.registry(), PROBE).map_err(|e| refused(format!("eventfd: {e}")))?);
    let shared = Shared::new(
        tap.clone(),
        Table {
            plan: Plan::empty(group_mac, seed),
            members: Vec::new(),
        },
    );
    let state = state::StateFile::new(&cfg.run_dir, &cfg.group);
    let mut d = Daemon {
        dataplane: None,
        egress: None,
        egress_refused: false,
        tc: Default::default(),
        shared,
        slots,
        tap,
        tap_index: tap_link.index,
        nl,
        group,
        cfg,
        group_mac,
        seed,
        generation: 0,
        mtu: tap_link.mtu,
        secret: sys::random_u64(),
        probe_key,
        probe_counter,
        icmp_id: (std::process::id() as u16) ^ (tap_link.index as u16).rotate_left(8),
        epoch: Instant::now(),
        garps: Vec::new(),
        link_reader: crate::sys::ethtool::LinkReader::new().ok(),
        next_link_poll: Instant::now(),
        next_target_refresh: Instant::now() + crate::detect::TARGET_REFRESH,
        control,
        reloader,
        shut_down: false,
        fastpath_refused: false,
        state,
        _pid: pid,
    };
    let now = Instant::now();
    for (slot, l) in present.iter().enumerate() {
        if let Some(l) = l {
            // Isolate and open sockets; link state is read after, synchronously.
            d.take(slot as Slot, l, now).map_err(refused)?;
        }
    }
    d.update_mtu();
    d.nl.set_up(d.tap_index, true).map_err(refused)?;
    // Up, the TAP has its default qdisc: what counts as no traffic control.
    d.read_tc_baseline();
    // IPv4 data addresses are bound before the kernel has them, so the
    // first ARP is answered by the right member; an IPv6 one is bound when
    // the kernel reports it past DAD (event loop).
    for a in d.cfg.data.clone().into_iter().filter(|a| a.addr.is_ipv4()) {
        let acts = d.group.handle(group::Event::AddressAdded(a.addr), now);
        d.perform(acts);
    }
    d.publish();
    let _ = d.shared.control.set(crate::datapath::shell::ControlTap { waker });
    d.dataplane =
        Some(DataPlane::start(d.shared.clone()).map_err(|e| refused(format!("starting data plane: {e}")))?);
    if let Some(n) = d.group.nominee() {
        d.set_multicast(n, true);
    }
    d.tap.set_carrier(!d.group.active().is_empty()).map_err(refused)?;
    // Data addresses last: an address on the group interface means ready.
    for a in d.cfg.data.clone() {
        d.nl.add_ip_address(d.tap_index, a.addr, a.prefix_len)
            .map_err(refused)?;
    }
    // Static routes through the group, now that its addresses are there.
    for (dst, gw) in d.cfg.routes.clone() {
        d.nl.add_route(d.tap_index, dst.addr, dst.prefix_len, gw)
            .map_err(|e| refused(format!("route {dst}: {e}{}", route_exists_hint(&e))))?;
    }
    log::info!(
        "{}",
        ready_line(
            &d.cfg.group,
            &d.cfg.interface,
            d.group.active().len(),
            d.cfg.members.len(),
            &d.cfg.data
        )
    );
    if let Err(e) = crate::sys::notify::notify("READY=1") {
        log::warn!("telling systemd we are ready: {e}");
    }
    let r = d.event_loop(poll, &mut events, &mut signals);
    let _ = crate::sys::notify::notify("STOPPING=1");
    let started = Instant::now();
    let name = d.cfg.interface.clone();
    drop(d);
    log::info!("{name} removed, members restored in {:?}", started.elapsed());
    r
}

impl Daemon {
    /// Takes a member over: isolate, open sockets, read link state, join.
    pub(super) fn take(&mut self, slot: Slot, link: &LinkInfo, now: Instant) -> io::Result<()> {
        let isolation = Isolation::take(&mut self.nl, link, &self.state)?;
        let (probe_sock, test_addr) = self.open_probe_socket(slot, link);
        let io = Arc::new(MemberIo {
            slot,
            ifindex: link.index,
            name: link.name.clone(),
            rx: RxSocket::open(link.index, &link.name)?,
            tx: TxSocket::open(link.index, &link.name, self.cfg.qdisc_bypass)?,
            counters: Arc::new(MemberCounters::default()),
            probes: Default::default(),
            probe_sock,
            probe_sock_addr: test_addr,
        });
        let now_link = self
            .nl
            .link_by_index(link.index)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} vanished", link.name)))?;
        let Some(state) = self.slots.get_mut(slot) else {
            return Err(io::Error::other(format!("{} has no slot", link.name)));
        };
        state.taken = Some(Taken {
            ifindex: link.index,
            mac: now_link.mac.unwrap_or([0; 6]),
            mtu: now_link.mtu,
            polled: now_link.kind.is_none(),
            io,
            fast: Default::default(),
            egress_base: self.egress.as_ref().map(|e| e.sent(slot)).unwrap_or_default(),
            isolation,
        });
        let up = now_link.up && now_link.lower_up;
        self.sync_test_addr6(slot, now);
        self.start_stop_probers(slot, up, now);
        let probe = self.probe_state(slot);
        let acts = self.group.handle(
            group::Event::Joined {
                slot,
                link_up: up,
                probe,
                mac: now_link.mac,
            },
            now,
        );
        self.perform(acts);
        Ok(())
    }

    /// The group MTU is the smallest member MTU.
    pub(super) fn update_mtu(&mut self) {
        let Some(mtu) = self.slots.taken_all().map(|(_, t)| t).map(|t| t.mtu).min() else {
            return;
        };
        if mtu != self.mtu {
            match self.nl.set_mtu(self.tap_index, mtu) {
                Ok(()) => {
                    log::info!("{} MTU set to {mtu} (smallest member MTU)", self.cfg.interface);
                    self.mtu = mtu;
                }
                Err(e) => log::error!("setting {} MTU to {mtu}: {e}", self.cfg.interface),
            }
        }
    }
}

/// The line logged once the group is up: its members, then its data
/// addresses or, when it starts without any (they come later: DHCP,
/// SLAAC, `ip addr add`), that it has none yet.
fn ready_line(group: &str, interface: &str, active: usize, members: usize, data: &[IfAddr]) -> String {
    let noun = if members == 1 { "member" } else { "members" };
    let data = match data {
        [] => "no data addresses yet".to_string(),
        [one] => format!("data address {one}"),
        many => format!(
            "data addresses {}",
            many.iter().map(IfAddr::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    format!("group {group} ready on {interface}: {active} of {members} {noun} active, {data}")
}

/// What the administrator can do when a route of the group is refused
/// because the kernel has one of the same destination and metric (routes
/// are added exclusively, so a default route on another interface is in
/// the way); empty for other errors.
pub(super) fn route_exists_hint(e: &crate::netlink::NetlinkError) -> &'static str {
    if e.is_exists() {
        " (a route to that destination with the same metric is already there, \
         e.g. a default route on another interface: remove it, or leave the \
         route to the group)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_reads_cleanly_with_and_without_data() {
        let a = |s: &str| crate::config::parse_if_addr(s).unwrap();
        assert_eq!(
            ready_line("g", "ipmp0", 1, 1, &[]),
            "group g ready on ipmp0: 1 of 1 member active, no data addresses yet"
        );
        assert_eq!(
            ready_line("g", "ipmp0", 2, 2, &[a("192.0.2.200/24")]),
            "group g ready on ipmp0: 2 of 2 members active, data address 192.0.2.200/24"
        );
        assert_eq!(
            ready_line("g", "ipmp0", 0, 3, &[a("192.0.2.200/24"), a("2001:db8::200/64")]),
            "group g ready on ipmp0: 0 of 3 members active, data addresses 192.0.2.200/24, 2001:db8::200/64"
        );
    }
}
