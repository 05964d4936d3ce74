//! The outbound fast path (see [`crate::datapath::egress`]): the group
//! interface's tcx egress program, steered by its table, a snapshot the
//! control side swaps in whole with every published plan that changes it
//! (a failover is one map swap). The program is detached while the fast path
//! is off or in bound mode; the table is all zero (every frame to user
//! space) while a packet
//! capture is open on the group interface, so the capture sees every
//! frame, or while it has traffic control (see `super::tc`), so that applies.

use super::captures::CaptureWatch;
use super::Daemon;
use crate::config::Outbound;
use crate::datapath::buckets::Slot;
use crate::datapath::egress::{
    counters_of, program, table, COUNTERS_NAME, COUNTER_SIZE, COUNTER_SLOTS, TABLE_NAME, TABLE_SIZE,
};
use crate::datapath::plan::Plan;
use crate::sys::bpf::{attach_egress, load_named, ArrayMap, SnapshotMap, TcxLink, EGRESS_PROG_NAME};
use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// How often the control side looks for a capture on the group interface
/// (one packet_diag dump, ~10 µs, and a turn of the control loop): frames
/// sent within this long of a capture's start may be missing from it.
pub(super) const CAPTURE_LOOK: Duration = Duration::from_millis(100);

/// The loaded program and its maps; attached to the group interface while
/// the fast path is wanted (on, flow mode), detached otherwise, the
/// counters kept either way.
pub(super) struct Egress {
    table: SnapshotMap,
    counters: ArrayMap,
    prog: OwnedFd,
    /// Detaches the program when dropped; None while not wanted.
    link: Option<TcxLink>,
    /// The table as last swapped in.
    written: Vec<u8>,
    /// A capture was open at the last look.
    capture: bool,
    captures: CaptureWatch,
    next_look: Instant,
}

impl Egress {
    fn load(seed: u64) -> io::Result<Egress> {
        let table = SnapshotMap::new(TABLE_SIZE as u32, TABLE_NAME)?;
        let counters = ArrayMap::new(COUNTER_SIZE as u32, COUNTER_SLOTS, COUNTERS_NAME)?;
        let insns = program(seed, table.raw_fd(), counters.raw_fd())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let prog = load_named(&insns, EGRESS_PROG_NAME)?;
        Ok(Egress {
            table,
            counters,
            prog,
            link: None,
            written: vec![0; TABLE_SIZE],
            capture: false,
            captures: CaptureWatch::default(),
            next_look: Instant::now(),
        })
    }

    /// (frames, bytes) the program sent out of member `slot` so far.
    pub(super) fn sent(&self, slot: Slot) -> (u64, u64) {
        self.counters
            .read(u32::from(slot))
            .map(|e| counters_of(&e))
            .unwrap_or((0, 0))
    }

    fn swap_in(&mut self, t: Vec<u8>) -> io::Result<()> {
        if t != self.written {
            self.table.replace(&t)?;
            self.written = t;
        }
        Ok(())
    }
}

impl Daemon {
    /// Whether the outbound fast path should run: on, in flow mode, not
    /// refused by the kernel.
    fn egress_wanted(&self) -> bool {
        self.cfg.outbound_fastpath && self.cfg.outbound == Outbound::Flow && !self.egress_refused
    }

    /// Brings the outbound fast path in line with `plan` (called where a
    /// plan is published): loaded and attached when wanted, its table
    /// swapped when it changed, emptied and detached when not wanted. If
    /// the kernel refuses, user space sends every frame.
    pub(super) fn sync_egress(&mut self, plan: &Plan) {
        if let Err(e) = self.try_sync_egress(plan) {
            log::warn!(
                "outbound fast path refused ({}: {e}); outbound frames go through user space",
                self.cfg.interface
            );
            self.egress_refused = true;
            if let Some(eg) = &mut self.egress {
                // Nothing in the kernel sends any more; the counters stay.
                eg.link = None;
            }
        }
    }

    fn try_sync_egress(&mut self, plan: &Plan) -> io::Result<()> {
        let wanted = self.egress_wanted();
        if !wanted {
            if let Some(e) = &mut self.egress {
                if e.link.is_some() {
                    // Emptied first: frames in flight go to the TAP.
                    e.swap_in(vec![0; TABLE_SIZE])?;
                    e.link = None;
                    log::debug!("outbound fast path detached from {}", self.cfg.interface);
                }
            }
            return Ok(());
        }
        if self.egress.is_none() {
            self.egress = Some(Egress::load(self.seed)?);
        }
        let tap_index = self.tap_index;
        let configured = self.tc.configured();
        let slots = &self.slots;
        let Some(e) = &mut self.egress else {
            return Ok(());
        };
        if e.link.is_none() {
            e.capture = e.captures.open(tap_index);
            e.next_look = Instant::now() + CAPTURE_LOOK;
        }
        let on = !e.capture && !configured;
        e.swap_in(table(plan, |s| slots.taken(s).map(|t| t.ifindex), on))?;
        if e.link.is_none() {
            e.link = Some(attach_egress(tap_index, &e.prog)?);
        }
        Ok(())
    }

    /// When the control loop must look for captures next (while attached).
    pub(super) fn egress_deadline(&self) -> Option<Instant> {
        self.egress
            .as_ref()
            .filter(|e| e.link.is_some())
            .map(|e| e.next_look)
    }

    /// Looks for a capture on the group interface when due; one opening
    /// (or the last one closing) switches the table.
    pub(super) fn look_for_captures(&mut self, now: Instant) {
        let tap_index = self.tap_index;
        let Some(e) = self.egress.as_mut().filter(|e| e.link.is_some()) else {
            return;
        };
        if now < e.next_look {
            return;
        }
        e.next_look = now + CAPTURE_LOOK;
        let capture = e.captures.open(tap_index);
        if capture == e.capture {
            return;
        }
        e.capture = capture;
        if capture {
            log::info!(
                "a packet capture is open on {}: outbound frames go through ipmpd so it sees them",
                self.cfg.interface
            );
        } else {
            log::info!(
                "no packet capture on {} any more: outbound fast path resumed",
                self.cfg.interface
            );
        }
        self.resync_egress();
    }

    /// Syncs the outbound fast path with the running table (after it
    /// stepped aside or came back).
    pub(super) fn resync_egress(&mut self) {
        let plan = self.shared.current().plan.clone();
        self.sync_egress(&plan);
    }
}
