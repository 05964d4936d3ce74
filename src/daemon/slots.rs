//! Everything the daemon shell keeps about a member, in one place keyed by
//! slot: its configuration, its prober and, once taken over, its I/O. The
//! group core keeps the member's state under the same slot; a removed
//! member's slot is free for the next member added (see
//! [`crate::group::Group::add_member`]), so nothing here can fall out of
//! step with the group across reloads.

use super::member::Isolation;
use crate::config::MemberConfig;
use crate::datapath::buckets::Slot;
use crate::datapath::frame::Mac;
use crate::datapath::shell::MemberIo;
use crate::detect::probe::Prober;
use std::sync::Arc;

/// A member the daemon has taken over.
pub(super) struct Taken {
    pub ifindex: u32,
    pub mac: Mac,
    pub mtu: u32,
    /// A physical NIC: its carrier is also read with ETHTOOL_GLINK.
    pub polled: bool,
    pub io: Arc<MemberIo>,
    /// The member's inbound fast path (its tcx program's counters).
    pub fast: super::fastpath::FastState,
    /// The outbound fast path's (frames, bytes) for this slot when the
    /// member was taken (a slot's counters outlive its member).
    pub egress_base: (u64, u64),
    /// Dropped after the sockets are closed (field order).
    pub isolation: Isolation,
}

/// One configured member.
pub(super) struct SlotState {
    pub cfg: MemberConfig,
    /// None when the member is not probed (over IPv4).
    pub prober: Option<Prober>,
    /// IPv6 probing of the member (its prober and test address), if any.
    pub v6: Option<super::detection::Probe6>,
    /// None until the interface exists and was taken over.
    pub taken: Option<Taken>,
}

#[derive(Default)]
pub(super) struct Slots(Vec<Option<SlotState>>);

impl Slots {
    pub fn get(&self, slot: Slot) -> Option<&SlotState> {
        self.0.get(usize::from(slot))?.as_ref()
    }
    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut SlotState> {
        self.0.get_mut(usize::from(slot))?.as_mut()
    }
    pub fn taken(&self, slot: Slot) -> Option<&Taken> {
        self.get(slot)?.taken.as_ref()
    }
    pub fn taken_mut(&mut self, slot: Slot) -> Option<&mut Taken> {
        self.get_mut(slot)?.taken.as_mut()
    }
    pub fn prober(&self, slot: Slot) -> Option<&Prober> {
        self.get(slot)?.prober.as_ref()
    }
    pub fn prober_mut(&mut self, slot: Slot) -> Option<&mut Prober> {
        self.get_mut(slot)?.prober.as_mut()
    }
    /// Puts a member in `slot` (the slot the group gave it).
    pub fn insert(&mut self, slot: Slot, s: SlotState) {
        let i = usize::from(slot);
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i] = Some(s);
    }
    /// Frees a slot, handing back what was in it.
    pub fn remove(&mut self, slot: Slot) -> Option<SlotState> {
        self.0.get_mut(usize::from(slot))?.take()
    }
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &SlotState)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as Slot, s.as_ref()?)))
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Slot, &mut SlotState)> {
        self.0
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| Some((i as Slot, s.as_mut()?)))
    }
    /// Members taken over.
    pub fn taken_all(&self) -> impl Iterator<Item = (Slot, &Taken)> {
        self.iter().filter_map(|(i, s)| Some((i, s.taken.as_ref()?)))
    }
    pub fn prober6(&self, slot: Slot) -> Option<&Prober> {
        self.get(slot)?.v6.as_ref().map(|v| &v.prober)
    }
    pub fn prober6_mut(&mut self, slot: Slot) -> Option<&mut Prober> {
        self.get_mut(slot)?.v6.as_mut().map(|v| &mut v.prober)
    }
    /// Every prober, both families.
    pub fn probers(&self) -> impl Iterator<Item = &Prober> {
        self.0
            .iter()
            .flatten()
            .flat_map(|s| s.prober.iter().chain(s.v6.as_ref().map(|v| &v.prober)))
    }
    pub fn probers_mut(&mut self) -> impl Iterator<Item = &mut Prober> {
        self.0
            .iter_mut()
            .flatten()
            .flat_map(|s| s.prober.iter_mut().chain(s.v6.as_mut().map(|v| &mut v.prober)))
    }
    /// One past the highest slot in use (the length of per-slot tables).
    pub fn len(&self) -> usize {
        self.0.iter().rposition(Option::is_some).map_or(0, |i| i + 1)
    }
    /// The slot of the member on interface `ifindex`.
    pub fn by_ifindex(&self, ifindex: u32) -> Option<Slot> {
        self.taken_all()
            .find(|(_, t)| t.ifindex == ifindex)
            .map(|(s, _)| s)
    }
}
