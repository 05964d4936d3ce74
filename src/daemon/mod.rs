//! The daemon: start-up in the order that makes a data address mean
//! "ready", the control event loop, and teardown in reverse.

mod detection;
pub mod identity;
pub mod member;
#[cfg(test)]
mod model_tests;
pub mod panics;
mod reload;
pub mod rundir;
mod slots;
pub mod state;
mod status;

pub use reload::Reloader;

use crate::config::{DataAddr, GroupConfig};
use crate::control::server::Server;
use crate::datapath::arp::{gratuitous_arp, igmp_general_query};
use crate::datapath::buckets::Slot;
use crate::datapath::counters::MemberCounters;
use crate::datapath::frame::Mac;
use crate::datapath::plan::{Plan, Port};
use crate::datapath::shell::{DataPlane, MemberIo, Shared, Table};
use crate::datapath::vnet::VNET_HDR_LEN;
use crate::detect::probe::ProbeState;
use crate::group::{self, Group};
use crate::netlink::{self, EventSocket, Handle, LinkInfo};
use crate::sys::packet::{RxSocket, TxSocket};
use crate::sys::tap::Tap;
use crate::sys::{self, sysctl};
use member::Isolation;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rundir::PidFile;
use slots::{SlotState, Slots, Taken};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the control side waits for both data threads to take up a new
/// table before announcing a binding (they take it within microseconds
/// unless wedged).
const TAKE_UP_TIMEOUT: Duration = Duration::from_millis(200);
/// How often counters are logged at debug level.
const COUNTER_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often the control loop checks that the data threads are alive.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

const NL: Token = Token(0);
const SIG_TERM: Token = Token(1);
const SIG_HUP: Token = Token(2);
/// The data plane handed over probe frames.
const PROBE: Token = Token(3);
/// The control socket's listener.
const CONTROL: Token = Token(4);
/// Its connections: this token and the next `server::MAX_CLIENTS`.
const CONTROL_CLIENTS: usize = 64;
/// Poll events taken per wake-up.
const EVENTS_CAPACITY: usize = 128;

/// A start-up refusal (exit status 2) or a failure while running (1).
#[derive(Debug)]
pub enum Error {
    Refused(String),
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Refused(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Refused(s) | Error::Failed(s) => f.write_str(s),
        }
    }
}

fn refused(e: impl std::fmt::Display) -> Error {
    Error::Refused(e.to_string())
}

/// Signal pipes: SIGINT/SIGTERM end the daemon, SIGHUP is reported.
struct Signals {
    term: UnixStream,
    hup: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn register() -> io::Result<Signals> {
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

    fn pending(s: &mut UnixStream) -> bool {
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

/// The running group. Field order is teardown order: the data plane stops
/// first, then the members' sockets close and they are restored, then the
/// group interface goes away.
struct Daemon {
    dataplane: Option<DataPlane>,
    shared: Arc<Shared>,
    /// Per-member configuration, prober and I/O, by slot.
    slots: Slots,
    tap: Arc<Tap>,
    tap_index: u32,
    nl: Handle,
    group: Group,
    cfg: GroupConfig,
    group_mac: Mac,
    seed: u64,
    generation: u64,
    mtu: u32,
    /// Seeds probers' jitter; ICMP id of our probes; zero of probe timestamps.
    secret: u64,
    /// Authenticates probes (SipHash key) and numbers them (never repeats).
    probe_key: crate::detect::frames::ProbeKey,
    probe_counter: crate::detect::probe::ProbeCounter,
    icmp_id: u16,
    epoch: Instant,
    garps: Vec<detection::PendingGarp>,
    link_reader: Option<crate::sys::ethtool::LinkReader>,
    next_link_poll: Instant,
    next_target_refresh: Instant,
    /// The control socket and its clients (`ipmpstat -p` watchers among them).
    control: Server,
    /// Re-reads the configuration (SIGHUP, `ipmpadm reload`).
    reloader: Option<Reloader>,
    /// Set once the teardown ran (explicitly or from Drop on an error path).
    shut_down: bool,
    /// The members' original settings on disk, for a start after a crash.
    state: state::StateHandle,
    _pid: PidFile,
}

impl Drop for Daemon {
    /// Any exit, including a start-up step failing after the data plane
    /// started, runs the full teardown: nothing is left half-configured.
    fn drop(&mut self) {
        self.shutdown();
    }
}

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
        if let Some(a) = addrs.iter().find(|a| a.addr == IpAddr::V4(d.addr)) {
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
    // IPv6 stays off on the group interface until IPv6 support; the kernel
    // answers ARP only for addresses on ipmp0 and announces the right source.
    sysctl::write("ipv6", tap.name(), "disable_ipv6", "1").map_err(refused)?;
    sysctl::write("ipv4", tap.name(), "arp_ignore", "1").map_err(refused)?;
    sysctl::write("ipv4", tap.name(), "arp_announce", "2").map_err(refused)?;

    let seed = sys::random_u64();
    let probe_counter = crate::detect::probe::ProbeCounter::default();
    let probers = detection::build_probers(&cfg, &routes, seed, &probe_counter);
    let members: Vec<group::Member> = cfg
        .members
        .iter()
        .zip(&probers)
        .map(|(m, p)| {
            group::Member::new(&m.name)
                .standby(m.standby)
                .probing(p.is_some())
        })
        .collect();
    let policy = group::Policy {
        failback: cfg.detect.failback,
        flap_limit: cfg.detect.link_flap_limit,
    };
    let group = Group::new(&cfg.group, policy, members);
    let mut slots = Slots::default();
    for (i, (m, prober)) in cfg.members.iter().zip(probers).enumerate() {
        slots.insert(
            i as Slot,
            SlotState {
                cfg: m.clone(),
                prober,
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
    for a in d.cfg.data.clone() {
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
        d.nl.add_address(d.tap_index, a.addr, a.prefix_len)
            .map_err(refused)?;
    }
    // Static routes through the group, now that its addresses are there.
    for (dst, gw) in d.cfg.routes.clone() {
        d.nl.add_route_v4(d.tap_index, dst.addr, dst.prefix_len, gw)
            .map_err(|e| refused(format!("route {dst}: {e}")))?;
    }
    log::info!(
        "group {} ready on {} ({} of {} members active, data {})",
        d.cfg.group,
        d.cfg.interface,
        d.group.active().len(),
        d.cfg.members.len(),
        d.cfg
            .data
            .iter()
            .map(DataAddr::to_string)
            .collect::<Vec<_>>()
            .join(" ")
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
    fn slot_by_index(&self, ifindex: u32) -> Option<Slot> {
        self.slots.by_ifindex(ifindex)
    }

    /// Takes a member over: isolate, open sockets, read link state, join.
    fn take(&mut self, slot: Slot, link: &LinkInfo, now: Instant) -> io::Result<()> {
        let isolation = Isolation::take(&mut self.nl, link, &self.state)?;
        let (probe_sock, test_addr) = self.open_probe_socket(slot, link);
        let io = Arc::new(MemberIo {
            slot,
            ifindex: link.index,
            name: link.name.clone(),
            rx: RxSocket::open(link.index, &link.name)?,
            tx: TxSocket::open(link.index, &link.name)?,
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
            isolation,
        });
        let up = now_link.up && now_link.lower_up;
        if let Some(p) = self.slots.prober_mut(slot) {
            if up {
                p.start(now);
            } else {
                p.stop();
            }
        }
        let probe = self
            .slots
            .prober(slot)
            .map_or(ProbeState::Disabled, |p| p.state());
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
    fn update_mtu(&mut self) {
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

    fn publish(&mut self) -> u64 {
        self.generation += 1;
        let offline: Vec<bool> = self
            .group
            .members()
            .iter()
            .map(group::Member::out_of_service)
            .collect();
        let plan = Plan {
            generation: self.generation,
            group_mac: self.group_mac,
            ports: (0..self.slots.len())
                .map(|i| {
                    self.slots.taken(i as Slot).map(|t| Port {
                        mac: t.mac,
                        accept: !offline.get(i).copied().unwrap_or(true),
                        test_addr: self.test_addr(i as Slot),
                    })
                })
                .collect(),
            buckets: self.group.buckets().clone(),
            nominee: self.group.nominee(),
            bindings: self
                .group
                .bindings()
                .iter()
                .filter_map(|(a, s)| s.map(|s| (a, s)))
                .collect(),
            outbound: self.cfg.outbound,
            seed: self.seed,
            probing: self.slots.probers().next().is_some(),
            targets: self.probe_targets(),
            icmp_id: self.icmp_id,
            probe_key: Some(self.probe_key.clone()),
        };
        let members = (0..self.slots.len())
            .map(|i| self.slots.taken(i as Slot).map(|t| t.io.clone()))
            .collect();
        self.shared.publish(Table { plan, members });
        self.generation
    }

    fn set_multicast(&self, slot: Slot, join: bool) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let r = if join {
            t.io.rx.join_all_multicast()
        } else {
            t.io.rx.leave_all_multicast()
        };
        if let Err(e) = r {
            log::warn!("{}: {e}", t.io.name);
        }
    }

    /// Performs the group's actions. Announcements and IGMP re-queries wait
    /// until the data threads run with the new table (when they run at all).
    fn perform(&mut self, acts: Vec<group::Action>) {
        let running = self.dataplane.is_some();
        let mut published = None;
        for a in acts {
            match a {
                group::Action::Publish => published = Some(self.publish()),
                group::Action::Announce { addr, slot } => {
                    if let (Some(g), true) = (published, running) {
                        if !self.shared.wait_taken(g, TAKE_UP_TIMEOUT) {
                            log::warn!("data plane slow to take up table {g}");
                        }
                    }
                    self.announce(addr, slot);
                    self.schedule_garp(addr, slot, Instant::now());
                }
                group::Action::Log(level, msg) => log::log!(level, "{msg}"),
                group::Action::Carrier(on) => {
                    if let Err(e) = self.tap.set_carrier(on) {
                        log::error!("carrier of {}: {e}", self.cfg.interface);
                    }
                }
                group::Action::NomineeMoved { from, to } => {
                    if let Some(f) = from {
                        self.set_multicast(f, false);
                    }
                    if let Some(t) = to {
                        self.set_multicast(t, true);
                        log::info!(
                            "multicast and broadcast now through {} in group {}",
                            self.group.members()[usize::from(t)].name,
                            self.cfg.group
                        );
                        if running {
                            if let Some(g) = published {
                                self.shared.wait_taken(g, TAKE_UP_TIMEOUT);
                            }
                            self.requery_igmp(t);
                        }
                    }
                }
            }
        }
        self.sync_probers();
    }

    /// Gratuitous ARP from the member an address is now bound to.
    fn announce(&self, addr: Ipv4Addr, slot: Slot) {
        if self.send_garp(addr, slot) {
            log::info!(
                "{addr} now bound to {} (gratuitous ARP sent)",
                self.group.members()[usize::from(slot)].name
            );
        }
    }

    fn send_garp(&self, addr: Ipv4Addr, slot: Slot) -> bool {
        let Some(t) = self.slots.taken(slot) else {
            return false;
        };
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&gratuitous_arp(t.mac, addr));
        match t.io.send_control(&f) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("gratuitous ARP for {addr} on {}: {e}", t.io.name);
                false
            }
        }
    }

    /// Makes the kernel re-send its IGMP reports (they leave through the new
    /// nominee) by injecting a general query into the group interface.
    fn requery_igmp(&self, slot: Slot) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&igmp_general_query(t.mac));
        if let Err(e) = self.tap.write(&f) {
            log::warn!("IGMP re-query on {}: {e}", self.cfg.interface);
        }
    }

    fn event_loop(
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
            self.drain_probe_queues();
            let now = Instant::now();
            self.poll_probers(now);
            if self.group.next_deadline().is_some_and(|d| d <= now) {
                let acts = self.group.handle(group::Event::Tick, now);
                self.perform(acts);
            }
            self.garp_tick(now);
            self.poll_links(now);
            self.refresh_targets(now);
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

    fn on_netlink(&mut self, ev: netlink::Event) -> Result<(), Error> {
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
                    if let Some(p) = self.slots.prober_mut(slot) {
                        p.stop();
                    }
                    let acts = self.group.handle(group::Event::Gone { slot }, now);
                    self.perform(acts);
                    self.publish();
                }
            }
            netlink::Event::AddrAdded(a) if a.index == self.tap_index => {
                if let IpAddr::V4(v4) = a.addr {
                    let acts = self.group.handle(group::Event::AddressAdded(v4), now);
                    self.perform(acts);
                }
            }
            netlink::Event::AddrRemoved(a) if a.index == self.tap_index => {
                if let IpAddr::V4(v4) = a.addr {
                    let acts = self.group.handle(group::Event::AddressRemoved(v4), now);
                    self.perform(acts);
                }
            }
            netlink::Event::AddrAdded(_) | netlink::Event::AddrRemoved(_) => {}
            netlink::Event::Overrun => self.resync()?,
        }
        Ok(())
    }

    fn member_changed(&mut self, slot: Slot, l: &LinkInfo, now: Instant) {
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
            let bound: Vec<Ipv4Addr> = self.group.bindings().on(slot).collect();
            for addr in bound {
                self.announce(addr, slot);
            }
        }
    }

    fn member_appeared(&mut self, slot: Slot, l: &LinkInfo, now: Instant) {
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
    /// group interface's addresses.
    fn resync(&mut self) -> Result<(), Error> {
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
        let on_tap: Vec<Ipv4Addr> = addrs
            .iter()
            .filter(|a| a.index == self.tap_index)
            .filter_map(|a| match a.addr {
                IpAddr::V4(v) => Some(v),
                IpAddr::V6(_) => None,
            })
            .collect();
        let bound: Vec<Ipv4Addr> = self.group.bindings().iter().map(|(a, _)| a).collect();
        let now = Instant::now();
        for a in bound.iter().filter(|a| !on_tap.contains(a)) {
            let acts = self.group.handle(group::Event::AddressRemoved(*a), now);
            self.perform(acts);
        }
        for a in on_tap.iter().filter(|a| !bound.contains(a)) {
            let acts = self.group.handle(group::Event::AddressAdded(*a), now);
            self.perform(acts);
        }
        Ok(())
    }

    fn log_counters(&self) {
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

    /// Reverse of start-up: addresses off, carrier off, data plane stopped,
    /// sockets closed, members given back; the group interface goes away
    /// when the TAP (a later field) is dropped.
    fn shutdown(&mut self) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        if let Ok(addrs) = self.nl.addresses() {
            for a in addrs.iter().filter(|a| a.index == self.tap_index) {
                if let IpAddr::V4(v4) = a.addr {
                    let _ = self.nl.del_address(self.tap_index, v4, a.prefix_len);
                }
            }
        }
        let _ = self.tap.set_carrier(false);
        if let Some(dp) = self.dataplane.take() {
            drop(dp);
        }
        self.log_counters();
        // Close the packet sockets before the members are restored.
        self.shared.publish(Table {
            plan: Plan::empty(self.group_mac, self.seed),
            members: Vec::new(),
        });
        for (_, s) in self.slots.iter_mut() {
            drop(s.taken.take());
        }
    }
}
