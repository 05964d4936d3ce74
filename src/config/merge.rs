//! The command line over the group file: [`resolve`] merges the two into a
//! validated [`GroupConfig`], and [`Source`] finds and reads the file and
//! resolves, the same way at the start and at every reload.

use super::file::{self, FileError, GroupFile, Position, Spanned};
use super::model::{
    self, DataAddr, DetectConfig, GroupConfig, IfAddr, Invalid, Item, MemberConfig, Outbound, ProbeMode,
};
use crate::detect;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon's command line. Settings left out come from the group file,
/// then from the defaults.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Name of the IPMP group (with --check --config, defaults to the file's name).
    ///
    /// 1 to 31 characters, no "/" or spaces. Required, except with --check
    /// --config, where it defaults to the file's name without ".toml".
    #[arg(long, value_name = "NAME", required_unless_present = "check")]
    pub group: Option<String>,
    /// Configuration file [default: CONFIG_DIR/GROUP.toml, if it exists].
    ///
    /// A missing default file is not an error; a missing --config file is.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of group files [env: IPMPD_CONFIG_DIR] [default: /etc/ipmpd].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Validate the configuration and exit (0: valid; 2: not, with the reason).
    ///
    /// The file merged with the flags is checked without touching the
    /// system: exit status 0 and "FILE: configuration of group NAME is
    /// valid" when it is valid; 2 and the reason (naming the file, line and
    /// field for file errors) when it is not.
    // The binary's business; the merge ignores it.
    #[arg(long)]
    pub check: bool,
    /// Name of the group interface (a TAP device created by ipmpd) [default: ipmp0].
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// Data address of the group (repeatable), e.g. 192.0.2.200/24.
    ///
    /// IPv4 or IPv6, e.g. 192.0.2.200/24 or 2001:db8::200/64. A bare address
    /// means /32 (IPv4) or /128 (IPv6). Given on the command line, the data
    /// addresses replace the file's list. An IPv6 address is bound once the
    /// kernel's DAD for it is over.
    #[arg(long = "data", value_name = "ADDR/PREFIX", value_parser = model::parse_if_addr)]
    pub data: Vec<IfAddr>,
    /// Member NIC (repeatable); must exist at start.
    ///
    /// When any of --member, --standby or --optional-member is given, the
    /// members on the command line replace the file's list.
    #[arg(long = "member", value_name = "IF")]
    pub members: Vec<String>,
    /// Member NIC that joins when it appears (repeatable).
    #[arg(long = "optional-member", value_name = "IF")]
    pub optional_members: Vec<String>,
    /// Standby member (repeatable): used only when an active member fails.
    ///
    /// The interface need not also be given with --member.
    #[arg(long = "standby", value_name = "IF")]
    pub standbys: Vec<String>,
    /// How unicast IPv4 and IPv6 pick a member [default: flow].
    ///
    /// flow: spread per flow (addresses, protocol, ports). bound: send
    /// through the member that the source address is bound to (for IP
    /// source guard and cloud fabrics); a source not bound is spread per
    /// flow.
    #[arg(long, value_enum)]
    pub outbound: Option<Outbound>,
    /// Probe-based failure detection [default: icmp when a test address is given, else off].
    ///
    /// off: link state only. icmp: ICMP echo from per-member test addresses,
    /// and ICMPv6 echo from each member's link-local IPv6 test address
    /// (without any IPv4 test address, over IPv6 alone). arp: ARP requests
    /// (neighbour solicitations for IPv6 targets) to the targets, no test
    /// addresses needed.
    #[arg(long, value_enum)]
    pub probe: Option<ProbeMode>,
    /// Test address of a member for ICMP probes (repeatable), e.g. e1000g0=192.0.2.201/24.
    ///
    /// IF must be a member. A test address may not also be a data address,
    /// nor be given to two members.
    #[arg(long = "test-address", value_name = "IF=ADDR/PREFIX", value_parser = model::parse_test_address)]
    pub test_addresses: Vec<(String, DataAddr)>,
    /// Probe target (repeatable); default: the routers of the group's subnets.
    ///
    /// IPv4 or IPv6. The default for IPv6: the link-local next hops of the
    /// routes through the group interface. Multicast, unspecified, broadcast
    /// (global or of a data or test subnet), loopback and the group's own
    /// data and test addresses are refused.
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<IpAddr>,
    /// Failure detection time, e.g. 10s or 100ms (minimum 100ms) [default: 10s].
    ///
    /// A duration such as 10s, 100ms, 1.5s or a plain number of
    /// milliseconds. Smaller values than 100 ms are raised to it; at most
    /// one day.
    #[arg(long, value_name = "DURATION", value_parser = model::parse_duration)]
    pub fdt: Option<Duration>,
    /// Whether a repaired member becomes active again [default: yes].
    #[arg(long, value_name = "yes|no", value_parser = model::parse_yes_no, action = clap::ArgAction::Set)]
    pub failback: Option<bool>,
    /// Gratuitous ARPs sent when an address moves to another member [default: 2].
    ///
    /// 1 to 100, sent 50 ms apart from the address's new member, after the
    /// data plane uses the new binding.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32)
        .range(i64::from(detect::GARP_COUNT_MIN)..=i64::from(detect::GARP_COUNT_MAX)))]
    pub garp_count: Option<u32>,
    /// Link-ups per 60 s before a repair is held; 0 disables flap damping [default: 2].
    #[arg(long, value_name = "N")]
    pub link_flap_limit: Option<u32>,
    /// How often physical NICs' carrier is read with ETHTOOL_GLINK [default: 50ms].
    ///
    /// Minimum 5 ms.
    #[arg(long, value_name = "DURATION", value_parser = model::parse_duration)]
    pub link_poll: Option<Duration>,
    /// Let any local user read the status with ipmpstat (changes stay root-only).
    ///
    /// The control socket's mode becomes 0666 instead of 0660; every change
    /// is still refused unless the caller is root.
    #[arg(long)]
    pub status_readable_by_all: bool,
    /// Take members that still carry addresses or non-kernel routes.
    ///
    /// The other start-up checks still apply.
    #[arg(long)]
    pub force: bool,
    /// Send on the members with PACKET_QDISC_BYPASS: fewer CPU cycles per
    /// frame, but what ipmpd sends (data, probes, announcements) no longer
    /// shows in tcpdump on the members, skips tc egress (shaping, filters)
    /// and the qdisc's backpressure (a busy NIC queue drops instead).
    ///
    /// Off by default. On a NIC with several transmit queues such frames are
    /// spread over them by the sending CPU rather than by flow (a moved
    /// thread may briefly reorder a flow). Measured in the lab it saved
    /// nothing (veth has no qdisc); see docs/BENCHMARKS.md. Frames the
    /// outbound fast path sends in the kernel (--outbound-fastpath) always
    /// go through the member's qdisc.
    #[arg(long)]
    pub qdisc_bypass: bool,
    /// Hand inbound TCP/UDP data frames to the group interface in the
    /// kernel (a tcx program on each member redirects them), not through
    /// ipmpd's data thread [default: on; the file's inbound_fastpath].
    ///
    /// With on, inbound unicast TCP and UDP frames (IPv4, and IPv6 without
    /// extension headers) addressed to a member's MAC go into the group
    /// interface in the kernel: each member's tcx program rewrites the
    /// destination MAC to the group's and redirects the frame into the group
    /// interface's receive path, and the member's data socket keeps those
    /// frames out of user space. Everything else (ARP, NDP, ICMP, multicast
    /// and broadcast, VLAN-tagged frames, traffic for test addresses, frames
    /// from the group's own MACs, anything on an offline member) goes
    /// through ipmpd's inbound thread as with off. tcpdump on the group
    /// interface and on the members still sees every frame; the member
    /// counters of ipmpstat include the frames the kernel delivered
    /// (rx_fast_frames in --json); the group interface's own receive
    /// statistics (ip -s link) do not, as the kernel counts none for a
    /// redirect. If the kernel refuses the program, ipmpd logs a warning and
    /// uses the user-space path.
    #[arg(long, value_enum, value_name = "on|off")]
    pub inbound_fastpath: Option<model::Switch>,
    /// Send outbound TCP/UDP data frames out of their member in the kernel
    /// (a tcx program on the group interface picks the member), not
    /// through ipmpd's data thread [default: on; the file's
    /// outbound_fastpath].
    ///
    /// With on, outbound unicast TCP and UDP frames (IPv4 without options
    /// and not fragments, and IPv6 without extension headers) leave by the
    /// member their flow's bucket names, with the member's MAC as source,
    /// chosen in the kernel by the same flow hash and the same buckets as
    /// the user-space path (a failover moves the same flows). Everything
    /// else (ARP, NDP, ICMP, multicast and broadcast, VLAN-tagged frames,
    /// --outbound bound) goes through ipmpd's outbound thread as with off.
    /// While a packet capture for all protocols (tcpdump) is open on the
    /// group interface or on all interfaces, every frame takes the
    /// user-space path, so the capture sees it; ipmpd looks every 100 ms,
    /// so frames sent in the first moments of a capture may be missing from
    /// it. A socket that filters what it takes and maps no receive ring is
    /// not a capture (a DHCP client's: ISC dhclient, dhcpcd), while
    /// libpcap's always maps one. Traffic control on the group interface (a
    /// root qdisc such as tbf or htb, or a clsact or ingress qdisc) makes
    /// the fast path step aside too, so it applies to every frame; ipmpd
    /// learns of it from netlink at once. The log says when the fast path
    /// steps aside and when it resumes. The member counters of ipmpstat
    /// include the frames the kernel
    /// sent (tx_fast_frames in --json); the group interface's own transmit
    /// statistics (ip -s link) do not. If the kernel refuses the program,
    /// ipmpd logs a warning and uses the user-space path; the next reload
    /// that loads (SIGHUP, ipmpadm reload) tries the program again.
    #[arg(long, value_enum, value_name = "on|off")]
    pub outbound_fastpath: Option<model::Switch>,
}

/// Why there is no configuration to run.
#[derive(Debug)]
pub enum ConfigError {
    /// `--check` with neither a file nor a group named.
    NoSource,
    /// The group file cannot be read or parsed.
    File(FileError),
    /// The flags contradict themselves or the file (a test address for a
    /// member that is not one).
    Flags(String),
    /// The merged configuration is refused. `file`: the group file, if one
    /// was read; `at`: the place in it that gave the refused item.
    Invalid {
        file: Option<PathBuf>,
        at: Option<Position>,
        msg: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NoSource => f.write_str("--check needs --config FILE or --group NAME"),
            ConfigError::File(e) => write!(f, "{e}"),
            ConfigError::Flags(msg) => f.write_str(msg),
            ConfigError::Invalid { file, at, msg } => {
                if let Some(p) = file {
                    write!(f, "{}: ", p.display())?;
                }
                if let Some(at) = at {
                    write!(f, "line {}: ", at.line)?;
                }
                f.write_str(msg)
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<FileError> for ConfigError {
    fn from(e: FileError) -> ConfigError {
        ConfigError::File(e)
    }
}

/// Where each item of a merged configuration came from: its span in the
/// file, or none (a flag, a default).
#[derive(Debug, Default)]
struct Origins {
    interface: Option<Range<usize>>,
    member_names: Vec<Option<Range<usize>>>,
    test_addresses: Vec<Option<Range<usize>>>,
    data: Vec<Option<Range<usize>>>,
    targets: Vec<Option<Range<usize>>>,
    probe: Option<Range<usize>>,
    link_poll: Option<Range<usize>>,
}

impl Origins {
    fn span(&self, item: Item) -> Option<&Range<usize>> {
        fn nth(v: &[Option<Range<usize>>], i: usize) -> Option<&Range<usize>> {
            v.get(i).and_then(Option::as_ref)
        }
        match item {
            Item::Interface => self.interface.as_ref(),
            Item::Member(i) => nth(&self.member_names, i),
            Item::TestAddress(i) => nth(&self.test_addresses, i),
            Item::Data(i) => nth(&self.data, i),
            Item::Target(i) => nth(&self.targets, i),
            Item::Probe => self.probe.as_ref(),
            Item::LinkPoll => self.link_poll.as_ref(),
        }
    }
}

/// A list from the flags when they give one, else the file's, with each
/// entry's origin.
fn list<T: Copy>(flags: &[T], file: &[Spanned<T>]) -> (Vec<T>, Vec<Option<Range<usize>>>) {
    if flags.is_empty() {
        file.iter().map(|s| (*s.get_ref(), Some(s.span()))).unzip()
    } else {
        (flags.to_vec(), vec![None; flags.len()])
    }
}

/// A single setting from the flag when given, else the file's, with its origin.
fn one<T: Clone>(flag: Option<&T>, file: Option<&Spanned<T>>) -> (Option<T>, Option<Range<usize>>) {
    match (flag, file) {
        (Some(v), _) => (Some(v.clone()), None),
        (None, Some(s)) => (Some(s.get_ref().clone()), Some(s.span())),
        (None, None) => (None, None),
    }
}

/// Flags over the file over the defaults, validated: the group
/// configuration to run. A refused item that came from the file is
/// pointed at by its line.
pub fn resolve(flags: &Flags, file: Option<&GroupFile>, run_dir: &Path) -> Result<GroupConfig, ConfigError> {
    let empty = file::FileConfig::default();
    let fc = file.map_or(&empty, |f| &f.config);
    let mut origins = Origins::default();

    let group = flags.group.clone().unwrap_or_else(|| {
        file.and_then(|f| f.path.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    // Members from the flags replace the file's list; a repeated --member
    // stays repeated so validation names it.
    let flags_name_members =
        !(flags.members.is_empty() && flags.standbys.is_empty() && flags.optional_members.is_empty());
    let mut members: Vec<MemberConfig> = if flags_name_members {
        flags.members.iter().map(|n| MemberConfig::new(n)).collect()
    } else {
        fc.members
            .iter()
            .map(|m| {
                origins.member_names.push(Some(m.name.span()));
                origins
                    .test_addresses
                    .push(m.test_address.as_ref().map(Spanned::span));
                MemberConfig {
                    name: m.name.get_ref().clone(),
                    optional: m.optional,
                    standby: m.standby,
                    test_address: m.test_address.as_ref().map(|t| *t.get_ref()),
                }
            })
            .collect()
    };
    let mut add = |name: &str, f: &dyn Fn(&mut MemberConfig)| {
        if !members.iter().any(|m| m.name == name) {
            members.push(MemberConfig::new(name));
        }
        if let Some(m) = members.iter_mut().find(|m| m.name == name) {
            f(m);
        }
    };
    for n in &flags.standbys {
        add(n, &|m| m.standby = true);
    }
    for n in &flags.optional_members {
        add(n, &|m| m.optional = true);
    }
    for (ifname, a) in &flags.test_addresses {
        let Some(i) = members.iter().position(|m| &m.name == ifname) else {
            return Err(ConfigError::Flags(format!(
                "--test-address {ifname}={a}: {ifname} is not a member (give --member {ifname})"
            )));
        };
        members[i].test_address = Some(*a);
        if let Some(o) = origins.test_addresses.get_mut(i) {
            *o = None;
        }
    }

    let (interface, interface_at) = one(flags.interface.as_ref(), fc.interface.as_ref());
    origins.interface = interface_at;
    let (data, data_at) = list(&flags.data, &fc.data);
    origins.data = data_at;
    let (targets, targets_at) = list(&flags.targets, &fc.targets);
    origins.targets = targets_at;
    let (probe, probe_at) = one(flags.probe.as_ref(), fc.probe.as_ref());
    origins.probe = probe_at;
    let (link_poll, link_poll_at) = match (flags.link_poll, fc.link_poll.as_ref()) {
        (Some(d), _) => (Some(d), None),
        (None, Some(s)) => (Some(s.get_ref().0), Some(s.span())),
        (None, None) => (None, None),
    };
    origins.link_poll = link_poll_at;

    let cfg = GroupConfig {
        group,
        interface: interface.unwrap_or_else(|| model::DEFAULT_INTERFACE.to_string()),
        data,
        members,
        outbound: flags.outbound.or(fc.outbound).unwrap_or_default(),
        detect: DetectConfig {
            probe,
            targets,
            fdt: flags
                .fdt
                .or(fc.failure_detection_time.map(|d| d.0))
                .unwrap_or(detect::FDT_DEFAULT),
            failback: flags.failback.or(fc.failback).unwrap_or(true),
            garp_count: flags
                .garp_count
                .or(fc.garp_count)
                .unwrap_or(detect::GARP_COUNT_DEFAULT),
            link_flap_limit: flags
                .link_flap_limit
                .or(fc.link_flap_limit)
                .unwrap_or(detect::LINK_FLAP_LIMIT_DEFAULT),
            link_poll: link_poll.unwrap_or(detect::LINK_POLL_DEFAULT),
        },
        routes: fc.routes.iter().map(|r| (r.destination, r.gateway)).collect(),
        status_world_readable: flags.status_readable_by_all || fc.status_readable_by_all.unwrap_or(false),
        force: flags.force,
        qdisc_bypass: flags.qdisc_bypass,
        inbound_fastpath: flags
            .inbound_fastpath
            .map(|s| s == model::Switch::On)
            .or(fc.inbound_fastpath)
            .unwrap_or(true),
        outbound_fastpath: flags
            .outbound_fastpath
            .map(|s| s == model::Switch::On)
            .or(fc.outbound_fastpath)
            .unwrap_or(true),
        run_dir: run_dir.to_path_buf(),
    };
    cfg.check()
        .map_err(|Invalid { msg, item }| ConfigError::Invalid {
            file: file.map(|f| f.path.clone()),
            at: file
                .zip(item.and_then(|i| origins.span(i)))
                .map(|(f, s)| f.position(s)),
            msg,
        })?;
    Ok(cfg)
}

/// Where a group's configuration comes from: the command line and the
/// group file it names. Loaded at the start, and again (the file re-read,
/// the same flags merged over it) at every reload.
#[derive(Debug, Clone)]
pub struct Source {
    pub flags: Flags,
    pub run_dir: PathBuf,
}

/// A loaded configuration and the file it came from, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub file: Option<PathBuf>,
    pub cfg: GroupConfig,
}

impl Source {
    /// The group file: --config, else CONFIG_DIR/GROUP.toml. Missing is
    /// fine (`None`) unless it was named explicitly: the flags may be a
    /// complete group.
    pub fn file_path(&self) -> Result<Option<PathBuf>, ConfigError> {
        let f = &self.flags;
        let path = match (&f.config, &f.group) {
            (Some(p), _) => p.clone(),
            (None, Some(g)) => f
                .config_dir
                .clone()
                .or_else(|| std::env::var_os(file::CONFIG_DIR_ENV).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(file::DEFAULT_CONFIG_DIR))
                .join(format!("{g}.toml")),
            (None, None) => return Err(ConfigError::NoSource),
        };
        if f.config.is_none() && !path.exists() {
            return Ok(None);
        }
        Ok(Some(path))
    }

    /// Reads the group file (if any) and resolves the flags over it.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let file = self.file_path()?.map(|p| file::load(&p)).transpose()?;
        let cfg = resolve(&self.flags, file.as_ref(), &self.run_dir)?;
        Ok(Loaded {
            file: file.map(|f| f.path),
            cfg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, ValueEnum};

    /// The flags as the daemon's command line parses them.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    /// The flags `args` give; without --group, as with --check (the group
    /// named after the file), which the merge ignores.
    fn flags(args: &[&str]) -> Flags {
        let check = !args.iter().any(|a| *a == "--group" || *a == "--check");
        let argv = ["ipmpd"].into_iter().chain(check.then_some("--check"));
        Cli::try_parse_from(argv.chain(args.iter().copied()))
            .unwrap()
            .flags
    }

    #[test]
    fn the_inbound_fast_path_is_on_unless_the_flag_or_the_file_says_off() {
        const MIN: &str = "interface = \"ipmp0\"\n[[member]]\nname = \"m0\"\n";
        assert!(resolve_ok(&["--group", "g", "--member", "m0"], None).inbound_fastpath);
        assert!(
            !resolve_ok(
                &["--group", "g", "--member", "m0", "--inbound-fastpath", "off"],
                None
            )
            .inbound_fastpath
        );
        let off = format!("inbound_fastpath = false\n{MIN}");
        assert!(!resolve_ok(&[], Some(&off)).inbound_fastpath);
        // The flag wins over the file, either way.
        assert!(resolve_ok(&["--inbound-fastpath", "on"], Some(&off)).inbound_fastpath);
        let on = format!("inbound_fastpath = true\n{MIN}");
        assert!(!resolve_ok(&["--inbound-fastpath", "off"], Some(&on)).inbound_fastpath);
        assert!(resolve_ok(&[], Some(MIN)).inbound_fastpath);
    }

    #[test]
    fn the_outbound_fast_path_is_on_unless_the_flag_or_the_file_says_off() {
        const MIN: &str = "interface = \"ipmp0\"\n[[member]]\nname = \"m0\"\n";
        let cli = |v: &str| {
            resolve_ok(
                &["--group", "g", "--member", "m0", "--outbound-fastpath", v],
                None,
            )
        };
        assert!(resolve_ok(&["--group", "g", "--member", "m0"], None).outbound_fastpath);
        assert!(!cli("off").outbound_fastpath);
        assert!(cli("on").outbound_fastpath);
        let off = format!("outbound_fastpath = false\n{MIN}");
        assert!(!resolve_ok(&[], Some(&off)).outbound_fastpath);
        // The flag wins over the file, either way; the inbound one is apart.
        assert!(resolve_ok(&["--outbound-fastpath", "on"], Some(&off)).outbound_fastpath);
        assert!(resolve_ok(&[], Some(&off)).inbound_fastpath);
        let on = format!("outbound_fastpath = true\n{MIN}");
        assert!(!resolve_ok(&["--outbound-fastpath", "off"], Some(&on)).outbound_fastpath);
        assert!(resolve_ok(&[], Some(MIN)).outbound_fastpath);
    }

    fn file(text: &str) -> GroupFile {
        file::parse(Path::new("/etc/ipmpd/production0.toml"), text.into()).unwrap()
    }

    const RUN: &str = "/run/ipmpd";

    fn resolve_ok(args: &[&str], text: Option<&str>) -> GroupConfig {
        resolve(&flags(args), text.map(file).as_ref(), Path::new(RUN)).unwrap()
    }

    fn resolve_err(args: &[&str], text: Option<&str>) -> String {
        resolve(&flags(args), text.map(file).as_ref(), Path::new(RUN))
            .unwrap_err()
            .to_string()
    }

    const FILE: &str = "interface = \"production0\"\n\
        data = [\"192.0.2.200/24\"]\n\
        probe = \"arp\"\n\
        targets = [\"192.0.2.1\"]\n\
        failure_detection_time = \"5s\"\n\
        failback = \"no\"\n\
        garp_count = 3\n\
        link_flap_limit = 4\n\
        link_poll = 20\n\
        outbound = \"bound\"\n\
        status_readable_by_all = true\n\
        [[member]]\nname = \"e0\"\ntest_address = \"192.0.2.201/24\"\n\
        [[member]]\nname = \"e1\"\nstandby = true\n\
        [[route]]\ndestination = \"198.51.100.0/24\"\ngateway = \"192.0.2.1\"\n";

    fn addr(s: &str) -> DataAddr {
        model::parse_data_addr(s).unwrap()
    }

    #[test]
    fn the_file_fills_what_the_flags_leave_out() {
        let c = resolve_ok(&[], Some(FILE));
        assert_eq!(c.group, "production0", "the group is named after the file");
        assert_eq!(c.interface, "production0");
        assert_eq!(c.data, vec![addr("192.0.2.200/24").into()]);
        assert_eq!(c.detect.probe, Some(ProbeMode::Arp));
        assert_eq!(
            c.detect.targets,
            vec![IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))]
        );
        assert_eq!(c.detect.fdt, Duration::from_secs(5));
        assert!(!c.detect.failback);
        assert_eq!(c.detect.garp_count, 3);
        assert_eq!(c.detect.link_flap_limit, 4);
        assert_eq!(c.detect.link_poll, Duration::from_millis(20));
        assert_eq!(c.outbound, Outbound::Bound);
        assert!(c.status_world_readable);
        assert_eq!(
            c.members,
            vec![
                MemberConfig {
                    test_address: Some(addr("192.0.2.201/24")),
                    ..MemberConfig::new("e0")
                },
                MemberConfig {
                    standby: true,
                    ..MemberConfig::new("e1")
                },
            ]
        );
        assert_eq!(
            c.routes,
            vec![(
                addr("198.51.100.0/24").into(),
                Some(std::net::Ipv4Addr::new(192, 0, 2, 1).into())
            )]
        );
        assert_eq!(c.run_dir, Path::new(RUN));
        assert!(!c.force);
    }

    #[test]
    fn flags_beat_the_file() {
        let c = resolve_ok(
            &[
                "--group",
                "g1",
                "--interface",
                "ipmpx0",
                "--probe",
                "off",
                "--fdt",
                "2s",
                "--failback",
                "yes",
                "--garp-count",
                "7",
                "--link-flap-limit",
                "0",
                "--link-poll",
                "100ms",
                "--outbound",
                "flow",
                "--force",
            ],
            Some(FILE),
        );
        assert_eq!(c.group, "g1");
        assert_eq!(c.interface, "ipmpx0");
        assert_eq!(c.detect.probe, Some(ProbeMode::Off));
        assert_eq!(c.detect.fdt, Duration::from_secs(2));
        assert!(c.detect.failback);
        assert_eq!(c.detect.garp_count, 7);
        assert_eq!(c.detect.link_flap_limit, 0);
        assert_eq!(c.detect.link_poll, Duration::from_millis(100));
        assert_eq!(c.outbound, Outbound::Flow);
        assert!(c.force);
        // A flag that can only turn a setting on leaves the file's on.
        assert!(c.status_world_readable);
    }

    #[test]
    fn defaults_fill_what_neither_gives() {
        let c = resolve_ok(&["--group", "g", "--member", "e0"], None);
        assert_eq!(c.interface, model::DEFAULT_INTERFACE);
        assert_eq!(c.detect, DetectConfig::default());
        assert_eq!(c.outbound, Outbound::Flow);
        assert!(c.data.is_empty() && c.routes.is_empty());
        assert!(!c.status_world_readable);
        // An empty file is the same as none.
        let mut from_file = resolve_ok(&["--group", "g", "--member", "e0"], Some(""));
        assert_eq!(from_file.run_dir, c.run_dir);
        from_file.group = c.group.clone();
        assert_eq!(from_file, c);
    }

    #[test]
    fn list_flags_replace_the_files_lists_whole() {
        let c = resolve_ok(
            &[
                "--data",
                "192.0.2.210/24",
                "--data",
                "192.0.2.211/24",
                "--target",
                "192.0.2.2",
            ],
            Some(FILE),
        );
        assert_eq!(
            c.data,
            vec![addr("192.0.2.210/24").into(), addr("192.0.2.211/24").into()]
        );
        assert_eq!(
            c.detect.targets,
            vec![IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2))]
        );
        // Members: any member flag replaces the file's list.
        let c = resolve_ok(&["--member", "e5", "--optional-member", "e6"], Some(FILE));
        assert_eq!(
            c.members,
            vec![
                MemberConfig::new("e5"),
                MemberConfig {
                    optional: true,
                    ..MemberConfig::new("e6")
                }
            ]
        );
        // Standby and optional flags mark a member --member names, once.
        let c = resolve_ok(
            &[
                "--group",
                "g",
                "--member",
                "e0",
                "--standby",
                "e0",
                "--optional-member",
                "e0",
            ],
            None,
        );
        assert_eq!(
            c.members,
            vec![MemberConfig {
                standby: true,
                optional: true,
                ..MemberConfig::new("e0")
            }]
        );
        // A test address flag sets it on the file's member, keeping the rest.
        let c = resolve_ok(&["--test-address", "e1=192.0.2.202/24"], Some(FILE));
        assert_eq!(c.members.len(), 2);
        assert!(c.members[1].standby);
        assert_eq!(c.members[1].test_address, Some(addr("192.0.2.202/24")));
        assert_eq!(c.members[0].test_address, Some(addr("192.0.2.201/24")));
    }

    #[test]
    fn errors_name_the_bad_value_and_the_line_it_came_from() {
        // From the file: the path, the line of the refused item, the value.
        let dup = "[[member]]\nname = \"e0\"\n[[member]]\nname = \"e0\"\n";
        assert_eq!(
            resolve_err(&[], Some(dup)),
            "/etc/ipmpd/production0.toml: line 4: member e0 is given twice"
        );
        let target = "targets = [\"192.0.2.1\",\n  \"224.0.0.1\"]\n[[member]]\nname = \"e0\"\n";
        assert_eq!(
            resolve_err(&[], Some(target)),
            "/etc/ipmpd/production0.toml: line 2: invalid probe target 224.0.0.1: not a unicast host address"
        );
        let cases = [
            (
                "interface = \"a/b\"\n[[member]]\nname = \"e0\"\n",
                "line 1: invalid interface name \"a/b\"",
            ),
            (
                "data = [\"192.0.2.200/24\",\n\"192.0.2.200/25\"]\n[[member]]\nname = \"e0\"\n",
                "line 2: data address 192.0.2.200 is given twice",
            ),
            (
                "data = [\"192.0.2.200/24\"]\n[[member]]\nname = \"e0\"\ntest_address = \"192.0.2.200/24\"\n",
                "line 4: test address 192.0.2.200 of e0 is also a data address",
            ),
            (
                "link_poll = 1\n[[member]]\nname = \"e0\"\n",
                "line 1: link poll interval 1ms",
            ),
            (
                "interface = \"e0\"\n[[member]]\nname = \"e0\"\n",
                "line 3: member e0 is the group interface",
            ),
        ];
        for (text, expect) in cases {
            let e = resolve_err(&[], Some(text));
            assert!(e.starts_with("/etc/ipmpd/production0.toml: "), "{e}");
            assert!(e.contains(expect), "{text}: {e}");
        }
        // From a flag: the file is named, but no line of it.
        assert_eq!(
            resolve_err(&["--member", "e0", "--member", "e0"], Some(FILE)),
            "/etc/ipmpd/production0.toml: member e0 is given twice"
        );
        assert_eq!(
            resolve_err(&["--target", "224.0.0.1"], Some(FILE)),
            "/etc/ipmpd/production0.toml: invalid probe target 224.0.0.1: not a unicast host address"
        );
        // A flag overriding a file's test address takes its place too.
        let e = resolve_err(&["--test-address", "e1=192.0.2.201/24"], Some(FILE));
        assert_eq!(
            e,
            "/etc/ipmpd/production0.toml: test address 192.0.2.201 is given twice (members e0 and e1)"
        );
        // No file: the message alone.
        assert_eq!(
            resolve_err(&["--group", "g", "--member", "e0", "--target", "127.0.0.1"], None),
            "invalid probe target 127.0.0.1: not a unicast host address"
        );
        assert_eq!(
            resolve_err(
                &[
                    "--group",
                    "g",
                    "--member",
                    "e0",
                    "--test-address",
                    "e1=192.0.2.1/24"
                ],
                None
            ),
            "--test-address e1=192.0.2.1/24: e1 is not a member (give --member e1)"
        );
        assert_eq!(
            resolve_err(&["--group", "g"], None),
            "no members: give at least one --member IF"
        );
    }

    #[test]
    fn every_spelling_is_the_same_on_the_command_line_and_in_the_file() {
        for p in ProbeMode::value_variants() {
            let name = p.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(flags(&["--probe", &name]).probe, Some(*p));
            let f = file(&format!("probe = \"{name}\"\n"));
            assert_eq!(f.config.probe.map(|s| s.into_inner()), Some(*p), "{name}");
        }
        for o in Outbound::value_variants() {
            let name = o.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(flags(&["--outbound", &name]).outbound, Some(*o));
            assert_eq!(
                file(&format!("outbound = \"{name}\"\n")).config.outbound,
                Some(*o)
            );
        }
        let names = |v: &[ProbeMode]| {
            v.iter()
                .map(|p| p.to_possible_value().unwrap().get_name().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(ProbeMode::value_variants()), ["off", "icmp", "arp"]);
    }

    /// A scratch directory for one test's group files.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let d = std::env::temp_dir().join(format!("ipmpd-merge-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_reload_with_the_same_flags_re_reads_the_file() {
        let dir = Scratch::new("reload");
        let path = dir.0.join("production0.toml");
        let source = Source {
            flags: flags(&[
                "--group",
                "production0",
                "--config-dir",
                dir.0.to_str().unwrap(),
                "--fdt",
                "3s",
            ]),
            run_dir: RUN.into(),
        };
        std::fs::write(&path, "[[member]]\nname = \"e0\"\n").unwrap();
        let first = source.load().unwrap();
        assert_eq!(first.file.as_deref(), Some(path.as_path()));
        assert_eq!(first.cfg.members, vec![MemberConfig::new("e0")]);
        assert_eq!(first.cfg.detect.fdt, Duration::from_secs(3));

        std::fs::write(
            &path,
            "failure_detection_time = \"9s\"\n[[member]]\nname = \"e0\"\n[[member]]\nname = \"e1\"\n",
        )
        .unwrap();
        let second = source.load().unwrap();
        assert_eq!(
            second.cfg.members,
            vec![MemberConfig::new("e0"), MemberConfig::new("e1")]
        );
        // The flag still wins over the file's new value.
        assert_eq!(second.cfg.detect.fdt, Duration::from_secs(3));

        // A broken file is refused, naming it; fixed, it loads again.
        std::fs::write(&path, "\nfailback = \"maybe\"\n[[member]]\nname = \"e0\"\n").unwrap();
        let e = source.load().unwrap_err();
        let ConfigError::File(FileError::Parse { at: Some(at), .. }) = &e else {
            panic!("{e}");
        };
        assert_eq!(at.line, 2);
        assert!(e.to_string().contains("production0.toml") && e.to_string().contains("FAILBACK maybe"));
        std::fs::write(&path, "[[member]]\nname = \"e2\"\n").unwrap();
        assert_eq!(source.load().unwrap().cfg.members, vec![MemberConfig::new("e2")]);

        // The file gone: the flags alone, which name no member.
        std::fs::remove_file(&path).unwrap();
        let e = source.load().unwrap_err().to_string();
        assert_eq!(e, "no members: give at least one --member IF");
    }

    #[test]
    fn a_named_file_must_exist_and_check_needs_a_source() {
        let dir = Scratch::new("named");
        let missing = dir.0.join("nothere.toml");
        let source = Source {
            flags: flags(&["--check", "--config", missing.to_str().unwrap()]),
            run_dir: RUN.into(),
        };
        let e = source.load().unwrap_err();
        assert!(matches!(e, ConfigError::File(FileError::Read { .. })), "{e}");
        assert!(e.to_string().contains("nothere.toml"), "{e}");
        let source = Source {
            flags: flags(&["--check"]),
            run_dir: RUN.into(),
        };
        assert_eq!(
            source.load().unwrap_err().to_string(),
            "--check needs --config FILE or --group NAME"
        );
    }
}
