//! The I/O shell of the data plane: two threads that move frames between
//! the group's TAP and the members' packet sockets, calling the pure
//! decisions of [`super::plan`]. No lock and no allocation per frame: the
//! control side publishes a new [`Table`] and bumps a generation counter;
//! each thread swaps its `Arc` when it sees a new generation.

use super::batch;
use super::buckets::Slot;
use super::counters::{DropReason, GroupCounters, MemberCounters};
use super::plan::{self, Divert, Plan};
use super::probegate::ProbeGate;
use super::vnet::{VnetHdr, MAX_FRAME, VNET_HDR_LEN};
use crate::sys::packet::{RecvBatch, RxSocket, SendError, TxSocket, SEND_BATCH};
use crate::sys::probesock::ProbeSocket;
use crate::sys::tap::Tap;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A member's sockets and counters, shared by both data threads.
pub struct MemberIo {
    pub slot: Slot,
    pub ifindex: u32,
    pub name: String,
    pub rx: RxSocket,
    pub tx: TxSocket,
    pub counters: Arc<MemberCounters>,
    /// Probe frames of this member only, so a flood on one member never
    /// drops another's answers.
    pub probes: ProbeQueue,
    /// Probe traffic picked in the kernel, read before data frames; None
    /// when it could not be opened (then probe frames come from `rx`).
    pub probe_sock: Option<ProbeSocket>,
    /// The test address `probe_sock` takes ARP requests for.
    pub probe_sock_addr: Option<std::net::Ipv4Addr>,
}

/// Frames queued for the prober of one member, between the inbound thread
/// and the control side.
pub struct ProbeQueue {
    pub tx: crossbeam_channel::Sender<ProbeFrame>,
    pub rx: crossbeam_channel::Receiver<ProbeFrame>,
}

/// Probe frames queued per member: a burst of requests (bounded by the rate
/// limit's burst) plus the answers to every outstanding probe, many times over.
pub const PROBE_QUEUE_PER_MEMBER: usize = 256;

impl Default for ProbeQueue {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(PROBE_QUEUE_PER_MEMBER);
        ProbeQueue { tx, rx }
    }
}

impl MemberIo {
    /// Sends a frame the control thread built (gratuitous ARP, probe) on
    /// the member, counted apart from the data thread's frames. Never waits:
    /// on a wedged member the frame is dropped and counted.
    pub fn send_control(&self, frame: &[u8]) -> Result<(), SendError> {
        let c = &self.counters.control_tx;
        let r = self.tx.send(frame);
        match &r {
            Ok(()) => c.pass(frame.len().saturating_sub(VNET_HDR_LEN)),
            Err(SendError::QueueFull | SendError::Refused) => c.drop(DropReason::TxQueueFull),
            Err(SendError::Io(_)) => c.drop(DropReason::IoError),
        }
        r
    }
}

/// What the data plane runs with: the plan plus the sockets it names.
pub struct Table {
    pub plan: Plan,
    /// Indexed by slot.
    pub members: Vec<Option<Arc<MemberIo>>>,
}

const OUTBOUND: usize = 0;
const INBOUND: usize = 1;
const THREADS: usize = 2;
const WAKE: Token = Token(usize::MAX);
const TAP_TOKEN: Token = Token(0);
/// Tokens of the members' probe sockets: this plus the slot.
const PROBE_TOKENS: usize = 1 << 16;
/// Probe frames read from one member's probe socket per turn.
const PROBE_FRAMES_PER_TURN: usize = 64;

/// Bytes of a probe frame handed to the control side: enough for ARP and
/// for an ICMP echo reply with our payload (and IP options).
pub const PROBE_FRAME_MAX: usize = 128;

/// A probe frame received on a member, copied for the prober.
#[derive(Clone, Copy)]
pub struct ProbeFrame {
    pub slot: Slot,
    /// Taken when the frame was read, so the RTT excludes the hand-off.
    pub at: Instant,
    /// When the kernel received it (the probe socket's timestamp), if known.
    pub kernel_at: Option<Instant>,
    pub len: usize,
    pub data: [u8; PROBE_FRAME_MAX],
}

impl ProbeFrame {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// How the inbound thread tells the control side that probe frames wait
/// in a member's [`ProbeQueue`].
pub struct ControlTap {
    pub waker: Arc<Waker>,
}

/// State shared between the control side and the data threads.
pub struct Shared {
    tap: Arc<Tap>,
    current: Mutex<Arc<Table>>,
    generation: AtomicU64,
    /// The generation each data thread runs with.
    taken: [AtomicU64; THREADS],
    stop: AtomicBool,
    wakers: Mutex<Vec<Arc<Waker>>>,
    pub counters: GroupCounters,
    /// Set once by the control side before the data plane starts.
    pub control: OnceLock<ControlTap>,
}

impl Shared {
    pub fn new(tap: Arc<Tap>, table: Table) -> Arc<Shared> {
        let g = table.plan.generation;
        Arc::new(Shared {
            tap,
            current: Mutex::new(Arc::new(table)),
            generation: AtomicU64::new(g),
            taken: [AtomicU64::new(0), AtomicU64::new(0)],
            stop: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            counters: GroupCounters::default(),
            control: OnceLock::new(),
        })
    }

    pub fn current(&self) -> Arc<Table> {
        self.current.lock().clone()
    }

    /// Publishes a new table and wakes the threads so idle ones take it up too.
    pub fn publish(&self, table: Table) {
        let g = table.plan.generation;
        *self.current.lock() = Arc::new(table);
        self.generation.store(g, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        for w in self.wakers.lock().iter() {
            let _ = w.wake();
        }
    }

    /// Waits until every data thread runs with generation `g` or newer, so
    /// a gratuitous ARP is never followed by a frame with the old binding.
    pub fn wait_taken(&self, g: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.taken.iter().all(|t| t.load(Ordering::Acquire) >= g) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Takes up a newer table if one was published; returns whether it did.
    #[inline]
    fn refresh(&self, which: usize, table: &mut Arc<Table>) -> bool {
        let g = self.generation.load(Ordering::Acquire);
        if g == table.plan.generation {
            return false;
        }
        *table = self.current();
        self.taken[which].store(table.plan.generation, Ordering::Release);
        true
    }
}

/// The running data plane.
pub struct DataPlane {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl DataPlane {
    pub fn start(shared: Arc<Shared>) -> io::Result<DataPlane> {
        // Built first, so a failure half-way stops the threads already started.
        let mut dp = DataPlane {
            shared: shared.clone(),
            threads: Vec::new(),
        };
        for which in [OUTBOUND, INBOUND] {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
            shared.wakers.lock().push(waker);
            let s = shared.clone();
            let name = if which == OUTBOUND {
                "ipmpd-out"
            } else {
                "ipmpd-in"
            };
            let t = std::thread::Builder::new().name(name.into()).spawn(move || {
                let r = if which == OUTBOUND {
                    outbound_loop(&s, poll)
                } else {
                    inbound_loop(&s, poll)
                };
                if let Err(e) = r {
                    log::error!("data plane thread {name} failed: {e}");
                }
            })?;
            dp.threads.push(t);
        }
        Ok(dp)
    }

    /// True when a data thread ended on its own (an error): the daemon must stop.
    pub fn failed(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }
}

/// Dropping the data plane stops and joins both threads.
impl std::ops::Drop for DataPlane {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Frames read from the TAP per batch: decided with one table, then sent
/// with one sendmmsg(2) per member. Under light load a read finds the TAP
/// empty after a frame or two and the batch goes out at once.
const OUT_BATCH: usize = SEND_BATCH;

fn outbound_loop(s: &Shared, mut poll: Poll) -> io::Result<()> {
    let tap_fd = s.tap.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&tap_fd), TAP_TOKEN, Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut table = s.current();
    s.taken[OUTBOUND].store(table.plan.generation, Ordering::Release);
    // Allocated once: a whole GSO super-frame fits each buffer.
    let mut bufs: Vec<Vec<u8>> = (0..OUT_BATCH)
        .map(|_| vec![0u8; VNET_HDR_LEN + MAX_FRAME])
        .collect();
    let mut lens = [0usize; OUT_BATCH];
    let mut dest: [Option<Slot>; OUT_BATCH] = [None; OUT_BATCH];
    let mut group = Vec::with_capacity(OUT_BATCH);
    while !s.stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        // Edge-triggered: drain to EAGAIN, a batch at a time.
        loop {
            // Once per batch is enough: every frame of the previous batch
            // was handed to the kernel before this, so once `taken` says the
            // new generation, no frame decided with the old table is still
            // to be sent, and the control side announces a move (gratuitous
            // ARP) only after `wait_taken`.
            s.refresh(OUTBOUND, &mut table);
            let mut n = 0;
            let mut drained = false;
            let mut failed = None;
            while n < OUT_BATCH {
                let len = match s.tap.read(&mut bufs[n]) {
                    Ok(Some(len)) => len,
                    Ok(None) => {
                        drained = true;
                        break;
                    }
                    // The frames read so far still go (and are counted)
                    // before the thread reports the error.
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                dest[n] = decide_out(s, &table, &mut bufs[n][..len]);
                lens[n] = len;
                n += 1;
            }
            send_out(s, &table, &bufs, &lens[..n], &mut dest[..n], &mut group);
            if let Some(e) = failed {
                return Err(e);
            }
            if drained || s.stop.load(Ordering::Acquire) {
                break;
            }
        }
    }
    Ok(())
}

/// Checks and rewrites one frame read from the TAP; returns the slot of the
/// member it leaves through, or None when it was dropped (counted).
#[inline]
fn decide_out(s: &Shared, table: &Table, buf: &mut [u8]) -> Option<Slot> {
    let c = &s.counters.from_tap;
    let Ok(hdr) = VnetHdr::parse(buf) else {
        c.drop(DropReason::Malformed);
        return None;
    };
    if hdr.validate(buf.len() - VNET_HDR_LEN).is_err() {
        c.drop(DropReason::BadVnetHeader);
        return None;
    }
    match plan::outbound(&table.plan, &mut buf[VNET_HDR_LEN..]) {
        Ok(slot) => Some(slot),
        Err(why) => {
            c.drop(why);
            None
        }
    }
}

/// Sends the decided frames of a batch, one sendmmsg(2) per member (more
/// only after a refusal). Never waits: a member that cannot take its frames
/// now loses them, counted for that member only, and the next member's
/// frames go on.
fn send_out(
    s: &Shared,
    table: &Table,
    bufs: &[Vec<u8>],
    lens: &[usize],
    dest: &mut [Option<Slot>],
    group: &mut Vec<usize>,
) {
    let mut frames: [&[u8]; OUT_BATCH] = [&[]; OUT_BATCH];
    while let Some(slot) = batch::take_group(dest, group) {
        let Some(m) = table.members.get(usize::from(slot)).and_then(Option::as_ref) else {
            for _ in group.iter() {
                s.counters.from_tap.drop(DropReason::NoActiveMember);
            }
            continue;
        };
        // A group never exceeds the batch, nor the batch SEND_BATCH.
        let k = group.len().min(OUT_BATCH);
        for (f, &i) in frames.iter_mut().zip(&group[..k]) {
            *f = &bufs[i][..lens[i]];
        }
        let list = &frames[..k];
        batch::send_group(
            k,
            |from| m.tx.send_batch(&list[from..]),
            |i, r| match r {
                Ok(()) => m.counters.tx.pass(list[i].len() - VNET_HDR_LEN),
                Err(SendError::QueueFull | SendError::Refused) => m.counters.tx.drop(DropReason::TxQueueFull),
                Err(SendError::Io(e)) => {
                    m.counters.tx.drop(DropReason::IoError);
                    log::trace!("send on {}: {e}", m.name);
                }
            },
        );
    }
}

/// Batches read from one member before the next member's turn: a flood on
/// one member delays the others by at most this many batches.
const BATCHES_PER_TURN: usize = 4;

fn inbound_loop(s: &Shared, mut poll: Poll) -> io::Result<()> {
    let mut events = Events::with_capacity(64);
    let mut table = s.current();
    let mut registered: Vec<Option<Arc<MemberIo>>> = Vec::new();
    sync_registrations(&poll, &table, &mut registered)?;
    s.taken[INBOUND].store(table.plan.generation, Ordering::Release);
    let mut batch = RecvBatch::default();
    // Per slot; kept across members: a member that takes a reused slot
    // inherits its token state and replay memory, which is harmless.
    let mut gates: Vec<ProbeGate> = Vec::new();
    // Sockets not drained yet (edge-triggered: no new event would come).
    let mut ready: Vec<bool> = Vec::new();
    let mut probe_ready: Vec<bool> = Vec::new();
    let mut pbuf = [0u8; PROBE_FRAME_MAX];
    while !s.stop.load(Ordering::Acquire) {
        let busy = ready.iter().chain(&probe_ready).any(|&r| r);
        match poll.poll(&mut events, busy.then_some(Duration::ZERO)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        if s.refresh(INBOUND, &mut table) {
            sync_registrations(&poll, &table, &mut registered)?;
        }
        ready.resize(registered.len(), false);
        probe_ready.resize(registered.len(), false);
        for ev in events.iter() {
            let t = ev.token().0;
            let flag = if t >= PROBE_TOKENS && t != WAKE.0 {
                probe_ready.get_mut(t - PROBE_TOKENS)
            } else {
                ready.get_mut(t)
            };
            if let Some(r) = flag {
                *r = true;
            }
        }
        // Probe traffic first: it never waits behind data frames.
        for (token, flag) in probe_ready.iter_mut().enumerate() {
            if !*flag {
                continue;
            }
            let Some(m) = registered.get(token).and_then(Option::clone) else {
                *flag = false;
                continue;
            };
            let Some(ps) = m.probe_sock.as_ref() else {
                *flag = false;
                continue;
            };
            if gates.len() <= usize::from(m.slot) {
                gates.resize(usize::from(m.slot) + 1, ProbeGate::default());
            }
            let gate = &mut gates[usize::from(m.slot)];
            let mut drained = false;
            for _ in 0..PROBE_FRAMES_PER_TURN {
                match ps.recv_stamped(&mut pbuf) {
                    Ok(Some((n, stamp))) => {
                        let now = Instant::now();
                        let kernel_at = stamp.and_then(|t| {
                            crate::sys::probesock::instant_of(t, std::time::SystemTime::now(), now)
                        });
                        probe_in(s, &table, &m, gate, &pbuf[..n], kernel_at)
                    }
                    Ok(None) => {
                        drained = true;
                        break;
                    }
                    Err(e) => {
                        log::debug!("receive on {} (probes): {e}", m.name);
                        drained = true;
                        break;
                    }
                }
            }
            *flag = !drained;
        }
        // Round robin over the members with frames waiting.
        for (token, flag) in ready.iter_mut().enumerate() {
            if !*flag {
                continue;
            }
            let Some(m) = registered.get(token).and_then(Option::clone) else {
                *flag = false;
                continue;
            };
            if gates.len() <= usize::from(m.slot) {
                gates.resize(usize::from(m.slot) + 1, ProbeGate::default());
            }
            let gate = &mut gates[usize::from(m.slot)];
            for _ in 0..BATCHES_PER_TURN {
                let n = match batch.recv(&m.rx) {
                    Ok(n) => n,
                    // The interface vanished; the control side removes it.
                    Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => 0,
                    Err(e) => {
                        log::debug!("receive on {}: {e}", m.name);
                        0
                    }
                };
                for i in 0..n {
                    forward_in(s, &table, &m, gate, &mut batch, i);
                }
                if n < crate::sys::packet::BATCH {
                    *flag = false;
                    break;
                }
                s.refresh(INBOUND, &mut table);
            }
        }
    }
    Ok(())
}

/// Registers the sockets of members that joined and forgets those that left.
fn sync_registrations(
    poll: &Poll,
    table: &Table,
    registered: &mut Vec<Option<Arc<MemberIo>>>,
) -> io::Result<()> {
    registered.resize(table.members.len().max(registered.len()), None);
    for (i, reg) in registered.iter_mut().enumerate() {
        let want = table.members.get(i).and_then(Option::clone);
        let same = match (&*reg, &want) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            continue;
        }
        if let Some(old) = reg.take() {
            let fd = old.rx.as_raw_fd();
            let _ = poll.registry().deregister(&mut SourceFd(&fd));
            if let Some(ps) = &old.probe_sock {
                let _ = poll.registry().deregister(&mut SourceFd(&ps.as_raw_fd()));
            }
        }
        if let Some(new) = want {
            let fd = new.rx.as_raw_fd();
            poll.registry()
                .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)?;
            if let Some(ps) = &new.probe_sock {
                poll.registry().register(
                    &mut SourceFd(&ps.as_raw_fd()),
                    Token(PROBE_TOKENS + i),
                    Interest::READABLE,
                )?;
            }
            *reg = Some(new);
        }
    }
    Ok(())
}

#[inline]
fn forward_in(
    s: &Shared,
    table: &Table,
    m: &MemberIo,
    gate: &mut ProbeGate,
    batch: &mut RecvBatch,
    i: usize,
) {
    let meta = batch.meta(i);
    let c = &m.counters.rx;
    if meta.truncated {
        return c.drop(DropReason::Malformed);
    }
    let slot = batch.slot_mut(i);
    let (start, len) = match super::vnet::prepare_rx(slot, meta.len, meta.vlan) {
        Ok(at) => at,
        Err(why) => return c.drop(why),
    };
    let frame_len = len - VNET_HDR_LEN;
    let buf = &mut slot[start..start + len];
    let divert = plan::divert(&table.plan, m.slot, &buf[VNET_HDR_LEN..]);
    if m.probe_sock.is_some() {
        // The probe socket delivers answers, ARP replies and ARP requests
        // for its test address; here they only go on (or not) as data.
        match divert {
            Divert::Answer { .. } => return c.pass(frame_len),
            Divert::Request { arp: true }
                if m.probe_sock_addr.is_some()
                    && super::frame::ethertype(&buf[VNET_HDR_LEN..]) == super::frame::ETH_P_ARP =>
            {
                let tpa = &buf[VNET_HDR_LEN..][super::frame::ARP_TPA];
                if m.probe_sock_addr.map(|a| a.octets()) == tpa.try_into().ok() {
                    return c.pass(frame_len);
                }
            }
            _ => {}
        }
    }
    match divert {
        Divert::No => {}
        Divert::Discard => return c.drop(super::counters::DropReason::NotProbe),
        d @ (Divert::Request { .. } | Divert::Answer { .. } | Divert::Resolved) => {
            let now = Instant::now();
            if let Err(why) = gate.admit(d, now) {
                return c.drop(why);
            }
            if let Err(why) = to_control(s, m, now, None, &buf[VNET_HDR_LEN..]) {
                return c.drop(why);
            }
            return c.pass(frame_len);
        }
        // The probe socket has ARP replies; NAs come only this way.
        Divert::Tee
            if m.probe_sock.is_some()
                && super::frame::ethertype(&buf[VNET_HDR_LEN..]) == super::frame::ETH_P_ARP => {}
        d @ (Divert::Tee | Divert::Query) => {
            // The copy for the prober is rate-limited; the frame goes on.
            let now = Instant::now();
            if gate.admit(d, now).is_ok() && to_control(s, m, now, None, &buf[VNET_HDR_LEN..]).is_err() {
                c.drop(super::counters::DropReason::QueueFull);
            }
        }
    }
    if let Err(why) = plan::inbound(&table.plan, m.slot, &mut buf[VNET_HDR_LEN..]) {
        return c.drop(why);
    }
    match s.tap.write(buf) {
        Ok(()) => c.pass(frame_len),
        Err(e) => {
            s.counters.to_tap.drop(DropReason::IoError);
            log::trace!("write to {}: {e}", s.tap.name());
        }
    }
}

/// A frame from a member's probe socket: what the plan says is probe
/// traffic goes through the gate to the prober; the rest was only caught by
/// the kernel filter's coarser net and is ignored (the data socket has it).
fn probe_in(
    s: &Shared,
    table: &Table,
    m: &MemberIo,
    gate: &mut ProbeGate,
    frame: &[u8],
    kernel_at: Option<Instant>,
) {
    let c = &m.counters.rx;
    match plan::divert(&table.plan, m.slot, frame) {
        d @ (Divert::Request { .. }
        | Divert::Answer { .. }
        | Divert::Tee
        | Divert::Resolved
        | Divert::Query) => {
            let now = Instant::now();
            if let Err(why) = gate.admit(d, now) {
                return c.drop(why);
            }
            if let Err(why) = to_control(s, m, now, kernel_at, frame) {
                c.drop(why);
            }
        }
        Divert::No | Divert::Discard => {}
    }
}

/// Copies a probe frame to the member's queue; never blocks the data path
/// (a full queue drops the copy, counted: the prober then counts a loss).
fn to_control(
    s: &Shared,
    m: &MemberIo,
    at: Instant,
    kernel_at: Option<Instant>,
    frame: &[u8],
) -> Result<(), super::counters::DropReason> {
    let Some(ct) = s.control.get() else {
        return Ok(());
    };
    let len = frame.len().min(PROBE_FRAME_MAX);
    let mut p = ProbeFrame {
        slot: m.slot,
        at,
        kernel_at,
        len,
        data: [0; PROBE_FRAME_MAX],
    };
    p.data[..len].copy_from_slice(&frame[..len]);
    m.probes
        .tx
        .try_send(p)
        .map_err(|_| super::counters::DropReason::QueueFull)?;
    let _ = ct.waker.wake();
    Ok(())
}
