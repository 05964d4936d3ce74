//! The I/O shell of the data plane: two threads that move frames between
//! the group's TAP and the members' packet sockets, calling the pure
//! decisions of [`super::plan`]. No lock and no allocation per frame: the
//! control side publishes a new [`Table`] and bumps a generation counter;
//! each thread swaps its `Arc` when it sees a new generation.

use super::buckets::Slot;
use super::counters::{Drop, GroupCounters, MemberCounters};
use super::plan::{self, Divert, Plan};
use super::vnet::{VnetHdr, MAX_FRAME, VNET_HDR_LEN};
use crate::sys::packet::{RecvBatch, RxSocket, TxSocket};
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

/// Bytes of a probe frame handed to the control side: enough for ARP and
/// for an ICMP echo reply with our payload (and IP options).
pub const PROBE_FRAME_MAX: usize = 128;

/// A probe frame received on a member, copied for the prober.
#[derive(Clone, Copy)]
pub struct ProbeFrame {
    pub slot: Slot,
    /// Taken when the frame was read, so the RTT excludes the hand-off.
    pub at: Instant,
    pub len: usize,
    pub data: [u8; PROBE_FRAME_MAX],
}

impl ProbeFrame {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// Where the inbound thread hands probe frames to the control side.
pub struct ControlTap {
    pub tx: crossbeam_channel::Sender<ProbeFrame>,
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

fn outbound_loop(s: &Shared, mut poll: Poll) -> io::Result<()> {
    let tap_fd = s.tap.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&tap_fd), TAP_TOKEN, Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut table = s.current();
    s.taken[OUTBOUND].store(table.plan.generation, Ordering::Release);
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_FRAME];
    while !s.stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        s.refresh(OUTBOUND, &mut table);
        // Edge-triggered: drain to EAGAIN.
        while let Some(n) = s.tap.read(&mut buf)? {
            s.refresh(OUTBOUND, &mut table);
            forward_out(s, &table, &mut buf[..n]);
        }
    }
    Ok(())
}

#[inline]
fn forward_out(s: &Shared, table: &Table, buf: &mut [u8]) {
    let c = &s.counters.from_tap;
    let Ok(hdr) = VnetHdr::parse(buf) else {
        return c.drop(Drop::Malformed);
    };
    if hdr.validate(buf.len() - VNET_HDR_LEN).is_err() {
        return c.drop(Drop::BadVnetHeader);
    }
    let slot = match plan::outbound(&table.plan, &mut buf[VNET_HDR_LEN..]) {
        Ok(slot) => slot,
        Err(why) => return c.drop(why),
    };
    let Some(m) = table.members.get(usize::from(slot)).and_then(Option::as_ref) else {
        return c.drop(Drop::NoActiveMember);
    };
    match m.tx.send(buf) {
        Ok(()) => m.counters.tx.pass(buf.len() - VNET_HDR_LEN),
        Err(e) => {
            m.counters.tx.drop(Drop::IoError);
            log::trace!("send on {}: {e}", m.name);
        }
    }
}

fn inbound_loop(s: &Shared, mut poll: Poll) -> io::Result<()> {
    let mut events = Events::with_capacity(64);
    let mut table = s.current();
    let mut registered: Vec<Option<Arc<MemberIo>>> = Vec::new();
    sync_registrations(&poll, &table, &mut registered)?;
    s.taken[INBOUND].store(table.plan.generation, Ordering::Release);
    let mut batch = RecvBatch::default();
    while !s.stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        if s.refresh(INBOUND, &mut table) {
            sync_registrations(&poll, &table, &mut registered)?;
        }
        for ev in events.iter() {
            if ev.token() == WAKE {
                continue;
            }
            let Some(m) = registered.get(ev.token().0).and_then(Option::clone) else {
                continue;
            };
            loop {
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
                    forward_in(s, &table, &m, &mut batch, i);
                }
                if n < crate::sys::packet::BATCH {
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
        }
        if let Some(new) = want {
            let fd = new.rx.as_raw_fd();
            poll.registry()
                .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)?;
            *reg = Some(new);
        }
    }
    Ok(())
}

#[inline]
fn forward_in(s: &Shared, table: &Table, m: &MemberIo, batch: &mut RecvBatch, i: usize) {
    let meta = batch.meta(i);
    let c = &m.counters.rx;
    if meta.truncated {
        return c.drop(Drop::Malformed);
    }
    let slot = batch.slot_mut(i);
    let (start, len) = match super::vnet::prepare_rx(slot, meta.len, meta.vlan) {
        Ok(at) => at,
        Err(why) => return c.drop(why),
    };
    let frame_len = len - VNET_HDR_LEN;
    let buf = &mut slot[start..start + len];
    match plan::divert(&table.plan, m.slot, &buf[VNET_HDR_LEN..]) {
        Divert::No => {}
        Divert::Control => {
            to_control(s, m.slot, &buf[VNET_HDR_LEN..]);
            return c.pass(frame_len);
        }
        Divert::Tee => to_control(s, m.slot, &buf[VNET_HDR_LEN..]),
    }
    if let Err(why) = plan::inbound(&table.plan, m.slot, &mut buf[VNET_HDR_LEN..]) {
        return c.drop(why);
    }
    match s.tap.write(buf) {
        Ok(()) => c.pass(frame_len),
        Err(e) => {
            s.counters.to_tap.drop(Drop::IoError);
            log::trace!("write to {}: {e}", s.tap.name());
        }
    }
}

/// Copies a probe frame to the control side; never blocks the data path
/// (a full queue drops the copy: the prober then counts a loss).
fn to_control(s: &Shared, slot: Slot, frame: &[u8]) {
    let Some(ct) = s.control.get() else { return };
    let len = frame.len().min(PROBE_FRAME_MAX);
    let mut p = ProbeFrame {
        slot,
        at: Instant::now(),
        len,
        data: [0; PROBE_FRAME_MAX],
    };
    p.data[..len].copy_from_slice(&frame[..len]);
    if ct.tx.try_send(p).is_ok() {
        let _ = ct.waker.wake();
    }
}
