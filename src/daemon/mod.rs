//! The daemon: the shell around the sans-IO cores (`group`, the probers of
//! `detect`). The cores decide; this module does the I/O they ask for and
//! feeds them events and the time.
//!
//! - `start`: `run`, the start-up in the order that makes a data address
//!   mean "ready".
//! - `event_loop`: the mio loop, signals, netlink events, resynchronisation.
//! - `publish`: forwarding tables for the data plane, and the group's
//!   actions performed (gratuitous ARP, IGMP re-query, carrier, notices).
//! - `detection`: probers fed with probe frames and the clock, link
//!   polling, target refresh, gratuitous ARP repetition.
//! - `reload` (SIGHUP), `status` (the control socket's requests).
//! - `egress` (the outbound fast path), `tc` (traffic control on the
//!   group interface, which makes it step aside).
//! - `teardown`: the reverse of start-up, on every exit.
//! - `slots` (per-member state), `member` (taking a member over and giving
//!   it back), `state` (the state file), `rundir` (run directory, pid lock),
//!   `identity` (the group MAC), `panics`.

mod captures;
mod detection;
mod egress;
mod event_loop;
mod fastpath;
pub mod identity;
pub mod member;
#[cfg(test)]
mod model_tests;
pub mod panics;
mod publish;
mod reload;
pub mod rundir;
mod slots;
mod start;
pub mod state;
mod status;
mod tc;
mod teardown;

pub use reload::Reloader;
pub use start::run;

use crate::config::GroupConfig;
use crate::control::server::Server;
use crate::datapath::buckets::Slot;
use crate::datapath::frame::Mac;
use crate::datapath::shell::{DataPlane, Shared};
use crate::group::Group;
use crate::netlink::Handle;
use crate::sys::tap::Tap;
use mio::Token;
use rundir::PidFile;
use slots::{SlotState, Slots};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the control side waits for both data threads to take up a new
/// table before announcing a binding (they take it within microseconds
/// unless wedged).
const TAKE_UP_TIMEOUT: Duration = Duration::from_millis(200);
/// How often counters are logged at debug level.
const COUNTER_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often the control loop checks that the data threads are alive.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

const NL: Token = Token(0);
const SIG_TERM: Token = Token(1);
const SIG_HUP: Token = Token(2);
/// The data plane handed over probe frames.
const PROBE: Token = Token(3);
/// The control socket's listener.
const CONTROL: Token = Token(4);
/// Its connections: this token and the next `server::MAX_CLIENTS`.
const CONTROL_CLIENTS: usize = 64;
/// Poll events taken per wake-up.
const EVENTS_CAPACITY: usize = 128;

/// A start-up refusal (exit status 2) or a failure while running (1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Refused(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

fn refused(e: impl std::fmt::Display) -> Error {
    Error::Refused(e.to_string())
}

/// The running group. Field order is teardown order: the data plane stops
/// first, then the members' sockets close and they are restored, then the
/// group interface goes away.
struct Daemon {
    dataplane: Option<DataPlane>,
    /// The outbound fast path, once attached (detached when dropped).
    egress: Option<egress::Egress>,
    /// The kernel refused the outbound fast path: user space sends every
    /// frame from then on.
    egress_refused: bool,
    /// Traffic control on the group interface (the fast path steps aside).
    tc: tc::TcWatch,
    shared: Arc<Shared>,
    /// Per-member configuration, prober and I/O, by slot.
    slots: Slots,
    tap: Arc<Tap>,
    tap_index: u32,
    nl: Handle,
    group: Group,
    cfg: GroupConfig,
    group_mac: Mac,
    seed: u64,
    generation: u64,
    mtu: u32,
    /// Seeds probers' jitter; ICMP id of our probes; zero of probe timestamps.
    secret: u64,
    /// Authenticates probes (SipHash key) and numbers them (never repeats).
    probe_key: crate::detect::frames::ProbeKey,
    probe_counter: crate::detect::probe::ProbeCounter,
    icmp_id: u16,
    epoch: Instant,
    garps: Vec<detection::PendingGarp>,
    link_reader: Option<crate::sys::ethtool::LinkReader>,
    next_link_poll: Instant,
    next_target_refresh: Instant,
    /// The control socket and its clients (`ipmpstat -p` watchers among them).
    control: Server,
    /// Re-reads the configuration (SIGHUP, `ipmpadm reload`).
    reloader: Option<Reloader>,
    /// The kernel refused a fast-path program: user space delivers every
    /// inbound frame from then on.
    fastpath_refused: bool,
    /// Set once the teardown ran (explicitly or from Drop on an error path).
    shut_down: bool,
    /// The members' original settings on disk, for a start after a crash.
    state: state::StateHandle,
    _pid: PidFile,
}

impl Daemon {
    pub(super) fn slot_by_index(&self, ifindex: u32) -> Option<Slot> {
        self.slots.by_ifindex(ifindex)
    }
}
