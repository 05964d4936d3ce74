//! The command line over the group file: [`resolve`] merges the two into a
//! validated [`GroupConfig`], and [`Source`] finds and reads the file and
//! resolves, the same way at the start and at every reload.

use super::file::{self, FileError, GroupFile, Position, Spanned};
use super::model::{
    self, DataAddr, DetectConfig, GroupConfig, Invalid, Item, MemberConfig, Outbound, ProbeMode,
};
use crate::detect;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon's command line. Settings left out come from the group file,
/// then from the defaults.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Name of the IPMP group (with --check --config, defaults to the file's name).
    #[arg(long, value_name = "NAME", required_unless_present = "check")]
    pub group: Option<String>,
    /// Configuration file [default: CONFIG_DIR/GROUP.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of group files [env: IPMPD_CONFIG_DIR] [default: /etc/ipmpd].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Validate the configuration and exit (0: valid; 2: not, with the reason).
    // The binary's business; the merge ignores it.
    #[arg(long)]
    pub check: bool,
    /// Name of the group interface (a TAP device created by ipmpd) [default: ipmp0].
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// Data address of the group (repeatable), e.g. 192.0.2.200/24.
    #[arg(long = "data", value_name = "ADDR/PREFIX", value_parser = model::parse_data_addr)]
    pub data: Vec<DataAddr>,
    /// Member NIC (repeatable); must exist at start.
    #[arg(long = "member", value_name = "IF")]
    pub members: Vec<String>,
    /// Member NIC that joins when it appears (repeatable).
    #[arg(long = "optional-member", value_name = "IF")]
    pub optional_members: Vec<String>,
    /// Standby member (repeatable): used only when an active member fails.
    #[arg(long = "standby", value_name = "IF")]
    pub standbys: Vec<String>,
    /// How unicast IPv4 picks a member [default: flow].
    #[arg(long, value_enum)]
    pub outbound: Option<Outbound>,
    /// Probe-based failure detection [default: icmp when a test address is given, else off].
    #[arg(long, value_enum)]
    pub probe: Option<ProbeMode>,
    /// Test address of a member for ICMP probes (repeatable), e.g. e1000g0=192.0.2.201/24.
    #[arg(long = "test-address", value_name = "IF=ADDR/PREFIX", value_parser = model::parse_test_address)]
    pub test_addresses: Vec<(String, DataAddr)>,
    /// Probe target (repeatable); default: the routers of the group's subnets.
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<Ipv4Addr>,
    /// Failure detection time, e.g. 10s or 100ms (minimum 100ms) [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = model::parse_duration)]
    pub fdt: Option<Duration>,
    /// Whether a repaired member becomes active again [default: yes].
    #[arg(long, value_name = "yes|no", value_parser = model::parse_yes_no, action = clap::ArgAction::Set)]
    pub failback: Option<bool>,
    /// Gratuitous ARPs sent when an address moves to another member [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32)
        .range(i64::from(detect::GARP_COUNT_MIN)..=i64::from(detect::GARP_COUNT_MAX)))]
    pub garp_count: Option<u32>,
    /// Link-ups per 60 s before a repair is held; 0 disables flap damping [default: 2].
    #[arg(long, value_name = "N")]
    pub link_flap_limit: Option<u32>,
    /// How often physical NICs' carrier is read with ETHTOOL_GLINK [default: 50ms].
    #[arg(long, value_name = "DURATION", value_parser = model::parse_duration)]
    pub link_poll: Option<Duration>,
    /// Let any local user read the status with ipmpstat (changes stay root-only).
    #[arg(long)]
    pub status_readable_by_all: bool,
    /// Take members that still carry addresses or non-kernel routes.
    #[arg(long)]
    pub force: bool,
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
