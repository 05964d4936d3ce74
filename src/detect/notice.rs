//! What failure detection has to say, typed: one variant per message of
//! the prober and of the probers' set-up. The texts (in.mpathd's where it
//! has one) and their log levels are rendered here and nowhere else; the
//! shell logs [`Notice::level`] with the notice's `Display`.

use super::MAX_PROBE_TARGETS;
use crate::wire::ethernet::Address as Mac;
use log::Level;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Where a member's probe targets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// `--target` / the configuration file.
    Configured,
    /// Next hops of routes in the group's subnets.
    Routers,
    /// Hosts answering an echo to the all-hosts group.
    Discovery,
}

impl TargetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSource::Configured => "configured",
            TargetSource::Routers => "routers",
            TargetSource::Discovery => "multicast discovery",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A member's probe targets (set up, refreshed, or discovered).
    Targets {
        member: String,
        group: String,
        source: TargetSource,
        targets: Vec<IpAddr>,
    },
    /// Set-up found no routers and none are configured (ARP probing).
    NoRouters {
        member: String,
        group: String,
        ipv6: bool,
    },
    /// Set-up found no routers: multicast discovery looks for hosts by an
    /// echo to group `to` (224.0.0.1, or ff02::1 for IPv6).
    Discovering {
        member: String,
        group: String,
        to: IpAddr,
    },
    /// The prober has no target to send to.
    NoTargets {
        member: String,
        group: String,
        ipv6: bool,
    },
    TestAddressNotUnique {
        addr: IpAddr,
        member: String,
    },
    NoTestAddress {
        member: String,
    },
    /// A retired target is probed again.
    TargetRetry {
        target: IpAddr,
        member: String,
    },
    /// A target alone stopped answering: it is retired, the member is not failed.
    TargetDead {
        target: IpAddr,
        member: String,
    },
    /// Discovery found more hosts than targets are used.
    DiscoveryCapped {
        member: String,
        first_ignored: IpAddr,
    },
    /// An echo reply from another address than the probe went to.
    FakeReply {
        from: IpAddr,
        member: String,
        seq: u16,
        target: IpAddr,
    },
    /// An echo reply from another MAC than the target's.
    ReplyWrongMac {
        from: IpAddr,
        member: String,
        mac: Mac,
        expected: Option<Mac>,
    },
    /// An ARP reply for a pinned target from another MAC.
    ArpNotPinned {
        target: IpAddr,
        member: String,
        mac: Mac,
        pinned: Mac,
    },
    /// An ARP reply for a re-resolving target from a MAC other members
    /// do not see it answer from.
    ArpContradicted {
        target: IpAddr,
        member: String,
        mac: Mac,
        elsewhere: Mac,
    },
    TargetMacChanged {
        target: IpAddr,
        member: String,
        from: Mac,
        to: Mac,
    },
    /// The path is too slow for the configured FDT: it was raised.
    FdtRaised {
        configured: Duration,
        member: String,
        group: String,
        fdt: Duration,
    },
    /// The configured FDT is below the minimum, which is used instead.
    FdtTooSmall {
        configured: Duration,
        minimum: Duration,
    },
    /// A raised FDT came down again.
    FdtImproved {
        fdt: Duration,
        member: String,
        group: String,
    },
}

impl Notice {
    pub fn level(&self) -> Level {
        match self {
            Notice::TestAddressNotUnique { .. } => Level::Error,
            Notice::NoRouters { .. }
            | Notice::NoTargets { .. }
            | Notice::NoTestAddress { .. }
            | Notice::TargetDead { .. }
            | Notice::FakeReply { .. }
            | Notice::ReplyWrongMac { .. }
            | Notice::ArpNotPinned { .. }
            | Notice::ArpContradicted { .. }
            | Notice::TargetMacChanged { .. }
            | Notice::FdtRaised { .. }
            | Notice::FdtTooSmall { .. } => Level::Warn,
            Notice::Targets { .. }
            | Notice::Discovering { .. }
            | Notice::TargetRetry { .. }
            | Notice::DiscoveryCapped { .. }
            | Notice::FdtImproved { .. } => Level::Info,
        }
    }
}

use crate::wire::ethernet::format as fmt_mac;

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Targets {
                member,
                group,
                source,
                targets,
            } => {
                let list: Vec<String> = targets.iter().map(IpAddr::to_string).collect();
                write!(
                    f,
                    "Probe targets for {member} of group {group} ({}): {}",
                    source.as_str(),
                    list.join(" ")
                )
            }
            Notice::NoRouters { member, group, ipv6 } => write!(
                f,
                "No {}probe targets for {member} of group {group}: no routers in its subnets and none configured (--target)",
                if *ipv6 { "IPv6 " } else { "" }
            ),
            Notice::Discovering { member, group, to } => write!(
                f,
                "No {}routers for {member} of group {group}; looking for probe targets with echo requests to {to}",
                if to.is_ipv6() { "IPv6 " } else { "" }
            ),
            Notice::NoTargets { member, group, ipv6 } => write!(
                f,
                "No {}probe targets for {member} of group {group}; {}probe-based failure detection is not working on it",
                if *ipv6 { "IPv6 " } else { "" },
                if *ipv6 { "IPv6 " } else { "" }
            ),
            Notice::TestAddressNotUnique { addr, member } => write!(
                f,
                "Test address {addr} is not unique in group; disabling probe-based failure detection on {member}"
            ),
            Notice::NoTestAddress { member } => write!(
                f,
                "No test address configured on interface {member}; disabling probe-based failure detection on it"
            ),
            Notice::TargetRetry { target, member } => write!(f, "Retrying probe target {target} on {member}"),
            Notice::TargetDead { target, member } => write!(
                f,
                "Probe target {target} is not responding on {member}; probing the other targets"
            ),
            Notice::DiscoveryCapped {
                member,
                first_ignored,
            } => write!(
                f,
                "More hosts answer multicast discovery on {member} than the {MAX_PROBE_TARGETS} probe targets used; ignoring the others (first ignored: {first_ignored})"
            ),
            Notice::FakeReply {
                from,
                member,
                seq,
                target,
            } => write!(
                f,
                "fake probe reply from {from} on {member} (probe {seq} went to {target})"
            ),
            Notice::ReplyWrongMac {
                from,
                member,
                mac,
                expected,
            } => write!(
                f,
                "probe reply for {from} on {member} from MAC {}, not the target's {}; ignored",
                fmt_mac(mac),
                expected.map_or_else(|| "(none)".into(), |m| fmt_mac(&m))
            ),
            Notice::ArpNotPinned {
                target,
                member,
                mac,
                pinned,
            } => write!(
                f,
                "ARP reply for probe target {target} on {member} from {}, but it is pinned to {} while it answers; ignored",
                fmt_mac(mac),
                fmt_mac(pinned)
            ),
            Notice::ArpContradicted {
                target,
                member,
                mac,
                elsewhere,
            } => write!(
                f,
                "ARP reply for probe target {target} on {member} from {}, but it answers from {} on other members; ignored",
                fmt_mac(mac),
                fmt_mac(elsewhere)
            ),
            Notice::TargetMacChanged {
                target,
                member,
                from,
                to,
            } => write!(
                f,
                "Probe target {target} on {member} changed its MAC address from {} to {}",
                fmt_mac(from),
                fmt_mac(to)
            ),
            Notice::FdtRaised {
                configured,
                member,
                group,
                fdt,
            } => write!(
                f,
                "Cannot meet requested failure detection time of {} ms on (inet {member}) new failure detection time for group \"{group}\" is {} ms",
                configured.as_millis(),
                fdt.as_millis()
            ),
            Notice::FdtTooSmall { configured, minimum } => write!(
                f,
                "Too small failure detection time of {} ms, assuming minimum of {} ms",
                configured.as_millis(),
                minimum.as_millis()
            ),
            Notice::FdtImproved { fdt, member, group } => write!(
                f,
                "Improved failure detection time {} ms on (inet {member}) for group \"{group}\"",
                fdt.as_millis()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts and levels logged before notices were typed.
    #[test]
    fn texts_and_levels_are_the_logged_ones() {
        let (m, g) = ("e1000g0".to_string(), "production0".to_string());
        let t = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
        let cases = [
            (
                Notice::Targets {
                    member: m.clone(),
                    group: g.clone(),
                    source: TargetSource::Discovery,
                    targets: vec![t, IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2))],
                },
                Level::Info,
                "Probe targets for e1000g0 of group production0 (multicast discovery): 192.0.2.1 192.0.2.2",
            ),
            (
                Notice::TestAddressNotUnique {
                    addr: t,
                    member: m.clone(),
                },
                Level::Error,
                "Test address 192.0.2.1 is not unique in group; disabling probe-based failure detection on e1000g0",
            ),
            (
                Notice::ReplyWrongMac {
                    from: t,
                    member: m.clone(),
                    mac: [2, 0, 0, 0, 0, 0x66],
                    expected: None,
                },
                Level::Warn,
                "probe reply for 192.0.2.1 on e1000g0 from MAC 02:00:00:00:00:66, not the target's (none); ignored",
            ),
            (
                Notice::FdtTooSmall {
                    configured: Duration::from_millis(20),
                    minimum: crate::detect::FDT_MIN,
                },
                Level::Warn,
                "Too small failure detection time of 20 ms, assuming minimum of 100 ms",
            ),
            (
                Notice::FdtImproved {
                    fdt: Duration::from_millis(700),
                    member: m.clone(),
                    group: g.clone(),
                },
                Level::Info,
                "Improved failure detection time 700 ms on (inet e1000g0) for group \"production0\"",
            ),
        ];
        for (n, level, text) in cases {
            assert_eq!((n.level(), n.to_string()), (level, text.to_string()));
        }
    }
}
