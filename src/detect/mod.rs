//! Failure detection: the sans-IO prober (`probe`, with its round-trip
//! estimator in `rtt` and its targets in `targets`), the probe frames it
//! needs (`frames`), what it has to tell the operator (`notice`), and
//! in.mpathd's detection constants. Link state is not read here: netlink
//! events and ETHTOOL_GLINK polling (`sys::ethtool`) reach the group
//! through the daemon.

pub mod dad;
pub mod frames;
pub mod frames6;
pub mod notice;
pub mod probe;
pub mod rtt;

use probe::ProbeState;
use std::time::Duration;

/// The verdict of a member probed over IPv4 and IPv6 (in.mpathd's rule):
/// a family without a verdict (no targets, not probed) does not count;
/// where both have one, the member fails only when both failed, and is
/// repaired as soon as one is.
pub fn combine(v4: ProbeState, v6: ProbeState) -> ProbeState {
    use ProbeState::*;
    let counts = |s: ProbeState| matches!(s, Ok | Failed);
    match (counts(v4), counts(v6)) {
        (true, true) => {
            if v4 == Ok || v6 == Ok {
                Ok
            } else {
                Failed
            }
        }
        (true, false) => v4,
        (false, true) => v6,
        (false, false) if v4 == Unknown || v6 == Unknown => Unknown,
        (false, false) => Disabled,
    }
}

/// FAILURE_DETECTION_TIME default (in.mpathd: 10000 ms).
pub const FDT_DEFAULT: Duration = Duration::from_millis(10_000);
/// Smallest FDT accepted; smaller values are clamped and logged.
pub const FDT_MIN: Duration = Duration::from_millis(100);
/// Consecutive lost probes that fail a member (NUM_PROBE_FAILS).
pub const NUM_PROBE_FAILS: usize = 5;
/// Consecutive acknowledged probes that repair a member (NUM_PROBE_REPAIRS).
pub const NUM_PROBE_REPAIRS: usize = 10;
/// Most targets probed at once (MAX_PROBE_TARGETS).
pub const MAX_PROBE_TARGETS: usize = 5;
/// Probe history per member: 10 * 5 + 2 probes.
pub const PROBE_HISTORY: usize = NUM_PROBE_REPAIRS * NUM_PROBE_FAILS + 2;
/// The probe interval is FDT / 7: five losses plus two in flight fit in one FDT.
pub const PROBE_INTERVALS_PER_FDT: u32 = 7;
/// Probes outstanding at once.
pub const MAX_OUTSTANDING: usize = 2;
/// Losses never fail a member for this long after probing starts (spanning
/// tree allowance); ends early on the first acknowledgement.
pub const QUIET_PERIOD: Duration = Duration::from_secs(40);
/// A probe is never counted lost sooner than this after it was sent, so
/// scheduling jitter on a loaded host does not fail healthy members.
pub const MIN_LOSS_WAIT: Duration = Duration::from_millis(10);
/// The window of link flap damping and of FDT improvement.
pub const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Link-ups within [`FLAP_WINDOW`] before a repair is held.
pub const LINK_FLAP_LIMIT_DEFAULT: u32 = 2;
/// A dead target is retried after this long.
pub const TARGET_RETRY: Duration = Duration::from_secs(60);
/// Gratuitous ARPs sent per re-binding by default, and their spacing.
pub const GARP_COUNT_DEFAULT: u32 = 2;
/// Bounds of the gratuitous ARP count (command line and file alike): at
/// least one announcement; more than 100 only floods the segment.
pub const GARP_COUNT_MIN: u32 = 1;
pub const GARP_COUNT_MAX: u32 = 100;
pub const GARP_INTERVAL: Duration = Duration::from_millis(50);
/// Default interval of ETHTOOL_GLINK polling on physical NICs.
pub const LINK_POLL_DEFAULT: Duration = Duration::from_millis(50);
/// How often routers are looked up again when no target is configured, so
/// a default route added after start-up gives the probers their targets.
pub const TARGET_REFRESH: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::combine;
    use super::probe::ProbeState::{self, *};

    #[test]
    fn both_families_must_fail_one_repairs() {
        let all = [Disabled, Unknown, Ok, Failed];
        for s in all {
            assert_eq!(combine(s, Disabled), s, "IPv4 alone is as it was");
            assert_eq!(combine(Disabled, s), s, "IPv6 alone likewise");
        }
        assert_eq!(combine(Failed, Failed), Failed);
        assert_eq!(combine(Failed, Ok), Ok);
        assert_eq!(combine(Ok, Failed), Ok);
        assert_eq!(combine(Ok, Ok), Ok);
        // A family with no targets does not count.
        assert_eq!(combine(Failed, Unknown), Failed);
        assert_eq!(combine(Unknown, Failed), Failed);
        assert_eq!(combine(Unknown, Ok), Ok);
        assert_eq!(combine(Unknown, Unknown), Unknown);
        let symmetric = all
            .iter()
            .all(|&a| all.iter().all(|&b| combine(a, b) == combine(b, a)));
        assert!(symmetric);
        let _: ProbeState = combine(Ok, Ok);
    }
}
