//! The control side seen from outside: the status snapshot, its
//! ipmpstat-style rendering, and the per-group Unix socket.
//!
//! # Protocol
//!
//! One connection carries one request line and one reply line, JSON, each
//! in an [`Envelope`] with the protocol version ([`PROTOCOL_VERSION`]); a
//! request of another version is refused. The commands ([`Request`]):
//!
//! | request | who | reply |
//! |---|---|---|
//! | `{"version":1,"command":"status"}` | anyone allowed to connect | `{"version":1,"ok":true,"status":{...}}` ([`GroupStatus`]) |
//! | `{"version":1,"command":"probes"}` | anyone allowed to connect | `{"version":1,"ok":true}`, then one [`ProbeEvent`] a line until either side closes |
//! | `{"version":1,"command":"reload"}` | root | `{"version":1,"ok":true}` |
//! | `{"version":1,"command":"offline","args":["IF"]}` | root | `{"version":1,"ok":true}` |
//! | `{"version":1,"command":"online","args":["IF"]}` | root | `{"version":1,"ok":true}` |
//! | `{"version":1,"command":"standby","args":["IF","on"]}` (or `"off"`) | root | `{"version":1,"ok":true}` |
//!
//! A refusal or error is `{"version":1,"ok":false,"error":"TEXT"}` ([`Reply`]):
//! a malformed line, an unknown command or wrong operands (the text names
//! the value), a change by anyone but root (uid from SO_PEERCRED), or a
//! change the group refuses ([`crate::group::admin::Refusal`]). The bounds on
//! clients are in [`server`]. Which changes need a new protocol version and
//! which an older client reads anyway (new state values, new status fields)
//! is in [`protocol`].

pub mod format;
#[doc(hidden)]
pub mod hostile;
pub mod protocol;
pub mod server;
pub mod socket;
pub mod state;

pub mod metrics;

pub use protocol::{parse_request, Envelope, Reply, Request, PROTOCOL_VERSION};
pub use state::{AddressState, GroupState, LinkState, MemberState, ProbeState, TargetMode};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What ipmpstat prints when no daemon answers (exit status 1).
pub const NOT_RUNNING: &str = "cannot contact ipmpd -- is IPMP in use?";

/// One group's state, as ipmpstat shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group interface (GROUP column).
    pub interface: String,
    /// The group's name (GROUPNAME column).
    pub group: String,
    pub state: GroupState,
    /// Failure detection time in ms; None when nothing probes.
    pub fdt_ms: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub addresses: Vec<AddressStatus>,
    /// Members that left the active set by failing, since start.
    #[serde(default)]
    pub failovers: u64,
}

/// A member's traffic counters (frames from the wire are `rx`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Drops by reason, only reasons that occurred.
    pub rx_drops: BTreeMap<String, u64>,
    pub tx_drops: BTreeMap<String, u64>,
    /// Of `rx_frames` and `rx_bytes`: what the kernel's inbound fast path
    /// delivered (counted by the member's tcx program). Left out while zero,
    /// so a member without the fast path keeps its version-1 form.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rx_fast_frames: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rx_fast_bytes: u64,
    /// Of `tx_frames` and `tx_bytes`: what the kernel's outbound fast path
    /// sent (counted by the group interface's tcx program); left out while
    /// zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tx_fast_frames: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tx_fast_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub active: bool,
    /// Seven characters "ismbMdh", '-' where unset.
    pub flags: String,
    pub link: LinkState,
    pub probe: ProbeState,
    pub state: MemberState,
    /// The -t MODE column (`probe_mode` on the wire).
    #[serde(rename = "probe_mode")]
    pub target_mode: TargetMode,
    pub test_address: Option<String>,
    /// In firing order.
    pub targets: Vec<String>,
    /// Usable (functioning and not offline) but not active.
    pub inactive: bool,
    #[serde(default)]
    pub counters: Counters,
    /// Smoothed probe RTT over the member's targets, in microseconds.
    #[serde(default)]
    pub rtt_us: Option<u64>,
    /// IPv6 probing of the member, when it has any (absent otherwise, so
    /// an IPv4-only daemon's JSON is as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<ProbeFamily>,
}

/// One address family's probing of a member: `-t`'s second row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFamily {
    #[serde(rename = "probe_mode")]
    pub target_mode: TargetMode,
    /// The member's IPv6 test address (its EUI-64 link-local), unless
    /// probing is test-address-free or the address is a duplicate.
    pub test_address: Option<String>,
    /// In firing order.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressStatus {
    pub address: String,
    pub state: AddressState,
    /// The member answering ARP for it.
    pub inbound: Option<String>,
    /// Every active member.
    pub outbound: Vec<String>,
}

/// One probe outcome, streamed to `ipmpstat -p` (one JSON object a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeEvent {
    /// Milliseconds since the daemon started.
    pub time_ms: u64,
    pub interface: String,
    pub seq: u16,
    pub target: String,
    /// The round trip as ipmpd saw it: from sending the probe to handling
    /// its reply, the daemon's own delay included. None: the probe was lost.
    pub rtt_us: Option<u64>,
    /// The network round trip: from sending the probe to the kernel's
    /// receive time of the reply (its SO_TIMESTAMPNS; without one, the data
    /// plane's read time). Absent from older daemons.
    #[serde(default)]
    pub net_rtt_us: Option<u64>,
    pub rtt_avg_us: Option<u64>,
    pub rtt_dev_us: Option<u64>,
}
