//! The outbound fast path (see [`crate::datapath::egress`]): the group
//! interface's tcx egress program, attached once and then steered by its
//! table, which the control side rewrites with every published plan (a
//! failover is one map write). The table is all zero (every frame to user
//! space) while the fast path is off, in bound mode, or while a packet
//! capture is open on the group interface, so the capture sees every
//! frame, or while it has traffic control (see `super::tc`), so that applies.

use super::Daemon;
use crate::datapath::buckets::Slot;
use crate::datapath::egress::{counters_of, program, table, COUNTER_SIZE, COUNTER_SLOTS, TABLE_SIZE};
use crate::datapath::plan::Plan;
use crate::sys::bpf::{attach_egress, load_named, ArrayMap, TcxLink, EGRESS_PROG_NAME};
use crate::sys::captures::capture_open;
use std::io;
use std::time::{Duration, Instant};

/// How often the control side looks for a capture on the group interface
/// (a read of /proc/net/packet, tens of microseconds): frames sent within
/// this long of a capture's start may be missing from it.
pub(super) const CAPTURE_LOOK: Duration = Duration::from_millis(50);

/// The attached program and its maps.
pub(super) struct Egress {
    table: ArrayMap,
    counters: ArrayMap,
    /// The table as last written.
    written: Vec<u8>,
    /// A capture was open at the last look.
    capture: bool,
    next_look: Instant,
    /// Detaches the program when dropped.
    _link: TcxLink,
}

impl Egress {
    fn attach(tap_index: u32, seed: u64) -> io::Result<Egress> {
        let table = ArrayMap::new(TABLE_SIZE as u32, 1)?;
        let counters = ArrayMap::new(COUNTER_SIZE as u32, COUNTER_SLOTS)?;
        let insns = program(seed, table.raw_fd(), counters.raw_fd())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let prog = load_named(&insns, EGRESS_PROG_NAME)?;
        let link = attach_egress(tap_index, &prog)?;
        Ok(Egress {
            table,
            counters,
            written: vec![0; TABLE_SIZE],
            capture: capture_open(tap_index).unwrap_or(true),
            next_look: Instant::now() + CAPTURE_LOOK,
            _link: link,
        })
    }

    /// (frames, bytes) the program sent out of member `slot` so far.
    pub(super) fn sent(&self, slot: Slot) -> (u64, u64) {
        self.counters
            .read(u32::from(slot))
            .map(|e| counters_of(&e))
            .unwrap_or((0, 0))
    }
}

impl Daemon {
    /// Brings the outbound fast path in line with `plan` (called where a
    /// plan is published): attached on first use, its table rewritten when
    /// it changed. If the kernel refuses, user space sends every frame.
    pub(super) fn sync_egress(&mut self, plan: &Plan) {
        let wanted = self.cfg.outbound_fastpath && !self.egress_refused;
        if wanted && self.egress.is_none() {
            match Egress::attach(self.tap_index, self.seed) {
                Ok(e) => self.egress = Some(e),
                Err(e) => {
                    log::warn!(
                        "outbound fast path refused ({}: {e}); outbound frames go through user space",
                        self.cfg.interface
                    );
                    self.egress_refused = true;
                    return;
                }
            }
        }
        let Some(e) = &self.egress else {
            return;
        };
        let slots = &self.slots;
        let t = table(
            plan,
            |s| slots.taken(s).map(|t| t.ifindex),
            wanted && !e.capture && !self.tc.configured(),
        );
        if t == e.written {
            return;
        }
        match e.table.write(0, &t) {
            Ok(()) => {
                if let Some(e) = &mut self.egress {
                    e.written = t;
                }
            }
            Err(err) => {
                // Unreachable short of memory trouble; the program keeps
                // the old table, which user space would also have used a
                // moment ago. Let it go: nothing kernel-side is left behind.
                log::error!(
                    "outbound fast path: writing its table: {err}; outbound frames go through user space"
                );
                self.egress = None;
                self.egress_refused = true;
            }
        }
    }

    /// When the control loop must look for captures next.
    pub(super) fn egress_deadline(&self) -> Option<Instant> {
        self.egress.as_ref().map(|e| e.next_look)
    }

    /// Looks for a capture on the group interface when due; one opening
    /// (or the last one closing) switches the table.
    pub(super) fn look_for_captures(&mut self, now: Instant) {
        let tap_index = self.tap_index;
        let Some(e) = &mut self.egress else {
            return;
        };
        if now < e.next_look {
            return;
        }
        e.next_look = now + CAPTURE_LOOK;
        let capture = capture_open(tap_index).unwrap_or(true);
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
        let plan = self.shared.current().plan.clone();
        self.sync_egress(&plan);
    }
}
