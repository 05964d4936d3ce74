//! The inbound fast path of each member (see [`crate::datapath::fastpath`]):
//! its tcx program and data-socket filter rebuilt and swapped by the
//! control side when what they depend on changes (the member's MAC and
//! test addresses, the group's MACs, whether it accepts traffic), never
//! for a failover.

use super::slots::Taken;
use super::Daemon;
use crate::datapath::buckets::Slot;
use crate::datapath::fastpath::{socket_filter, tc_program, FastSpec};
use crate::datapath::plan::Plan;
use crate::sys::bpf::{load_program, CounterMap};
use std::io;
use std::time::Instant;

/// A member's fast path as installed.
#[derive(Default)]
pub(super) struct FastState {
    /// What its tcx program counts fast frames into; made on first use.
    map: Option<CounterMap>,
    /// The spec its programs run with; None: the drop-all program and no
    /// frame kept out of user space.
    installed: Option<FastSpec>,
}

impl FastState {
    /// (frames, bytes) the member's tcx program delivered.
    pub fn delivered(&self) -> (u64, u64) {
        self.map.as_ref().and_then(|m| m.read().ok()).unwrap_or((0, 0))
    }
}

/// Swaps member `t`'s programs from its installed spec to `want`. Every
/// step before the tcx program's swap fails without changing anything
/// that matters; the order never loses a frame: while the two programs
/// differ, the socket filter keeps out only the frames fast under both
/// the old and the new spec, so a frame whose path changes is briefly
/// delivered twice (once by each path), never dropped by both.
fn swap(t: &mut Taken, want: Option<FastSpec>, tap_index: u32) -> io::Result<()> {
    let map_fd = match (&want, &mut t.fast.map) {
        (None, _) => -1,
        (Some(_), Some(m)) => m.raw_fd(),
        (Some(_), slot @ None) => slot.insert(CounterMap::new()?).raw_fd(),
    };
    let too_long = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
    let program = tc_program(want.as_ref(), tap_index, map_fd).map_err(too_long)?;
    let both = socket_filter(&[t.fast.installed.as_ref(), want.as_ref()]).map_err(too_long)?;
    let new_filter = socket_filter(&[want.as_ref()]).map_err(too_long)?;
    let prog = load_program(&program)?;
    let Some(link) = t.isolation.tcx() else {
        return Err(io::Error::other("no tcx link"));
    };
    t.io.rx.set_filter(&both)?;
    if let Err(e) = link.update(&prog) {
        let old = socket_filter(&[t.fast.installed.as_ref()]).map_err(too_long)?;
        let _ = t.io.rx.set_filter(&old);
        return Err(e);
    }
    t.fast.installed = want;
    t.io.rx.set_filter(&new_filter)
}

impl Daemon {
    /// Brings every member's fast path in line with `plan` (called where
    /// a plan is published, and after a reload).
    pub(super) fn sync_fastpath(&mut self, plan: &Plan) {
        let on = self.cfg.inbound_fastpath && !self.fastpath_refused;
        let tap_index = self.tap_index;
        let mut refused = None;
        for slot in 0..self.slots.len() {
            let slot = slot as Slot;
            let want = if on { FastSpec::of(plan, slot) } else { None };
            let Some(t) = self.slots.taken_mut(slot) else {
                continue;
            };
            if t.fast.installed == want {
                continue;
            }
            let started = Instant::now();
            match swap(t, want, tap_index) {
                Ok(()) => log::debug!(
                    "{}: inbound fast path programs swapped in {:?}",
                    t.io.name,
                    started.elapsed()
                ),
                Err(e) => {
                    refused = Some(format!("{}: {e}", t.io.name));
                    break;
                }
            }
        }
        if let Some(why) = refused {
            log::warn!("inbound fast path refused ({why}); inbound frames go through user space");
            self.fastpath_refused = true;
            self.fastpath_off_all();
        }
    }

    /// Every member back to the drop-all program and no filter.
    fn fastpath_off_all(&mut self) {
        let tap_index = self.tap_index;
        for slot in 0..self.slots.len() {
            let Some(t) = self.slots.taken_mut(slot as Slot) else {
                continue;
            };
            if t.fast.installed.is_some() || t.fast.map.is_some() {
                if let Err(e) = swap(t, None, tap_index) {
                    log::error!("{}: turning the inbound fast path off: {e}", t.io.name);
                }
            }
        }
    }
}
