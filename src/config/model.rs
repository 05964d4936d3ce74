//! The validated configuration of a group and its parts: [`GroupConfig`],
//! the value types and enums both the flags and the file give, and the
//! parsers and checks of single values that both share.

use crate::detect;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Default name of the group interface.
pub const DEFAULT_INTERFACE: &str = "ipmp0";
/// Default directory for runtime files (pid file, control socket).
pub const DEFAULT_RUN_DIR: &str = "/run/ipmpd";
pub const RUN_DIR_ENV: &str = "IPMPD_RUN_DIR";
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Shortest ETHTOOL_GLINK polling interval accepted.
pub const LINK_POLL_MIN: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAddr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl std::fmt::Display for DataAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A data address of either family with its prefix (`--data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl std::fmt::Display for IfAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl From<DataAddr> for IfAddr {
    fn from(d: DataAddr) -> IfAddr {
        IfAddr {
            addr: d.addr.into(),
            prefix_len: d.prefix_len,
        }
    }
}

impl IfAddr {
    /// Whether `a` is inside this prefix (of the same family).
    pub fn contains(&self, a: IpAddr) -> bool {
        // Both families as the top bits of a u128: IPv4 in the first 32.
        let (net, a, bits) = match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u128::from(n.to_bits()) << 96, u128::from(a.to_bits()) << 96, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits(), 128),
            _ => return false,
        };
        let len = u32::from(self.prefix_len.min(bits));
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        net & mask == a & mask
    }

    /// Whether this is a default route's destination (`0.0.0.0/0`, `::/0`).
    pub fn is_default(&self) -> bool {
        self.prefix_len == 0 && self.addr.is_unspecified()
    }

    /// The IPv4 address as a [`DataAddr`] (subnets, probe targets).
    pub fn v4(&self) -> Option<DataAddr> {
        match self.addr {
            IpAddr::V4(addr) => Some(DataAddr {
                addr,
                prefix_len: self.prefix_len,
            }),
            IpAddr::V6(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    pub name: String,
    /// Joins when it appears instead of being required at start.
    pub optional: bool,
    /// Used only when an active member fails.
    pub standby: bool,
    /// Source of this member's ICMP probes; lives in the daemon, never in the kernel.
    pub test_address: Option<DataAddr>,
}

impl MemberConfig {
    pub fn new(name: &str) -> MemberConfig {
        MemberConfig {
            name: name.to_string(),
            optional: false,
            standby: false,
            test_address: None,
        }
    }
}

/// How members are probed (`--probe`, the file's `probe`). The variants'
/// docs are the flag's help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeMode {
    /// Link state only.
    Off,
    /// ICMP echo from per-member test addresses.
    Icmp,
    /// ARP requests to the targets (no test addresses needed).
    Arp,
}

/// A setting turned on or off on the command line (`--inbound-fastpath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    Off,
    On,
}

/// How unicast IPv4 picks a member (`--outbound`, the file's `outbound`);
/// the data plane's table carries it as is. The variants' docs are the
/// flag's help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outbound {
    /// Spread unicast per flow (addresses, protocol, ports).
    // Over the sticky buckets.
    #[default]
    Flow,
    /// Send through the member the source address is bound to.
    // For networks that tie an IP address to one MAC (IP source guard,
    // cloud fabrics).
    Bound,
}

/// Detection and repair settings (in.mpathd's /etc/default/mpathd and more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectConfig {
    /// None: ICMP when any test address is given, else off (as in Solaris).
    pub probe: Option<ProbeMode>,
    pub targets: Vec<IpAddr>,
    pub fdt: Duration,
    pub failback: bool,
    pub garp_count: u32,
    pub link_flap_limit: u32,
    /// ETHTOOL_GLINK polling interval on physical NICs.
    pub link_poll: Duration,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            probe: None,
            targets: Vec::new(),
            fdt: detect::FDT_DEFAULT,
            failback: true,
            garp_count: detect::GARP_COUNT_DEFAULT,
            link_flap_limit: detect::LINK_FLAP_LIMIT_DEFAULT,
            link_poll: detect::LINK_POLL_DEFAULT,
        }
    }
}

/// Longest duration accepted anywhere (a day): a longer timer is a typing
/// mistake, and the deadlines computed from it stay far from overflow.
pub const DURATION_MAX: Duration = Duration::from_secs(86_400);

/// Parses "10s", "100ms", "1.5s" or plain milliseconds ("250").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 10s, 100ms or 250 (milliseconds)");
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    let d = Duration::try_from_secs_f64(v * scale).map_err(|_| bad())?;
    check_duration(&format!("{s:?}"), d)
}

/// A duration given as a number of milliseconds (a group file's integer):
/// the same bounds as [`parse_duration`].
pub fn duration_from_ms(ms: u64) -> Result<Duration, String> {
    check_duration(&ms.to_string(), Duration::from_millis(ms))
}

/// The bounds every duration obeys, whatever its form; `shown` is the value
/// as given, for the error.
fn check_duration(shown: &str, d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        return Err(format!(
            "invalid duration {shown}: a duration of 0 is not allowed"
        ));
    }
    if d > DURATION_MAX {
        return Err(format!(
            "invalid duration {shown}: more than the maximum of {} s",
            DURATION_MAX.as_secs()
        ));
    }
    Ok(d)
}

/// Checks a gratuitous ARP count against the command line's bounds.
pub fn check_garp_count(n: u32) -> Result<u32, String> {
    if (detect::GARP_COUNT_MIN..=detect::GARP_COUNT_MAX).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "invalid garp_count {n}: expected {} to {}",
            detect::GARP_COUNT_MIN,
            detect::GARP_COUNT_MAX
        ))
    }
}

/// Parses `IF=ADDR/PREFIX` (a --test-address value).
pub fn parse_test_address(s: &str) -> Result<(String, DataAddr), String> {
    let (ifname, addr) = s.split_once('=').ok_or_else(|| {
        format!("invalid test address {s:?}: expected IF=ADDR/PREFIX, e.g. e1000g0=192.0.2.201/24")
    })?;
    check_ifname("interface name", ifname)?;
    let a = parse_data_addr(addr).map_err(|e| e.replace("data address", "test address"))?;
    Ok((ifname.to_string(), a))
}

/// Parses yes|no (FAILBACK).
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("Invalid value for FAILBACK {s}")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub group: String,
    pub interface: String,
    pub data: Vec<IfAddr>,
    pub members: Vec<MemberConfig>,
    pub outbound: Outbound,
    pub detect: DetectConfig,
    /// Any local user may read the status (changes stay root-only).
    pub status_world_readable: bool,
    /// Static routes through the group interface: (destination, gateway),
    /// both of one family.
    pub routes: Vec<(IfAddr, Option<IpAddr>)>,
    /// Take members that still carry addresses or routes.
    pub force: bool,
    /// Member send sockets skip the qdisc (PACKET_QDISC_BYPASS).
    pub qdisc_bypass: bool,
    /// Inbound TCP/UDP data frames go into the group interface in the
    /// kernel (tcx redirect), not through user space.
    pub inbound_fastpath: bool,
    /// Outbound TCP/UDP data frames leave their member from the kernel
    /// (tcx egress program on the group interface), not through user space.
    pub outbound_fastpath: bool,
    pub run_dir: PathBuf,
}

/// Parses `ADDR/PREFIX` (a bare address means /32, as with `ip addr add`).
pub fn parse_data_addr(s: &str) -> Result<DataAddr, String> {
    let bad = || format!("invalid data address {s:?}: expected IPv4ADDRESS/PREFIX, e.g. 192.0.2.200/24");
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (s, 32),
    };
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    if p > 32 {
        return Err(format!(
            "invalid data address {s:?}: prefix length {p} is more than 32"
        ));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() || addr.is_loopback() {
        return Err(format!("invalid data address {s:?}: not a unicast host address"));
    }
    Ok(DataAddr { addr, prefix_len: p })
}

/// Parses a data address of either family: `ADDR/PREFIX` as
/// [`parse_data_addr`] for IPv4, or `IPv6ADDRESS/PREFIX` (a bare address
/// means /128).
pub fn parse_if_addr(s: &str) -> Result<IfAddr, String> {
    if !s.contains(':') {
        return parse_data_addr(s).map(IfAddr::from);
    }
    let bad = || format!("invalid data address {s:?}: expected IPv6ADDRESS/PREFIX, e.g. 2001:db8::200/64");
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (s, IPV6_HOST_PREFIX),
    };
    let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
    if p > IPV6_HOST_PREFIX {
        return Err(format!(
            "invalid data address {s:?}: prefix length {p} is more than {IPV6_HOST_PREFIX}"
        ));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() || addr.to_ipv4_mapped().is_some() {
        return Err(format!("invalid data address {s:?}: not a unicast host address"));
    }
    Ok(IfAddr {
        addr: addr.into(),
        prefix_len: p,
    })
}

/// Parses a route's destination: a prefix as [`parse_if_addr`] takes it,
/// or a default route, `0.0.0.0/0` or `::/0` (the prefix length given).
pub fn parse_route_dest(s: &str) -> Result<IfAddr, String> {
    match s.split_once('/') {
        Some((a, "0")) => match a.parse::<IpAddr>() {
            Ok(addr) if addr.is_unspecified() => Ok(IfAddr { addr, prefix_len: 0 }),
            _ => Err(format!(
                "invalid route destination {s:?}: a /0 destination is the default route, 0.0.0.0/0 or ::/0"
            )),
        },
        _ => parse_if_addr(s),
    }
}

/// The prefix length of one IPv6 host.
const IPV6_HOST_PREFIX: u8 = 128;

/// Checks a Linux interface name the way the kernel does (dev_valid_name).
pub fn check_ifname(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > IFNAME_MAX {
        return Err(format!("invalid {what} {s:?}: must be 1 to {IFNAME_MAX} bytes"));
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!("invalid {what} {s:?}: no '/', ':' or whitespace allowed"));
    }
    Ok(())
}

/// The part of a configuration a refusal is about, so that the error can
/// point at the place that gave it (a file line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Interface,
    /// The name of member `i` (of [`GroupConfig::members`]).
    Member(usize),
    /// The test address of member `i`.
    TestAddress(usize),
    /// Data address `i`.
    Data(usize),
    /// Probe target `i`.
    Target(usize),
    Probe,
    LinkPoll,
}

/// A refused configuration: the reason, and the item it is about when it
/// is about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub msg: String,
    pub item: Option<Item>,
}

impl Invalid {
    fn at(item: Item, msg: String) -> Invalid {
        Invalid {
            msg,
            item: Some(item),
        }
    }
}

impl From<String> for Invalid {
    fn from(msg: String) -> Invalid {
        Invalid { msg, item: None }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl GroupConfig {
    /// The first thing configured that cannot be set up without IPv6 on
    /// the group interface (an IPv6 data address or route), named for an
    /// error. IPv6 probe targets are not: without IPv6 nothing probes over
    /// it, and the IPv4 targets still serve.
    pub fn first_ipv6_use(&self) -> Option<String> {
        if let Some(d) = self.data.iter().find(|d| d.addr.is_ipv6()) {
            return Some(format!("data address {d}"));
        }
        self.routes
            .iter()
            .find(|(d, _)| d.addr.is_ipv6())
            .map(|(dst, _)| format!("route {dst}"))
    }

    /// The IPv4 data addresses.
    pub fn data4(&self) -> impl Iterator<Item = DataAddr> + '_ {
        self.data.iter().filter_map(IfAddr::v4)
    }

    /// Checks everything that can be checked without touching the system.
    pub fn validate(&self) -> Result<(), String> {
        self.check().map_err(|e| e.msg)
    }

    /// [`validate`](Self::validate), saying which item a refusal is about.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.group.is_empty() || self.group.len() > 31 || self.group.contains(['/', ' ', '\0']) {
            return Err(format!(
                "invalid group name {:?}: 1 to 31 characters, no '/' or spaces",
                self.group
            )
            .into());
        }
        check_ifname("interface name", &self.interface).map_err(|e| Invalid::at(Item::Interface, e))?;
        if self.members.is_empty() {
            return Err(String::from("no members: give at least one --member IF").into());
        }
        if self.members.len() >= usize::from(crate::datapath::buckets::NO_SLOT) {
            return Err(format!("too many members ({})", self.members.len()).into());
        }
        for (i, m) in self.members.iter().enumerate() {
            let at = |msg| Invalid::at(Item::Member(i), msg);
            check_ifname("member name", &m.name).map_err(at)?;
            if m.name == self.interface {
                return Err(at(format!("member {} is the group interface itself", m.name)));
            }
            if self.members[..i].iter().any(|o| o.name == m.name) {
                return Err(at(format!("member {} is given twice", m.name)));
            }
        }
        for (i, d) in self.data.iter().enumerate() {
            if self.data[..i].iter().any(|o| o.addr == d.addr) {
                return Err(Invalid::at(
                    Item::Data(i),
                    format!("data address {} is given twice", d.addr),
                ));
            }
        }
        for (i, (dst, gw)) in self.routes.iter().enumerate() {
            if let Some(gw) = gw.filter(|g| g.is_ipv4() != dst.addr.is_ipv4()) {
                return Err(
                    format!("route {dst} via {gw}: the gateway is not of the destination's family").into(),
                );
            }
            if let Some(gw) = gw {
                self.check_gateway(*dst, *gw)?;
            }
            if let Some((_, other)) = self.routes[..i]
                .iter()
                .find(|(o, _)| o.is_default() && dst.is_default() && o.addr.is_ipv4() == dst.addr.is_ipv4())
            {
                let via = |g: &Option<IpAddr>| g.map(|g| format!(" via {g}")).unwrap_or_default();
                return Err(format!(
                    "two default routes {dst}{} and {dst}{}: give one",
                    via(other),
                    via(gw)
                )
                .into());
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            if let Some(t) = m.test_address {
                if self.data.iter().any(|d| d.addr == IpAddr::V4(t.addr)) {
                    return Err(Invalid::at(
                        Item::TestAddress(i),
                        format!("test address {} of {} is also a data address", t.addr, m.name),
                    ));
                }
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            let Some(t) = m.test_address else { continue };
            if let Some(o) = self.members[..i]
                .iter()
                .find(|o| o.test_address.is_some_and(|a| a.addr == t.addr))
            {
                return Err(Invalid::at(
                    Item::TestAddress(i),
                    format!(
                        "test address {} is given twice (members {} and {})",
                        t.addr, o.name, m.name
                    ),
                ));
            }
        }
        for (i, t) in self.detect.targets.iter().enumerate() {
            self.check_target(*t)
                .map_err(|e| Invalid::at(Item::Target(i), e))?;
        }
        check_garp_count(self.detect.garp_count)?;
        // `--probe icmp` without IPv4 test addresses probes over IPv6 alone:
        // each member's IPv6 test address is its own EUI-64 link-local.
        if self.detect.link_poll < LINK_POLL_MIN {
            return Err(Invalid::at(
                Item::LinkPoll,
                format!(
                    "link poll interval {:?} is below the minimum of {} ms",
                    self.detect.link_poll,
                    LINK_POLL_MIN.as_millis()
                ),
            ));
        }
        Ok(())
    }

    /// A route's gateway must be reachable through the group interface: in
    /// the prefix of a data address or of a route without gateway of its
    /// family (an IPv6 link-local gateway always is). Only checked when the
    /// configuration gives data addresses of the gateway's family: those
    /// that come from DHCP or SLAAC are not known before they arrive.
    fn check_gateway(&self, dst: IfAddr, gw: IpAddr) -> Result<(), String> {
        if matches!(gw, IpAddr::V6(g) if g.is_unicast_link_local())
            || !self.data.iter().any(|d| d.addr.is_ipv4() == gw.is_ipv4())
        {
            return Ok(());
        }
        let prefixes = self
            .data
            .iter()
            .copied()
            .chain(self.routes.iter().filter(|(_, g)| g.is_none()).map(|(d, _)| *d))
            .filter(|p| p.addr.is_ipv4() == gw.is_ipv4() && !p.is_default());
        if prefixes.clone().any(|p| p.contains(gw)) {
            return Ok(());
        }
        let listed = prefixes.map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        Err(format!(
            "route {dst} via {gw}: the gateway {gw} is not reachable through the group interface (in none of {listed})"
        ))
    }

    /// A probe target must be another host: a unicast address that is none
    /// of the group's own (data or test) and not a subnet's broadcast.
    fn check_target(&self, t: IpAddr) -> Result<(), String> {
        let t = match t {
            IpAddr::V4(t) => t,
            IpAddr::V6(t) => {
                if t.is_unspecified() || t.is_multicast() || t.is_loopback() || t.to_ipv4_mapped().is_some() {
                    return Err(format!("invalid probe target {t}: not a unicast host address"));
                }
                if self.data.iter().any(|d| d.addr == IpAddr::V6(t)) {
                    return Err(format!(
                        "invalid probe target {t}: it is a data address of the group"
                    ));
                }
                return Ok(());
            }
        };
        if t.is_unspecified() || t.is_multicast() || t.is_broadcast() || t.is_loopback() {
            return Err(format!("invalid probe target {t}: not a unicast host address"));
        }
        if self.data.iter().any(|d| d.addr == IpAddr::V4(t)) {
            return Err(format!(
                "invalid probe target {t}: it is a data address of the group"
            ));
        }
        if let Some(m) = self
            .members
            .iter()
            .find(|m| m.test_address.is_some_and(|a| a.addr == t))
        {
            return Err(format!(
                "invalid probe target {t}: it is the test address of {}",
                m.name
            ));
        }
        let own = self
            .data4()
            .chain(self.members.iter().filter_map(|m| m.test_address));
        for a in own {
            // /31 and /32 have no broadcast address (RFC 3021).
            if a.prefix_len < 31 {
                let host_mask = u32::MAX >> a.prefix_len;
                if u32::from(t) == u32::from(a.addr) | host_mask {
                    return Err(format!("invalid probe target {t}: the broadcast address of {a}"));
                }
            }
        }
        Ok(())
    }

    /// The probe mode in force: as given, else ICMP when any member has a
    /// test address (giving one turns probing on, as in Solaris), else off.
    pub fn probe_mode(&self) -> ProbeMode {
        self.detect
            .probe
            .unwrap_or(if self.members.iter().any(|m| m.test_address.is_some()) {
                ProbeMode::Icmp
            } else {
                ProbeMode::Off
            })
    }

    /// The FDT in force and, when the configured one was below the minimum,
    /// the configured one (the prober set-up says so with
    /// `detect::notice::Notice::FdtTooSmall`).
    pub fn effective_fdt(&self) -> (Duration, Option<Duration>) {
        if self.detect.fdt < detect::FDT_MIN {
            (detect::FDT_MIN, Some(self.detect.fdt))
        } else {
            (self.detect.fdt, None)
        }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join(format!("{}.pid", self.group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn cfg() -> GroupConfig {
        GroupConfig {
            group: "production0".into(),
            interface: "ipmp0".into(),
            data: vec![parse_data_addr("192.0.2.200/24").unwrap().into()],
            members: vec![
                MemberConfig::new("m0"),
                MemberConfig {
                    optional: true,
                    ..MemberConfig::new("m1")
                },
            ],
            outbound: Outbound::Flow,
            detect: DetectConfig::default(),
            routes: vec![],
            status_world_readable: false,
            force: false,
            qdisc_bypass: false,
            inbound_fastpath: true,
            outbound_fastpath: true,
            run_dir: DEFAULT_RUN_DIR.into(),
        }
    }

    #[test]
    fn data_addresses_parse_and_errors_name_the_value() {
        assert_eq!(
            parse_data_addr("192.0.2.200/24").unwrap(),
            DataAddr {
                addr: Ipv4Addr::new(192, 0, 2, 200),
                prefix_len: 24
            }
        );
        assert_eq!(parse_data_addr("192.0.2.9").unwrap().prefix_len, 32);
        for bad in [
            "192.0.2.300/24",
            "192.0.2.1/33",
            "x/24",
            "224.0.0.1/24",
            "0.0.0.0/0",
            "",
        ] {
            let e = parse_data_addr(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn route_destinations_take_the_default_route() {
        let d4 = parse_route_dest("0.0.0.0/0").unwrap();
        assert!(d4.is_default() && d4.addr.is_ipv4(), "{d4}");
        let d6 = parse_route_dest("::/0").unwrap();
        assert!(d6.is_default() && d6.addr.is_ipv6(), "{d6}");
        assert_eq!(d4.to_string(), "0.0.0.0/0");
        assert_eq!(d6.to_string(), "::/0");
        let net = parse_route_dest("198.51.100.0/24").unwrap();
        assert!(!net.is_default());
        for bad in [
            "0.0.0.0",
            "0.0.0.0/32",
            "::",
            "192.0.2.0/0",
            "default",
            "0.0.0.0/33",
            "x/0",
        ] {
            let e = parse_route_dest(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn prefixes_contain_their_addresses_only() {
        let p = |s: &str| parse_route_dest(s).unwrap();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p("192.0.2.200/24").contains(a("192.0.2.1")));
        assert!(!p("192.0.2.200/24").contains(a("192.0.3.1")));
        assert!(p("192.0.2.9/32").contains(a("192.0.2.9")));
        assert!(!p("192.0.2.9/32").contains(a("192.0.2.8")));
        assert!(p("0.0.0.0/0").contains(a("203.0.113.1")));
        assert!(!p("0.0.0.0/0").contains(a("2001:db8::1")));
        assert!(p("2001:db8::200/64").contains(a("2001:db8::1")));
        assert!(!p("2001:db8::200/64").contains(a("2001:db8:1::1")));
        assert!(p("::/0").contains(a("2001:db8::1")));
        assert!(p("2001:db8::1/128").contains(a("2001:db8::1")));
    }

    #[test]
    fn default_routes_need_a_reachable_gateway_and_one_per_family() {
        let gw = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let d4 = parse_route_dest("0.0.0.0/0").unwrap();
        let d6 = parse_route_dest("::/0").unwrap();
        let mut c = cfg();
        c.routes = vec![(d4, gw("192.0.2.1")), (d6, gw("fe80::1"))];
        c.validate().unwrap();
        // Not in 192.0.2.200/24: named, with the prefixes it is not in.
        c.routes = vec![(d4, gw("198.51.100.1"))];
        let e = c.validate().unwrap_err();
        assert!(e.contains("0.0.0.0/0 via 198.51.100.1"), "{e}");
        assert!(e.contains("not reachable") && e.contains("192.0.2.200/24"), "{e}");
        // Reachable through a directly connected route of the configuration.
        let net = parse_route_dest("198.51.100.0/24").unwrap();
        c.routes = vec![(net, None), (d4, gw("198.51.100.1"))];
        c.validate().unwrap();
        // IPv6: a global gateway checked against the IPv6 data prefixes.
        c.data.push(parse_if_addr("2001:db8::200/64").unwrap());
        c.routes = vec![(d6, gw("2001:db8::1"))];
        c.validate().unwrap();
        c.routes = vec![(d6, gw("2001:db8:5::1"))];
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("::/0 via 2001:db8:5::1") && e.contains("2001:db8::200/64"),
            "{e}"
        );
        // Without data addresses (DHCP, SLAAC) nothing is known to check.
        c.data.clear();
        c.routes = vec![(d4, gw("198.51.100.1"))];
        c.validate().unwrap();
        // One default route per family.
        c.routes = vec![(d4, gw("192.0.2.1")), (d6, None), (d4, gw("192.0.2.2"))];
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("two default routes 0.0.0.0/0 via 192.0.2.1 and 0.0.0.0/0 via 192.0.2.2"),
            "{e}"
        );
        c.routes = vec![(d6, None), (d6, gw("fe80::1"))];
        let e = c.validate().unwrap_err();
        assert!(e.contains("two default routes ::/0 and ::/0 via fe80::1"), "{e}");
    }

    #[test]
    fn ipv6_data_addresses_parse_and_errors_name_the_value() {
        assert_eq!(
            parse_if_addr("2001:db8::200/64").unwrap(),
            IfAddr {
                addr: "2001:db8::200".parse().unwrap(),
                prefix_len: 64
            }
        );
        assert_eq!(parse_if_addr("2001:db8::9").unwrap().prefix_len, 128);
        assert_eq!(
            parse_if_addr("192.0.2.200/24").unwrap(),
            IfAddr::from(parse_data_addr("192.0.2.200/24").unwrap())
        );
        for bad in [
            "2001:db8::200/129",
            "2001:db8::g/64",
            "ff02::1/64",
            "::/0",
            "::1/128",
            "::ffff:192.0.2.1/96",
            "2001:db8::1/x",
            "192.0.2.1/33",
        ] {
            let e = parse_if_addr(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        // The same address twice is refused whatever its prefix.
        let mut c = cfg();
        c.data.push(parse_if_addr("2001:db8::200/64").unwrap());
        assert!(c.validate().is_ok());
        c.data.push(parse_if_addr("2001:db8::200/128").unwrap());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("2001:db8::200 is given twice"));
        // Routes of either family, the gateway of the destination's.
        let mut c = cfg();
        let v6 = parse_if_addr("2001:db8:1::/64").unwrap();
        c.routes = vec![(v6, Some("2001:db8::1".parse().unwrap())), (v6, None)];
        assert!(c.validate().is_ok());
        c.routes.push((v6, Some("192.0.2.1".parse().unwrap())));
        let e = c.validate().unwrap_err();
        assert!(e.contains("route 2001:db8:1::/64 via 192.0.2.1"), "{e}");
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(cfg().validate().is_ok());
        let mut c = cfg();
        c.members.push(MemberConfig::new("m0"));
        assert!(c.validate().unwrap_err().contains("m0 is given twice"));
        let mut c = cfg();
        c.interface = "a-very-long-interface".into();
        assert!(c.validate().unwrap_err().contains("a-very-long-interface"));
        let mut c = cfg();
        c.members.clear();
        assert!(c.validate().unwrap_err().contains("no members"));
        let mut c = cfg();
        c.members[0].name = "ipmp0".into();
        assert!(c.validate().unwrap_err().contains("group interface"));
        let mut c = cfg();
        c.data.push(c.data[0]);
        assert!(c.validate().unwrap_err().contains("192.0.2.200"));
    }
}

#[cfg(test)]
mod detect_tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_accepted_form() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "-1s", "10m", "abc", "0"] {
            assert!(
                parse_duration(bad).unwrap_err().contains(&format!("{bad:?}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn test_addresses_and_failback_parse() {
        let (i, a) = parse_test_address("e1000g0=192.0.2.201/24").unwrap();
        assert_eq!(
            (i.as_str(), a.addr, a.prefix_len),
            ("e1000g0", Ipv4Addr::new(192, 0, 2, 201), 24)
        );
        assert!(parse_test_address("192.0.2.201/24")
            .unwrap_err()
            .contains("IF=ADDR/PREFIX"));
        assert!(parse_test_address("e0=192.0.2.301/24")
            .unwrap_err()
            .contains("test address"));
        assert!(parse_yes_no("yes").unwrap());
        assert!(!parse_yes_no("no").unwrap());
        assert_eq!(
            parse_yes_no("maybe").unwrap_err(),
            "Invalid value for FAILBACK maybe"
        );
    }

    #[test]
    fn probe_mode_defaults_like_solaris_and_fdt_is_clamped() {
        let mut c = GroupConfig {
            group: "g".into(),
            interface: "ipmp0".into(),
            data: vec![],
            members: vec![MemberConfig::new("m0")],
            outbound: Outbound::Flow,
            detect: DetectConfig::default(),
            routes: vec![],
            status_world_readable: false,
            force: false,
            qdisc_bypass: false,
            inbound_fastpath: true,
            outbound_fastpath: true,
            run_dir: DEFAULT_RUN_DIR.into(),
        };
        assert_eq!(c.probe_mode(), ProbeMode::Off);
        c.members[0].test_address = Some(parse_data_addr("192.0.2.201/24").unwrap());
        assert_eq!(c.probe_mode(), ProbeMode::Icmp);
        c.detect.probe = Some(ProbeMode::Arp);
        assert_eq!(c.probe_mode(), ProbeMode::Arp);
        c.detect.fdt = Duration::from_millis(20);
        let (fdt, too_small) = c.effective_fdt();
        assert_eq!(fdt, detect::FDT_MIN);
        assert_eq!(too_small, Some(Duration::from_millis(20)));
        // The set-up's notice, from these values: in.mpathd's text.
        let notice = detect::notice::Notice::FdtTooSmall {
            configured: too_small.unwrap(),
            minimum: fdt,
        };
        assert_eq!(
            notice.to_string(),
            "Too small failure detection time of 20 ms, assuming minimum of 100 ms"
        );
        c.detect.fdt = detect::FDT_MIN;
        assert_eq!(c.effective_fdt(), (detect::FDT_MIN, None));
        c.data = vec![parse_data_addr("192.0.2.201/24").unwrap().into()];
        assert!(c.validate().unwrap_err().contains("also a data address"));
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    /// The unit tests' group, with group name `g` and both members required.
    fn cfg() -> GroupConfig {
        let mut c = super::tests::cfg();
        c.group = "g".into();
        c.members[1].optional = false;
        c
    }

    #[test]
    fn integer_and_string_durations_share_their_bounds() {
        // The largest accepted, in both forms.
        assert_eq!(duration_from_ms(86_400_000).unwrap(), DURATION_MAX);
        assert_eq!(parse_duration("86400s").unwrap(), DURATION_MAX);
        assert_eq!(parse_duration("86400000").unwrap(), DURATION_MAX);
        // One past it, in both forms, each error naming the value.
        let e = duration_from_ms(86_400_001).unwrap_err();
        assert!(e.contains("86400001") && e.contains("maximum of 86400 s"), "{e}");
        let e = parse_duration("86400001").unwrap_err();
        assert!(
            e.contains("\"86400001\"") && e.contains("maximum of 86400 s"),
            "{e}"
        );
        let e = duration_from_ms(u64::MAX).unwrap_err();
        assert!(e.contains(&u64::MAX.to_string()), "{e}");
        // Zero, in both forms; and a string that rounds to zero.
        assert!(duration_from_ms(0).unwrap_err().contains("0 is not allowed"));
        assert!(parse_duration("0").unwrap_err().contains("0 is not allowed"));
        assert!(parse_duration("0.0000001ms").unwrap_err().contains("0.0000001ms"));
        // Too large for any Duration: refused, not a panic.
        assert!(parse_duration("1e300s").unwrap_err().contains("1e300s"));
        // Below the FDT minimum: clamped alike, whatever the form.
        let mut c = cfg();
        c.detect.fdt = duration_from_ms(50).unwrap();
        let from_int = c.effective_fdt();
        c.detect.fdt = parse_duration("50ms").unwrap();
        assert_eq!(c.effective_fdt(), from_int);
        assert_eq!(from_int.0, detect::FDT_MIN);
    }

    #[test]
    fn garp_count_has_the_command_line_bounds() {
        assert_eq!(check_garp_count(1), Ok(1));
        assert_eq!(check_garp_count(100), Ok(100));
        for bad in [0, 101, u32::MAX] {
            let e = check_garp_count(bad).unwrap_err();
            assert!(
                e.contains(&format!("garp_count {bad}")) && e.contains("1 to 100"),
                "{e}"
            );
            let mut c = cfg();
            c.detect.garp_count = bad;
            assert!(c.validate().unwrap_err().contains(&bad.to_string()));
        }
    }

    #[test]
    fn targets_that_are_not_other_hosts_are_refused() {
        let mut base = cfg();
        base.members[0].test_address = Some(parse_data_addr("192.0.2.201/24").unwrap());
        base.members[1].test_address = Some(parse_data_addr("198.51.100.7/30").unwrap());
        let mut ok = base.clone();
        ok.detect.targets = vec![
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 5)),
            "fe80::1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ];
        assert_eq!(ok.validate(), Ok(()));
        for (bad, why) in [
            ("224.0.0.1", "not a unicast host address"),
            ("239.1.2.3", "not a unicast host address"),
            ("0.0.0.0", "not a unicast host address"),
            ("255.255.255.255", "not a unicast host address"),
            ("127.0.0.1", "not a unicast host address"),
            ("192.0.2.200", "data address"),
            ("192.0.2.201", "test address of m0"),
            ("198.51.100.7", "test address of m1"),
            ("192.0.2.255", "broadcast address of 192.0.2.200/24"),
            ("198.51.100.7", "test address"),
            ("ff02::1", "not a unicast host address"),
            ("::", "not a unicast host address"),
            ("::1", "not a unicast host address"),
        ] {
            let mut c = base.clone();
            c.detect.targets = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), bad.parse().unwrap()];
            let e = c.validate().unwrap_err();
            assert!(
                e.contains(&format!("probe target {bad}")) && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_test_address_given_twice_is_refused() {
        let mut c = cfg();
        let t = parse_data_addr("192.0.2.201/24").unwrap();
        c.members[0].test_address = Some(t);
        c.members[1].test_address = Some(t);
        let e = c.validate().unwrap_err();
        assert_eq!(e, "test address 192.0.2.201 is given twice (members m0 and m1)");
        c.members[1].test_address = Some(parse_data_addr("192.0.2.202/24").unwrap());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn the_first_ipv6_use_is_named() {
        let mut c = cfg();
        c.detect.targets = vec!["2001:db8::1".parse().unwrap()];
        assert_eq!(c.first_ipv6_use(), None, "a target alone needs no IPv6");
        c.data.push(IfAddr {
            addr: "2001:db8::200".parse().unwrap(),
            prefix_len: 64,
        });
        assert_eq!(
            c.first_ipv6_use().as_deref(),
            Some("data address 2001:db8::200/64")
        );
    }
    #[test]
    fn ipv6_targets_must_be_other_hosts() {
        let mut c = cfg();
        c.data.push(IfAddr {
            addr: "2001:db8::200".parse().unwrap(),
            prefix_len: 64,
        });
        for (t, why) in [
            ("2001:db8::200", "data address of the group"),
            ("::ffff:192.0.2.1", "not a unicast host address"),
            ("ff02::1", "not a unicast host address"),
        ] {
            c.detect.targets = vec![t.parse().unwrap()];
            let e = c.validate().unwrap_err();
            assert!(e.contains(t) && e.contains(why), "{t}: {e}");
        }
        c.detect.targets = vec!["fe80::1".parse().unwrap()];
        assert_eq!(c.validate(), Ok(()));
    }
}
