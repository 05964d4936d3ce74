//! Per-member and per-group counters. Each counter has one writer thread,
//! so updates are a relaxed load and store (no locked instruction per frame);
//! readers (status, logs) see a value at most a batch old.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// Too short or inconsistent to parse.
    Malformed = 0,
    /// The virtio-net header cannot describe the frame.
    BadVnetHeader,
    /// No active member to send through.
    NoActiveMember,
    /// Broadcast/multicast, or unicast to the group's own MAC, received on
    /// a member that is not the nominee.
    NotNominee,
    /// Unicast for a MAC that is not the receiving member's.
    OtherMac,
    /// A frame we sent ourselves came back through a switch.
    Looped,
    /// Received on an offline member.
    Offline,
    /// A VLAN tag delivered out of band that could not be reinserted.
    Vlan,
    /// The kernel refused the frame on send/write.
    IoError,
    /// The member could not take the frame at once (socket send buffer full,
    /// or its qdisc dropped it): a wedged or saturated member.
    TxQueueFull,
    /// For a test address, but neither a request to answer nor an answer
    /// to one of our probes (wrong id or tag, other protocols).
    NotProbe,
    /// A request for a test address over its rate limit.
    RateLimited,
    /// An answer to one of our probes seen already (a replay).
    Replayed,
    /// The member's queue to the prober was full.
    QueueFull,
}

impl DropReason {
    pub const COUNT: usize = 14;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::BadVnetHeader,
        DropReason::NoActiveMember,
        DropReason::NotNominee,
        DropReason::OtherMac,
        DropReason::Looped,
        DropReason::Offline,
        DropReason::Vlan,
        DropReason::IoError,
        DropReason::TxQueueFull,
        DropReason::NotProbe,
        DropReason::RateLimited,
        DropReason::Replayed,
        DropReason::QueueFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadVnetHeader => "bad_vnet_header",
            DropReason::NoActiveMember => "no_active_member",
            DropReason::NotNominee => "not_nominee",
            DropReason::OtherMac => "other_mac",
            DropReason::Looped => "looped",
            DropReason::Offline => "offline",
            DropReason::Vlan => "vlan",
            DropReason::IoError => "io_error",
            DropReason::TxQueueFull => "tx_queue_full",
            DropReason::NotProbe => "not_probe",
            DropReason::RateLimited => "rate_limited",
            DropReason::Replayed => "replayed",
            DropReason::QueueFull => "probe_queue_full",
        }
    }
}

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Single-writer increment.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One direction's counters; written by one thread only.
#[derive(Default, Debug)]
pub struct Direction {
    pub frames: Counter,
    pub bytes: Counter,
    pub drops: [Counter; DropReason::COUNT],
}

impl Direction {
    #[inline]
    pub fn pass(&self, bytes: usize) {
        self.frames.add(1);
        self.bytes.add(bytes as u64);
    }
    #[inline]
    pub fn drop(&self, why: DropReason) {
        self.drops[why as usize].add(1);
    }
    /// (reason, count) of every reason that occurred.
    pub fn drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        Self::sum_drop_counts(&[self])
    }

    /// (reason, count) of every reason that occurred in any of `dirs`, summed.
    pub fn sum_drop_counts(dirs: &[&Direction]) -> std::collections::BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .map(|&d| {
                let n = dirs.iter().map(|x| x.drops[d as usize].get()).sum::<u64>();
                (d.name().to_string(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn summary(&self) -> String {
        let mut s = format!("{} frames {} bytes", self.frames.get(), self.bytes.get());
        for d in DropReason::ALL {
            let n = self.drops[d as usize].get();
            if n > 0 {
                s.push_str(&format!(" {}={}", d.name(), n));
            }
        }
        s
    }
}

/// A member's counters: `rx` is written by the inbound thread (frames from
/// the wire), `tx` by the outbound thread (frames sent on the member),
/// `control_tx` by the control thread (gratuitous ARPs and probes it sends
/// on the member). One writer each, so none needs a locked instruction.
#[derive(Default, Debug)]
pub struct MemberCounters {
    pub rx: Direction,
    pub tx: Direction,
    pub control_tx: Direction,
}

impl MemberCounters {
    /// Frames sent on the member by both senders.
    pub fn tx_frames(&self) -> u64 {
        self.tx.frames.get() + self.control_tx.frames.get()
    }
    pub fn tx_bytes(&self) -> u64 {
        self.tx.bytes.get() + self.control_tx.bytes.get()
    }
    /// Send-side drops of both senders, by reason.
    pub fn tx_drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        Direction::sum_drop_counts(&[&self.tx, &self.control_tx])
    }
}

/// Counters of the group interface side: frames read from the TAP that never
/// reached a member, and frames written into it.
#[derive(Default, Debug)]
pub struct GroupCounters {
    pub from_tap: Direction,
    pub to_tap: Direction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_tx_sums_both_senders() {
        let c = MemberCounters::default();
        c.tx.pass(100);
        c.tx.drop(DropReason::TxQueueFull);
        c.tx.drop(DropReason::TxQueueFull);
        c.control_tx.pass(42);
        c.control_tx.drop(DropReason::TxQueueFull);
        c.control_tx.drop(DropReason::IoError);
        assert_eq!((c.tx_frames(), c.tx_bytes()), (2, 142));
        let d = c.tx_drop_counts();
        assert_eq!(d.get("tx_queue_full"), Some(&3));
        assert_eq!(d.get("io_error"), Some(&1));
        assert_eq!(d.len(), 2, "only reasons that occurred: {d:?}");
        assert_eq!(c.tx.drop_counts().get("tx_queue_full"), Some(&2));
    }

    #[test]
    fn every_reason_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> = DropReason::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, d) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "ALL is in discriminant order");
        }
    }
}
