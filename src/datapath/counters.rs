//! Per-member and per-group counters. Each counter has one writer thread,
//! so updates are a relaxed load and store (no locked instruction per frame);
//! readers (status, logs) see a value at most a batch old.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Drop {
    /// Too short or inconsistent to parse.
    Malformed = 0,
    /// The virtio-net header cannot describe the frame.
    BadVnetHeader,
    /// No active member to send through.
    NoActiveMember,
    /// Broadcast/multicast received on a member that is not the nominee.
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

impl Drop {
    pub const COUNT: usize = 13;
    pub const ALL: [Drop; Drop::COUNT] = [
        Drop::Malformed,
        Drop::BadVnetHeader,
        Drop::NoActiveMember,
        Drop::NotNominee,
        Drop::OtherMac,
        Drop::Looped,
        Drop::Offline,
        Drop::Vlan,
        Drop::IoError,
        Drop::NotProbe,
        Drop::RateLimited,
        Drop::Replayed,
        Drop::QueueFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drop::Malformed => "malformed",
            Drop::BadVnetHeader => "bad_vnet_header",
            Drop::NoActiveMember => "no_active_member",
            Drop::NotNominee => "not_nominee",
            Drop::OtherMac => "other_mac",
            Drop::Looped => "looped",
            Drop::Offline => "offline",
            Drop::Vlan => "vlan",
            Drop::IoError => "io_error",
            Drop::NotProbe => "not_probe",
            Drop::RateLimited => "rate_limited",
            Drop::Replayed => "replayed",
            Drop::QueueFull => "probe_queue_full",
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
    pub drops: [Counter; Drop::COUNT],
}

impl Direction {
    #[inline]
    pub fn pass(&self, bytes: usize) {
        self.frames.add(1);
        self.bytes.add(bytes as u64);
    }
    #[inline]
    pub fn drop(&self, why: Drop) {
        self.drops[why as usize].add(1);
    }
    /// (reason, count) of every reason that occurred.
    pub fn drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        Drop::ALL
            .iter()
            .map(|&d| (d.name().to_string(), self.drops[d as usize].get()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn summary(&self) -> String {
        let mut s = format!("{} frames {} bytes", self.frames.get(), self.bytes.get());
        for d in Drop::ALL {
            let n = self.drops[d as usize].get();
            if n > 0 {
                s.push_str(&format!(" {}={}", d.name(), n));
            }
        }
        s
    }
}

/// A member's counters: `rx` is written by the inbound thread (frames from
/// the wire), `tx` by the outbound thread (frames sent on the member).
#[derive(Default, Debug)]
pub struct MemberCounters {
    pub rx: Direction,
    pub tx: Direction,
    /// Frames the control thread sent on the member (probes, answers for
    /// the test address) and what it refused or could not send.
    pub control: Direction,
}

/// Counters of the group interface side: frames read from the TAP that never
/// reached a member, and frames written into it.
#[derive(Default, Debug)]
pub struct GroupCounters {
    pub from_tap: Direction,
    pub to_tap: Direction,
}
