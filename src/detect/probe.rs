//! The prober of one member, sans-IO: it is told the time and what arrived,
//! and answers with the probes to send, state changes and typed notices
//! for the log (rendered in `detect::notice`). Its targets are kept in
//! `targets`; each target's round-trip estimate is `detect::rtt`.
//!
//! in.mpathd's rules: a probe every FDT/7 with jitter, 5 consecutive losses
//! fail the member, 10 consecutive acknowledgements repair it, per-target
//! RTT estimation decides when a probe is lost, late replies turn a loss back
//! into an acknowledgement, and a target that alone stops answering is
//! replaced instead of failing the member.
//!
//! What a LAN host cannot forge: each echo carries a counter that never
//! repeats and the daemon's keyed tag over it (checked before a reply gets
//! here), and a reply counts only for the outstanding probe with that
//! counter, from the target's address and from the MAC the probe was sent to.
//! A target's MAC is pinned while it answers: ARP replies from another MAC
//! are ignored until probes to it were lost twice in a row, and even then a
//! MAC that contradicts the one other members still see the target answer
//! from is refused. ARP probing has no nonce (as bonding's arp_validate): its
//! only protection is the pinned MAC.

mod targets;

use super::notice::{Notice, TargetSource};
pub use super::rtt::Rtt;
use super::*;
use crate::wire::ethernet::Address as Mac;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use targets::Target;
pub use targets::{discovery_group, ALL_HOSTS, ALL_HOSTS_MAC, ALL_NODES};

/// The source of probe counters, shared by every prober of a daemon run
/// (also across reloads, which rebuild probers): a counter value is never
/// used twice under one key.
#[derive(Clone, Debug, Default)]
pub struct ProbeCounter(Arc<AtomicU64>);

impl ProbeCounter {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The PROBE column: disabled (no probing), unknown (no targets or no
/// verdict yet), ok, failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeState {
    Disabled,
    Unknown,
    Ok,
    Failed,
}

impl ProbeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeState::Disabled => "disabled",
            ProbeState::Unknown => "unknown",
            ProbeState::Ok => "ok",
            ProbeState::Failed => "failed",
        }
    }
}

/// How a member probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// ICMP (ICMPv6) echo from the member's test address; the family of
    /// the test address is the prober's.
    Icmp { test_addr: IpAddr },
    /// Address resolution to the targets, no test address: ARP requests
    /// for IPv4 targets, neighbour solicitations from a bound IPv6 data
    /// address for IPv6 ones.
    Arp,
}

/// What the prober wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send an ICMP echo request.
    Echo {
        target: IpAddr,
        mac: Mac,
        seq: u16,
        /// Never repeats; the daemon puts it and its keyed tag in the payload.
        counter: u64,
    },
    /// Resolve `target` from `sender`: an ARP request (IPv4; sender
    /// 0.0.0.0 when no address is bound) or a neighbour solicitation
    /// (IPv6; `sender` is never `::`, which would make it a DAD probe).
    Arp { sender: IpAddr, target: IpAddr },
    /// The probe verdict changed.
    State(ProbeState),
    /// Something to tell the operator (the shell logs it).
    Notice(Notice),
    /// A probe was answered (`rtt` Some) or counted lost (None), for `ipmpstat -p`.
    Result {
        seq: u16,
        target: IpAddr,
        rtt: Option<Duration>,
        rtt_avg: Option<Duration>,
        rtt_dev: Option<Duration>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pending,
    Acked,
    Lost,
    /// Lost to a target declared dead: counts for nothing.
    Discounted,
}

#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u16,
    target: IpAddr,
    at: Instant,
    arp: bool,
    status: Status,
    /// Echoes: the probe's counter and the MAC it was sent to.
    counter: u64,
    mac: Option<Mac>,
}

#[derive(Clone, Debug)]
pub struct Prober {
    method: Method,
    member: String,
    group: String,
    configured_fdt: Duration,
    fdt: Duration,
    arp_sender: Option<IpAddr>,
    targets: Vec<Target>,
    rr: usize,
    history: VecDeque<Sent>,
    seq: u16,
    running: bool,
    next_send: Option<Instant>,
    quiet_until: Option<Instant>,
    state: ProbeState,
    fast_repair: bool,
    calm_since: Option<Instant>,
    rng: u64,
    no_targets_logged: bool,
    /// No configured targets and no routers: find hosts with an echo to
    /// the all-hosts group (ICMP only). Our own addresses never qualify.
    discovery: Option<Vec<IpAddr>>,
    /// The outstanding discovery echo (sequence, counter).
    discovery_seq: Option<(u16, u64)>,
    /// Discovery answers beyond the cap were logged this round.
    discovery_capped: bool,
    counter: ProbeCounter,
    /// Answers refused: wrong MAC, unknown or replayed counter.
    rejected: u64,
    /// Probes over IPv6 (an IPv6 test address, or IPv6 targets): for the log.
    ipv6: bool,
}

impl Prober {
    pub fn new(
        method: Method,
        member: &str,
        group: &str,
        fdt: Duration,
        targets: &[IpAddr],
        seed: u64,
    ) -> Prober {
        let mut p = Prober {
            method,
            member: member.to_string(),
            group: group.to_string(),
            configured_fdt: fdt,
            fdt,
            arp_sender: None,
            targets: Vec::new(),
            rr: 0,
            history: VecDeque::with_capacity(PROBE_HISTORY),
            seq: 0,
            running: false,
            next_send: None,
            quiet_until: None,
            state: ProbeState::Unknown,
            fast_repair: false,
            calm_since: None,
            rng: seed | 1,
            no_targets_logged: false,
            discovery: None,
            discovery_seq: None,
            discovery_capped: false,
            counter: ProbeCounter::default(),
            rejected: 0,
            ipv6: match method {
                Method::Icmp { test_addr } => test_addr.is_ipv6(),
                Method::Arp => targets.first().is_some_and(IpAddr::is_ipv6),
            },
        };
        p.set_targets(targets);
        p
    }

    pub fn state(&self) -> ProbeState {
        self.state
    }
    pub fn fdt(&self) -> Duration {
        self.fdt
    }
    pub fn interval(&self) -> Duration {
        self.fdt / PROBE_INTERVALS_PER_FDT
    }
    pub fn method(&self) -> Method {
        self.method
    }
    /// Whether this prober probes over IPv6.
    pub fn ipv6(&self) -> bool {
        self.ipv6
    }

    /// ICMP mode: a new test address (an IPv6 test address follows the
    /// member's MAC). Probing restarts with [`Self::start`].
    pub fn set_test_addr(&mut self, a: IpAddr) {
        if let Method::Icmp { test_addr } = &mut self.method {
            *test_addr = a;
        }
    }

    /// Shares the daemon's counter source (see [`ProbeCounter`]).
    pub fn set_counter(&mut self, c: ProbeCounter) {
        self.counter = c;
    }

    /// Answers refused so far (wrong MAC, unknown or replayed counter).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// A new configured FDT (SIGHUP): history and verdict are kept.
    pub fn set_configured_fdt(&mut self, fdt: Duration) {
        self.configured_fdt = fdt;
        self.fdt = fdt;
        self.calm_since = None;
    }

    /// ARP mode: the data address bound to this member (the target then
    /// learns exactly the binding it should), or 0.0.0.0 when none is.
    pub fn set_arp_sender(&mut self, a: Option<IpAddr>) {
        self.arp_sender = a;
    }

    /// While the whole group has failed by probes with links up (typically
    /// the targets died, not the paths), one acknowledgement repairs.
    pub fn set_fast_repair(&mut self, on: bool) {
        self.fast_repair = on;
    }

    /// The link came up: probing (re)starts with a fresh history; the first
    /// probe goes out at a random point within one interval.
    pub fn start(&mut self, now: Instant) {
        self.running = true;
        self.history.clear();
        self.quiet_until = Some(now + QUIET_PERIOD);
        let first = self.interval().mul_f64(self.random_unit());
        self.next_send = Some(now + first);
    }

    /// The link went down: probing stops and the history is cleared; the
    /// member needs a full repair by probes once the link is back.
    pub fn stop(&mut self) {
        self.running = false;
        self.history.clear();
        self.next_send = None;
        self.quiet_until = None;
        self.state = ProbeState::Failed;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.running {
            return None;
        }
        let losses = self
            .history
            .iter()
            .filter(|s| s.status == Status::Pending)
            .map(|s| self.loss_deadline(s));
        let revive = self.targets.iter().filter_map(|t| t.dead_until);
        losses.chain(revive).chain(self.next_send).min()
    }

    fn loss_deadline(&self, s: &Sent) -> Instant {
        let t = self.targets.iter().find(|t| t.addr == s.target);
        let wait = t.and_then(|t| t.rtt.crtt()).unwrap_or_else(|| self.interval());
        s.at + wait.max(MIN_LOSS_WAIT)
    }

    /// Uniform in [0, 1): xorshift64*, seeded at construction (no clock, no I/O).
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends due probes, counts overdue ones lost, revives dead targets.
    pub fn poll(&mut self, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        if !self.running {
            return out;
        }
        for i in 0..self.history.len() {
            let s = self.history[i];
            if s.status == Status::Pending && now >= self.loss_deadline(&s) {
                self.history[i].status = Status::Lost;
                out.push(Out::Result {
                    seq: s.seq,
                    target: s.target,
                    rtt: None,
                    rtt_avg: None,
                    rtt_dev: None,
                });
                self.unpin_after_two_losses(i);
            }
        }
        for t in &mut self.targets {
            if t.dead_until.is_some_and(|d| now >= d) {
                t.dead_until = None;
                out.push(Out::Notice(Notice::TargetRetry {
                    target: t.addr,
                    member: self.member.clone(),
                }));
            }
        }
        if self.next_send.is_some_and(|t| now >= t) {
            self.send(now, &mut out);
            let next = self.interval().mul_f64(0.5 + 0.5 * self.random_unit());
            self.next_send = Some(now + next);
        }
        self.evaluate(now, &mut out);
        out
    }

    /// The sender of an ARP-mode probe to `target`, if it can be probed:
    /// IPv4 falls back to 0.0.0.0 (an RFC 5227 probe, harmless); IPv6 needs
    /// a bound IPv6 address, since an NS from `::` is a DAD probe that makes
    /// the target believe its own address is duplicated.
    fn arp_sender_for(&self, target: IpAddr) -> Option<IpAddr> {
        match (target, self.arp_sender) {
            (IpAddr::V4(_), Some(s @ IpAddr::V4(_))) => Some(s),
            (IpAddr::V4(_), _) => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            (IpAddr::V6(_), Some(IpAddr::V6(s))) if !s.is_unspecified() => Some(IpAddr::V6(s)),
            (IpAddr::V6(_), _) => None,
        }
    }

    fn send(&mut self, now: Instant, out: &mut Vec<Out>) {
        let alive: Vec<usize> = (0..self.targets.len())
            .filter(|&i| self.targets[i].dead_until.is_none())
            .filter(|&i| self.method != Method::Arp || self.arp_sender_for(self.targets[i].addr).is_some())
            .collect();
        if let (true, Some(_), Method::Icmp { test_addr }) = (alive.is_empty(), &self.discovery, self.method)
        {
            // Ask the all-hosts (all-nodes) group; the first (fastest) to
            // answer become host targets.
            let (group, mac) = discovery_group(test_addr);
            self.seq = self.seq.wrapping_add(1);
            let counter = self.counter.next();
            self.discovery_seq = Some((self.seq, counter));
            self.discovery_capped = false;
            out.push(Out::Echo {
                target: group,
                mac,
                seq: self.seq,
                counter,
            });
        }
        if alive.is_empty() {
            if !self.no_targets_logged {
                self.no_targets_logged = true;
                out.push(Out::Notice(Notice::NoTargets {
                    member: self.member.clone(),
                    group: self.group.clone(),
                    ipv6: self.ipv6,
                }));
            }
            // No targets: no verdict (treated as working, and logged).
            if self.state != ProbeState::Unknown {
                self.state = ProbeState::Unknown;
                out.push(Out::State(ProbeState::Unknown));
            }
            return;
        }
        self.no_targets_logged = false;
        if self
            .history
            .iter()
            .filter(|s| s.status == Status::Pending)
            .count()
            >= MAX_OUTSTANDING
        {
            return;
        }
        let i = alive[self.rr % alive.len()];
        self.rr = self.rr.wrapping_add(1);
        let t = &self.targets[i];
        self.seq = self.seq.wrapping_add(1);
        let counter = self.counter.next();
        let (arp, o) = match (self.method, t.mac) {
            (Method::Icmp { .. }, Some(mac)) => (
                false,
                Out::Echo {
                    target: t.addr,
                    mac,
                    seq: self.seq,
                    counter,
                },
            ),
            // The target's MAC on this member is not known yet: resolve it;
            // the answer counts as this probe's acknowledgement.
            (Method::Icmp { test_addr }, None) => (
                true,
                Out::Arp {
                    sender: test_addr,
                    target: t.addr,
                },
            ),
            (Method::Arp, _) => (
                true,
                Out::Arp {
                    // `alive` holds only targets with a sender.
                    sender: self
                        .arp_sender_for(t.addr)
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    target: t.addr,
                },
            ),
        };
        if self.history.len() == PROBE_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Sent {
            seq: self.seq,
            target: t.addr,
            at: now,
            arp,
            status: Status::Pending,
            counter,
            mac: if arp { None } else { t.mac },
        });
        out.push(o);
    }

    /// An ICMP echo reply whose tag the daemon verified (so `counter` is
    /// one we sent, for this member, sequence and target), with the
    /// Ethernet source it came from. `arrival`: when the reply reached the
    /// host (the kernel's receive time), for the probe's RTT alone; `now`:
    /// when it is handled, for the state, deadlines and bookkeeping (the
    /// daemon may handle a reply well after it arrived).
    pub fn on_echo_reply(
        &mut self,
        from: IpAddr,
        eth_src: Mac,
        seq: u16,
        counter: u64,
        arrival: Instant,
        now: Instant,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        if self.discovery_seq == Some((seq, counter)) {
            self.discovered(from, &mut out);
            return out;
        }
        // Only the outstanding (or recently lost) probe with exactly this
        // counter: a replay of an older reply finds nothing.
        let Some(i) = self
            .history
            .iter()
            .position(|s| !s.arp && s.seq == seq && s.counter == counter)
        else {
            self.rejected += 1;
            return out;
        };
        let s = self.history[i];
        if s.target != from {
            let n = Notice::FakeReply {
                from,
                member: self.member.clone(),
                seq,
                target: s.target,
            };
            self.reject(s.target, n, &mut out);
            return out;
        }
        if s.mac != Some(eth_src) {
            let n = Notice::ReplyWrongMac {
                from,
                member: self.member.clone(),
                mac: eth_src,
                expected: s.mac,
            };
            self.reject(s.target, n, &mut out);
            return out;
        }
        self.ack(i, arrival, now, None, &mut out);
        out
    }

    /// Counts a refused answer; logs the first one per target until the
    /// target answers properly again, so a flood cannot flood the log.
    fn reject(&mut self, target: IpAddr, n: Notice, out: &mut Vec<Out>) {
        self.rejected += 1;
        if let Some(t) = self.targets.iter_mut().find(|t| t.addr == target) {
            if std::mem::replace(&mut t.warned, true) {
                return;
            }
        }
        out.push(Out::Notice(n));
    }

    /// An ARP reply from `from` addressed to this member's MAC, with no
    /// other member's view of the target.
    /// Handled as it arrives (`now` is both times).
    pub fn on_arp_reply(&mut self, from: IpAddr, mac: Mac, now: Instant) -> Vec<Out> {
        self.on_arp_reply_seen(from, mac, &[], now, now)
    }

    /// An ARP reply from `from` with sender MAC `mac`. `elsewhere`: the MACs
    /// other members see `from` answer from right now ([`Self::answering_mac`]).
    /// A pinned target's answers count only from its pinned MAC; an
    /// unpinned one is accepted only from a MAC that agrees with `elsewhere`.
    /// `arrival` and `now` as for [`Self::on_echo_reply`].
    pub fn on_arp_reply_seen(
        &mut self,
        from: IpAddr,
        mac: Mac,
        elsewhere: &[Mac],
        arrival: Instant,
        now: Instant,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(t) = self.targets.iter().find(|t| t.addr == from) else {
            return out; // not a target
        };
        match t.mac {
            Some(pinned) if pinned != mac => {
                let n = Notice::ArpNotPinned {
                    target: from,
                    member: self.member.clone(),
                    mac,
                    pinned,
                };
                self.reject(from, n, &mut out);
                return out;
            }
            None if !elsewhere.is_empty() && !elsewhere.contains(&mac) => {
                let n = Notice::ArpContradicted {
                    target: from,
                    member: self.member.clone(),
                    mac,
                    elsewhere: elsewhere[0],
                };
                self.reject(from, n, &mut out);
                return out;
            }
            _ => {}
        }
        // The most recent unacknowledged ARP probe to that target (pending,
        // or already counted lost: a late reply still counts).
        if let Some(i) = self
            .history
            .iter()
            .rposition(|s| s.arp && s.target == from && matches!(s.status, Status::Pending | Status::Lost))
        {
            self.ack(i, arrival, now, Some(mac), &mut out);
        }
        out
    }

    /// Acknowledges probe `i`: its RTT is measured to `arrival` (the reply
    /// was in time if it arrived before the probe's deadline, however late
    /// it is handled); the target's answered time, the quiet period and the
    /// state are judged at `now`.
    fn ack(&mut self, i: usize, arrival: Instant, now: Instant, mac: Option<Mac>, out: &mut Vec<Out>) {
        if matches!(self.history[i].status, Status::Acked | Status::Discounted) || !self.running {
            return; // duplicate
        }
        // In ICMP mode an ARP answer only resolves the target's MAC: ARP
        // replies carry no nonce, so they never count as acknowledgements.
        let resolution = self.history[i].arp && matches!(self.method, Method::Icmp { .. });
        self.history[i].status = if resolution {
            Status::Discounted
        } else {
            Status::Acked
        };
        let s = self.history[i];
        let interval = self.interval();
        if let Some(t) = self.targets.iter_mut().find(|t| t.addr == s.target) {
            // A reply stamped before its probe left (a clock step, a
            // hostile stamp) measures zero, never negative.
            let rtt = arrival.saturating_duration_since(s.at);
            t.rtt.sample(rtt);
            if !resolution {
                out.push(Out::Result {
                    seq: s.seq,
                    target: s.target,
                    rtt: Some(rtt),
                    rtt_avg: t.rtt.srtt(),
                    rtt_dev: t.rtt.dev(),
                });
            }
            if let Some(mac) = mac {
                if let Some(known) = t.known.filter(|&k| k != mac) {
                    out.push(Out::Notice(Notice::TargetMacChanged {
                        target: t.addr,
                        member: self.member.clone(),
                        from: known,
                        to: mac,
                    }));
                }
                t.mac = Some(mac);
                t.known = Some(mac);
            }
            if !resolution {
                t.answered = Some(now);
                t.warned = false;
            }
            if let Some(crtt) = t.rtt.crtt() {
                if crtt > interval {
                    // Cannot probe this fast over this path: slow down.
                    let fdt = crtt * 2 * PROBE_INTERVALS_PER_FDT;
                    if fdt > self.fdt {
                        self.fdt = fdt;
                        out.push(Out::Notice(Notice::FdtRaised {
                            configured: self.configured_fdt,
                            member: self.member.clone(),
                            group: self.group.clone(),
                            fdt: self.fdt,
                        }));
                    }
                }
            }
        }
        if !resolution {
            self.quiet_until = None;
        }
        self.evaluate(now, out);
    }

    /// Trailing run of (lost, acknowledged) resolved probes, newest first.
    fn trailing(&self) -> (usize, usize) {
        let mut resolved = self
            .history
            .iter()
            .rev()
            .filter(|s| matches!(s.status, Status::Acked | Status::Lost));
        let Some(first) = resolved.next() else {
            return (0, 0);
        };
        let n = 1 + resolved.take_while(|s| s.status == first.status).count();
        if first.status == Status::Lost {
            (n, 0)
        } else {
            (0, n)
        }
    }

    fn evaluate(&mut self, now: Instant, out: &mut Vec<Out>) {
        self.retire_dead_target(now, out);
        let (losses, acks) = self.trailing();
        let quiet = self.quiet_until.is_some_and(|q| now < q);
        match self.state {
            ProbeState::Unknown | ProbeState::Ok | ProbeState::Disabled
                if losses >= NUM_PROBE_FAILS && !quiet =>
            {
                self.state = ProbeState::Failed;
                out.push(Out::State(ProbeState::Failed));
            }
            ProbeState::Unknown if acks >= 1 => {
                self.state = ProbeState::Ok;
                out.push(Out::State(ProbeState::Ok));
            }
            ProbeState::Failed if acks >= if self.fast_repair { 1 } else { NUM_PROBE_REPAIRS } => {
                self.state = ProbeState::Ok;
                out.push(Out::State(ProbeState::Ok));
            }
            _ => {}
        }
        self.maybe_improve_fdt(now, out);
    }

    /// Halves a raised FDT (never below the configured one) once every
    /// target's RTT stayed well inside the interval for [`FLAP_WINDOW`].
    fn maybe_improve_fdt(&mut self, now: Instant, out: &mut Vec<Out>) {
        if self.fdt <= self.configured_fdt {
            self.calm_since = None;
            return;
        }
        let quarter = self.interval() / 4;
        let calm = self
            .targets
            .iter()
            .filter_map(|t| t.rtt.crtt())
            .all(|c| c <= quarter);
        if !calm {
            self.calm_since = None;
            return;
        }
        let since = *self.calm_since.get_or_insert(now);
        if now.saturating_duration_since(since) > FLAP_WINDOW {
            self.fdt = (self.fdt / 2).max(self.configured_fdt);
            self.calm_since = Some(now);
            out.push(Out::Notice(Notice::FdtImproved {
                fdt: self.fdt,
                member: self.member.clone(),
                group: self.group.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const T2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const MAC: Mac = [2, 0, 0, 0, 0, 1];
    const FDT: Duration = Duration::from_millis(700); // interval 100 ms

    fn arp_prober(targets: &[IpAddr]) -> (Prober, Instant) {
        let mut p = Prober::new(Method::Arp, "e1000g0", "production0", FDT, targets, 42);
        let t0 = Instant::now();
        p.start(t0);
        (p, t0)
    }

    /// Runs the prober until `until`, answering every probe after `rtt`
    /// when `answer(target)` says so. Returns every output.
    fn run(
        p: &mut Prober,
        from: Instant,
        until: Instant,
        rtt: Duration,
        answer: impl Fn(IpAddr) -> bool,
    ) -> Vec<Out> {
        let mut now = from;
        let mut all = Vec::new();
        let mut pending: Vec<(Instant, IpAddr)> = Vec::new();
        while now < until {
            for o in p.poll(now) {
                if let Out::Arp { target, .. } = o {
                    if answer(target) {
                        pending.push((now + rtt, target));
                    }
                }
                all.push(o);
            }
            let due: Vec<_> = pending.iter().filter(|(t, _)| *t <= now).copied().collect();
            pending.retain(|(t, _)| *t > now);
            for (_, target) in due {
                all.extend(p.on_arp_reply(target, MAC, now));
            }
            now += Duration::from_millis(1);
        }
        all
    }

    fn states(outs: &[Out]) -> Vec<ProbeState> {
        outs.iter()
            .filter_map(|o| if let Out::State(s) = o { Some(*s) } else { None })
            .collect()
    }

    #[test]
    fn probes_are_spaced_by_the_interval_with_jitter() {
        let (mut p, t0) = arp_prober(&[T1]);
        let outs = run(
            &mut p,
            t0,
            t0 + Duration::from_secs(10),
            Duration::from_millis(1),
            |_| true,
        );
        let sent = outs.iter().filter(|o| matches!(o, Out::Arp { .. })).count();
        // 10 s at one probe per 50..100 ms.
        assert!((100..=200).contains(&sent), "{sent} probes");
        assert_eq!(states(&outs), vec![ProbeState::Ok]);
    }

    #[test]
    fn five_losses_fail_ten_acks_repair() {
        let (mut p, t0) = arp_prober(&[T1]);
        let t1 = t0 + Duration::from_secs(1);
        run(&mut p, t0, t1, Duration::from_millis(1), |_| true);
        assert_eq!(p.state(), ProbeState::Ok);
        let t2 = t1 + Duration::from_secs(1);
        let outs = run(&mut p, t1, t2, Duration::from_millis(1), |_| false);
        assert_eq!(states(&outs), vec![ProbeState::Failed]);
        // Detected within one FDT of the last ack (plus one loss wait).
        let outs = run(
            &mut p,
            t2,
            t2 + Duration::from_millis(600),
            Duration::from_millis(1),
            |_| true,
        );
        assert!(states(&outs).is_empty(), "ten acks need ~10 intervals");
        let outs = run(
            &mut p,
            t2 + Duration::from_millis(600),
            t2 + Duration::from_secs(2),
            Duration::from_millis(1),
            |_| true,
        );
        assert_eq!(states(&outs), vec![ProbeState::Ok]);
    }

    #[test]
    fn failure_is_detected_within_the_fdt() {
        let (mut p, t0) = arp_prober(&[T1]);
        let t1 = t0 + Duration::from_secs(1);
        run(&mut p, t0, t1, Duration::from_millis(1), |_| true);
        let mut now = t1;
        let mut failed_at = None;
        while now < t1 + Duration::from_secs(2) && failed_at.is_none() {
            if states(&p.poll(now)).contains(&ProbeState::Failed) {
                failed_at = Some(now);
            }
            now += Duration::from_millis(1);
        }
        let took = failed_at.expect("failed") - t1;
        assert!(took <= FDT + Duration::from_millis(100), "{took:?}");
    }

    #[test]
    fn late_reply_turns_a_loss_back() {
        let (mut p, t0) = arp_prober(&[T1]);
        let mut now = t0;
        // Let one probe go out and be counted lost.
        while !p.poll(now).iter().any(|o| matches!(o, Out::Arp { .. })) {
            now += Duration::from_millis(1);
        }
        now += Duration::from_millis(150);
        p.poll(now);
        assert_eq!(p.trailing(), (1, 0));
        p.on_arp_reply(T1, MAC, now);
        assert_eq!(p.trailing(), (0, 1));
        assert_eq!(p.state(), ProbeState::Ok);
    }

    #[test]
    fn quiet_period_holds_failure_until_first_ack() {
        let (mut p, t0) = arp_prober(&[T1]);
        let outs = run(
            &mut p,
            t0,
            t0 + Duration::from_secs(5),
            Duration::from_millis(1),
            |_| false,
        );
        assert!(states(&outs).is_empty(), "no verdict inside the quiet period");
        let outs = run(
            &mut p,
            t0 + Duration::from_secs(5),
            t0 + QUIET_PERIOD + Duration::from_secs(1),
            Duration::from_millis(1),
            |_| false,
        );
        assert_eq!(states(&outs), vec![ProbeState::Failed]);
    }

    #[test]
    fn a_dead_target_is_replaced_not_the_member_failed() {
        let (mut p, t0) = arp_prober(&[T1, T2]);
        let t1 = t0 + Duration::from_secs(1);
        run(&mut p, t0, t1, Duration::from_millis(1), |_| true);
        let outs = run(
            &mut p,
            t1,
            t1 + Duration::from_secs(3),
            Duration::from_millis(1),
            |t| t != T2,
        );
        assert!(!states(&outs).contains(&ProbeState::Failed), "{outs:?}");
        assert!(outs
            .iter()
            .any(|o| matches!(o, Out::Notice(n) if n.to_string().contains("192.0.2.2 is not responding"))));
        assert_eq!(p.targets(), vec![T1]);
    }

    #[test]
    fn fast_repair_needs_one_ack() {
        let (mut p, t0) = arp_prober(&[T1]);
        let t1 = t0 + Duration::from_secs(1);
        run(&mut p, t0, t1, Duration::from_millis(1), |_| true);
        run(
            &mut p,
            t1,
            t1 + Duration::from_secs(1),
            Duration::from_millis(1),
            |_| false,
        );
        assert_eq!(p.state(), ProbeState::Failed);
        p.set_fast_repair(true);
        let outs = run(
            &mut p,
            t1 + Duration::from_secs(1),
            t1 + Duration::from_millis(1200),
            Duration::from_millis(1),
            |_| true,
        );
        assert_eq!(states(&outs), vec![ProbeState::Ok]);
    }

    #[test]
    fn multicast_discovery_finds_hosts_and_skips_own_addresses() {
        let own = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
        let mut p = Prober::new(Method::Icmp { test_addr: T2 }, "e1000g0", "g", FDT, &[], 3);
        p.set_discovery(Some(vec![own, T2]));
        let t0 = Instant::now();
        p.start(t0);
        let mut now = t0;
        let (target, mac, seq, counter) = next_echo_to(&mut p, &mut now);
        assert_eq!((target, mac), (IpAddr::V4(ALL_HOSTS), ALL_HOSTS_MAC));
        assert!(p.on_echo_reply(own, MAC, seq, counter, now, now).is_empty());
        let o = p.on_echo_reply(T1, MAC, seq, counter, now, now);
        assert!(
            matches!(&o[..], [Out::Notice(n)] if n.to_string().ends_with("(multicast discovery): 192.0.2.1"))
        );
        assert_eq!(p.targets(), vec![T1]);
        // More answers than targets: capped at MAX_PROBE_TARGETS, logged once.
        let mut logs = Vec::new();
        for h in 10..20u8 {
            logs.extend(p.on_echo_reply(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)),
                MAC,
                seq,
                counter,
                now,
                now,
            ));
        }
        assert_eq!(p.targets().len(), MAX_PROBE_TARGETS);
        let capped = logs
            .iter()
            .filter(|o| matches!(o, Out::Notice(n) if n.to_string().contains("ignoring the others")))
            .count();
        assert_eq!(capped, 1, "{logs:?}");
        // ARP mode cannot discover.
        let mut a = Prober::new(Method::Arp, "e", "g", FDT, &[], 3);
        a.set_discovery(Some(vec![]));
        assert!(!a.discovering());
    }

    const LIAR: Mac = [2, 0, 0, 0, 0, 0x66];

    /// An ICMP prober whose target T1 resolved to MAC; returns it with the
    /// time and the first echo (seq, counter).
    fn icmp_prober_with_echo() -> (Prober, Instant, u16, u64) {
        let mut p = Prober::new(Method::Icmp { test_addr: T2 }, "e1000g0", "g", FDT, &[T1], 7);
        let t0 = Instant::now();
        p.start(t0);
        let mut now = t0;
        // First probe resolves the target's MAC by ARP.
        loop {
            let o = p.poll(now);
            if o.iter()
                .any(|o| matches!(o, Out::Arp { sender, .. } if *sender == T2))
            {
                break;
            }
            now += Duration::from_millis(1);
        }
        p.on_arp_reply(T1, MAC, now);
        let (seq, counter) = next_echo(&mut p, &mut now);
        (p, now, seq, counter)
    }

    /// The next echo the prober sends, a millisecond at a time: its target,
    /// MAC, sequence number and counter.
    fn next_echo_to(p: &mut Prober, now: &mut Instant) -> (IpAddr, Mac, u16, u64) {
        loop {
            *now += Duration::from_millis(1);
            if let Some(Out::Echo {
                target,
                mac,
                seq,
                counter,
            }) = p.poll(*now).into_iter().find(|o| matches!(o, Out::Echo { .. }))
            {
                return (target, mac, seq, counter);
            }
        }
    }

    fn next_echo(p: &mut Prober, now: &mut Instant) -> (u16, u64) {
        let (_, mac, seq, counter) = next_echo_to(p, now);
        assert_eq!(mac, MAC);
        (seq, counter)
    }

    #[test]
    fn echo_replies_are_validated() {
        let (mut p, now, seq, counter) = icmp_prober_with_echo();
        // Wrong source: counted for nothing (logged once); unknown seq: ignored.
        let o = p.on_echo_reply(T2, MAC, seq, counter, now, now);
        assert!(matches!(&o[..], [Out::Notice(n)] if n.to_string().contains("fake probe reply")));
        assert!(
            p.on_echo_reply(T2, MAC, seq, counter, now, now).is_empty(),
            "logged once"
        );
        assert!(p
            .on_echo_reply(T1, MAC, seq.wrapping_add(100), counter, now, now)
            .is_empty());
        // The right sequence number with another counter: a replay of an
        // older reply (the sequence number wrapped), or a guess.
        assert!(p.on_echo_reply(T1, MAC, seq, counter + 1, now, now).is_empty());
        // From another MAC than the target's: a reflector (counted; the
        // target's warning was logged already).
        let before = p.rejected();
        assert!(p.on_echo_reply(T1, LIAR, seq, counter, now, now).is_empty());
        assert_eq!(p.rejected(), before + 1);
        // The ARP answer only resolved the MAC: not an acknowledgement.
        assert_eq!(p.trailing(), (0, 0));
        assert_eq!(p.state(), ProbeState::Unknown);
        assert!(p.rejected() >= 4);
        p.on_echo_reply(T1, MAC, seq, counter, now, now);
        assert_eq!(p.trailing(), (0, 1));
        assert_eq!(p.state(), ProbeState::Ok);
        p.on_echo_reply(T1, MAC, seq, counter, now, now); // duplicate (a replay)
        assert_eq!(p.trailing(), (0, 1));
        // After a good answer, a reflector is logged again.
        let mut now = now;
        let (seq, counter) = next_echo(&mut p, &mut now);
        let o = p.on_echo_reply(T1, LIAR, seq, counter, now, now);
        assert!(
            matches!(&o[..], [Out::Notice(n)] if n.to_string().contains("from MAC 02:00:00:00:00:66")),
            "{o:?}"
        );
    }

    #[test]
    fn counters_never_repeat_across_probers_sharing_them() {
        let c = ProbeCounter::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..3u64 {
            let mut p = Prober::new(Method::Icmp { test_addr: T2 }, "m", "g", FDT, &[T1], i + 1);
            p.set_counter(c.clone());
            p.set_discovery(Some(vec![]));
            p.set_targets(&[]);
            let t0 = Instant::now();
            p.start(t0);
            let mut now = t0;
            while now < t0 + Duration::from_secs(2) {
                for o in p.poll(now) {
                    if let Out::Echo { counter, .. } = o {
                        assert!(seen.insert(counter), "counter {counter} repeated");
                    }
                }
                now += Duration::from_millis(1);
            }
        }
        assert!(seen.len() > 30);
    }

    #[test]
    fn a_pinned_mac_holds_while_the_target_answers() {
        let (mut p, mut now, seq, counter) = icmp_prober_with_echo();
        p.on_echo_reply(T1, MAC, seq, counter, now, now);
        // A liar answering ARP for the target changes nothing, logged once.
        let o = p.on_arp_reply(T1, LIAR, now);
        assert!(
            matches!(&o[..], [Out::Notice(n)] if n.to_string().contains("pinned to 02:00:00:00:00:01")),
            "{o:?}"
        );
        assert!(p.on_arp_reply(T1, LIAR, now).is_empty());
        let (seq, counter) = next_echo(&mut p, &mut now);
        p.on_echo_reply(T1, MAC, seq, counter, now, now);
        assert_eq!(p.trailing(), (0, 2));
        // Two echoes lost: the pin is lifted, the next probe resolves again,
        // and a new MAC is accepted and logged as a change.
        let mut lost = 0;
        let mut resolving = false;
        while !resolving {
            now += Duration::from_millis(1);
            for o in p.poll(now) {
                match o {
                    Out::Echo { .. } => lost += 1,
                    Out::Arp { .. } => resolving = true,
                    _ => {}
                }
            }
        }
        assert_eq!(lost, 2);
        let o = p.on_arp_reply(T1, LIAR, now);
        assert!(
            o.iter().any(|o| matches!(o, Out::Notice(n) if n.to_string().contains("changed its MAC address from 02:00:00:00:00:01 to 02:00:00:00:00:66"))),
            "{o:?}"
        );
    }

    #[test]
    fn a_new_mac_that_other_members_contradict_is_refused() {
        let (mut p, mut now, _, _) = icmp_prober_with_echo();
        // Let every echo go unanswered until the prober resolves again.
        loop {
            now += Duration::from_millis(1);
            if p.poll(now).iter().any(|o| matches!(o, Out::Arp { .. })) {
                break;
            }
        }
        // Another member still sees the target answer from MAC.
        let o = p.on_arp_reply_seen(T1, LIAR, &[MAC], now, now);
        assert!(
            matches!(&o[..], [Out::Notice(n)] if n.to_string().contains("on other members")),
            "{o:?}"
        );
        // Its own MAC is accepted again.
        p.on_arp_reply_seen(T1, MAC, &[MAC], now, now);
        let (seq, counter) = next_echo(&mut p, &mut now);
        assert!(p
            .on_echo_reply(T1, MAC, seq, counter, now, now)
            .iter()
            .all(|o| !matches!(o, Out::Notice(..))));
        assert_eq!(p.answering_mac(T1, now), Some(MAC));
        assert_eq!(p.answering_mac(T1, now + FDT * 2), None, "not answering any more");
    }

    #[test]
    fn arp_mode_counts_answers_only_from_the_pinned_mac() {
        let (mut p, t0) = arp_prober(&[T1]);
        let t1 = t0 + Duration::from_secs(1);
        run(&mut p, t0, t1, Duration::from_millis(1), |_| true);
        assert_eq!(p.state(), ProbeState::Ok);
        // The target goes silent; a liar answers every ARP request at once.
        let mut now = t1;
        let mut failed = false;
        while now < t1 + Duration::from_secs(3) {
            for o in p.poll(now) {
                match o {
                    Out::Arp { target, .. } => {
                        // Other members still see the target at MAC.
                        p.on_arp_reply_seen(target, LIAR, &[MAC], now, now);
                    }
                    Out::State(ProbeState::Failed) => failed = true,
                    _ => {}
                }
            }
            now += Duration::from_millis(1);
        }
        assert!(failed, "a liar's ARP replies kept the member alive");
    }

    #[test]
    fn forged_arp_replies_do_not_keep_an_icmp_member_alive() {
        let mut p = Prober::new(Method::Icmp { test_addr: T2 }, "e1000g0", "g", FDT, &[T1], 7);
        let t0 = Instant::now();
        p.start(t0);
        // Echo requests are never answered; every ARP request is (forged).
        let mut now = t0;
        let mut failed = false;
        while now < t0 + QUIET_PERIOD + Duration::from_secs(5) && !failed {
            for o in p.poll(now) {
                match o {
                    Out::Arp { target, .. } => {
                        p.on_arp_reply(target, MAC, now);
                    }
                    Out::State(ProbeState::Failed) => failed = true,
                    _ => {}
                }
            }
            now += Duration::from_millis(1);
        }
        assert!(failed, "ARP answers alone must not keep the member alive");
    }

    #[test]
    fn no_targets_means_unknown_even_after_a_failure() {
        let (mut p, t0) = arp_prober(&[T1]);
        p.stop();
        assert_eq!(p.state(), ProbeState::Failed);
        p.set_targets(&[]);
        p.start(t0);
        let mut now = t0;
        let mut outs = Vec::new();
        while now < t0 + Duration::from_millis(300) {
            outs.extend(p.poll(now));
            now += Duration::from_millis(1);
        }
        assert_eq!(states(&outs), vec![ProbeState::Unknown]);
    }

    #[test]
    fn slow_target_raises_fdt_and_calm_lowers_it() {
        let (mut p, t0) = arp_prober(&[T1]);
        let outs = run(
            &mut p,
            t0,
            t0 + Duration::from_secs(3),
            Duration::from_millis(150),
            |_| true,
        );
        assert!(p.fdt() > FDT);
        assert!(outs.iter().any(|o| matches!(o, Out::Notice(n) if n.to_string().starts_with("Cannot meet requested failure detection time of 700 ms on (inet e1000g0) new failure detection time for group \"production0\""))));
        let t1 = t0 + Duration::from_secs(3);
        let outs = run(
            &mut p,
            t1,
            t1 + Duration::from_secs(400),
            Duration::from_millis(1),
            |_| true,
        );
        assert!(outs.iter().any(
            |o| matches!(o, Out::Notice(n) if n.to_string().starts_with("Improved failure detection time"))
        ));
        assert_eq!(p.fdt(), FDT);
    }

    const R6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    const TA6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa));

    /// Runs an ICMPv6 prober: resolutions (NS) answered with MAC, echoes
    /// answered when `answer` says so. Returns every output.
    fn run6(p: &mut Prober, from: Instant, until: Instant, answer: impl Fn() -> bool) -> Vec<Out> {
        let mut now = from;
        let mut all = Vec::new();
        while now < until {
            for o in p.poll(now) {
                match o {
                    Out::Arp { sender, target } => {
                        assert_eq!(sender, TA6, "resolution from the test address");
                        all.extend(p.on_arp_reply(target, MAC, now));
                    }
                    Out::Echo {
                        target, seq, counter, ..
                    } if answer() => all.extend(p.on_echo_reply(target, MAC, seq, counter, now, now)),
                    o => all.push(o),
                }
            }
            now += Duration::from_millis(1);
        }
        all
    }

    #[test]
    fn icmpv6_probing_fails_and_repairs_by_the_same_rules() {
        let mut p = Prober::new(Method::Icmp { test_addr: TA6 }, "e1000g0", "g", FDT, &[R6], 5);
        let t0 = Instant::now();
        p.start(t0);
        let t1 = t0 + Duration::from_secs(1);
        let outs = run6(&mut p, t0, t1, || true);
        assert_eq!(states(&outs), vec![ProbeState::Ok]);
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(states(&run6(&mut p, t1, t2, || false)), vec![ProbeState::Failed]);
        let t3 = t2 + Duration::from_secs(2);
        assert_eq!(states(&run6(&mut p, t2, t3, || true)), vec![ProbeState::Ok]);
        // Echo replies from the target's address only, as for IPv4.
        let mut now = t3;
        let (seq, counter) = next_echo(&mut p, &mut now);
        let o = p.on_echo_reply(TA6, MAC, seq, counter, now, now);
        assert!(matches!(&o[..], [Out::Notice(n)] if n.to_string().contains("fake probe reply")));
    }

    #[test]
    fn icmpv6_discovery_asks_all_nodes_and_takes_link_local_hosts_only() {
        let mut p = Prober::new(Method::Icmp { test_addr: TA6 }, "e1000g0", "g", FDT, &[], 3);
        p.set_discovery(Some(vec![TA6]));
        let t0 = Instant::now();
        p.start(t0);
        let mut now = t0;
        let (target, mac, seq, counter) = next_echo_to(&mut p, &mut now);
        assert_eq!(target, IpAddr::V6(ALL_NODES));
        assert_eq!(mac, [0x33, 0x33, 0, 0, 0, 1]);
        let global: IpAddr = "2001:db8::1".parse().unwrap();
        for not_a_host in [TA6, global] {
            assert!(p
                .on_echo_reply(not_a_host, MAC, seq, counter, now, now)
                .is_empty());
        }
        assert!(!p.on_echo_reply(R6, MAC, seq, counter, now, now).is_empty());
        assert_eq!(p.targets(), vec![R6]);
    }

    #[test]
    fn arp_mode_ipv6_needs_a_bound_ipv6_sender_never_unspecified() {
        let mut p = Prober::new(Method::Arp, "e1000g0", "g", FDT, &[R6], 9);
        let t0 = Instant::now();
        p.start(t0);
        // No IPv6 data address bound: nothing sent, no verdict.
        let outs = run(
            &mut p,
            t0,
            t0 + Duration::from_secs(1),
            Duration::from_millis(1),
            |_| true,
        );
        assert!(!outs.iter().any(|o| matches!(o, Out::Arp { .. })), "{outs:?}");
        assert_eq!(p.state(), ProbeState::Unknown);
        // An IPv4 sender does not do for an IPv6 target.
        p.set_arp_sender(Some(T1));
        let outs = run(
            &mut p,
            t0,
            t0 + Duration::from_secs(1),
            Duration::from_millis(1),
            |_| true,
        );
        assert!(!outs.iter().any(|o| matches!(o, Out::Arp { .. })));
        let bound: IpAddr = "2001:db8::200".parse().unwrap();
        p.set_arp_sender(Some(bound));
        let t1 = t0 + Duration::from_secs(1);
        let outs = run(
            &mut p,
            t1,
            t1 + Duration::from_secs(1),
            Duration::from_millis(1),
            |_| true,
        );
        assert!(outs
            .iter()
            .all(|o| !matches!(o, Out::Arp { sender, .. } if *sender != bound)));
        assert!(outs
            .iter()
            .any(|o| matches!(o, Out::Arp { sender, .. } if *sender == bound)));
        assert_eq!(p.state(), ProbeState::Ok);
        assert_eq!(
            p.target_mac(R6),
            Some(MAC),
            "pinned: later solicitations are unicast"
        );
    }

    /// A reply handled well after it arrived (the daemon was busy): its RTT
    /// ends at the arrival, but the target counts as answered at handling.
    #[test]
    fn a_reply_handled_late_is_measured_to_its_arrival_and_booked_at_now() {
        let (mut p, sent, seq, counter) = icmp_prober_with_echo();
        let rtt = Duration::from_millis(2);
        let arrival = sent + rtt;
        // Handled two detection times later, no poll in between.
        let now = arrival + FDT * 2;
        let o = p.on_echo_reply(T1, MAC, seq, counter, arrival, now);
        assert!(
            o.iter()
                .any(|o| matches!(o, Out::Result { seq: s, rtt: Some(r), .. } if *s == seq && *r == rtt)),
            "{o:?}"
        );
        assert!(o.contains(&Out::State(ProbeState::Ok)), "in time: {o:?}");
        assert_eq!(p.state(), ProbeState::Ok);
        // Answered at `now`: other members may hold a re-resolution
        // against this MAC for a detection time from now.
        assert_eq!(p.answering_mac(T1, now), Some(MAC));
        assert_eq!(p.answering_mac(T1, now + FDT), Some(MAC));
    }

    /// The state is judged at the handling time: a quiet period that was
    /// still on when the reply arrived but is over by its handling does
    /// not hold back the failure the losses call for.
    #[test]
    fn state_is_evaluated_at_now_not_at_the_arrival() {
        let mut p = Prober::new(Method::Icmp { test_addr: T2 }, "e1000g0", "g", FDT, &[T1], 9);
        let t0 = Instant::now();
        p.start(t0);
        let quiet_end = t0 + QUIET_PERIOD;
        // Resolutions go unanswered: losses pile up inside the quiet period.
        let mut now = t0;
        while now < quiet_end - Duration::from_millis(2) {
            let o = p.poll(now);
            assert!(!o.contains(&Out::State(ProbeState::Failed)), "quiet period");
            now += Duration::from_millis(1);
        }
        assert_eq!(p.state(), ProbeState::Unknown);
        // A resolution answer (not an acknowledgement in ICMP mode: losses
        // stand) that arrived inside the quiet period, handled after it.
        let arrival = quiet_end - Duration::from_millis(1);
        let handled = quiet_end + Duration::from_millis(1);
        let o = p.on_arp_reply_seen(T1, MAC, &[], arrival, handled);
        assert!(o.contains(&Out::State(ProbeState::Failed)), "{o:?}");
        assert_eq!(p.state(), ProbeState::Failed);
    }
}
